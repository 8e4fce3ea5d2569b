"""`iterloop init`: scaffold a small project around a valid example workflow.

The texts are what `init` writes; tests/test_cli.py checks that `hello.iter` validates and
formats to itself, and that the README only promises commands the CLI has. Existing files are
never overwritten, not even one that appears while `init` runs (files are created exclusively).
"""

from __future__ import annotations

import json
from pathlib import Path

from runtime.command_errors import EXIT_OK, UsageError

HELLO_ITER = """\
## hello.iter: a writer drafts a paragraph, a reviewer judges it and sends it back for revision
## (at most 3 times) until it is approved; then a person approves it before it is published.
## Check it with `iterloop validate hello.iter`, draw it with `iterloop diagram hello.iter`.
vars:
  topic: string = "durable AI workflows"

prompt writer_system:
  You write one short, friendly and accurate paragraph for newcomers.

prompt writer_user:
  Write a short introduction to {{vars.topic}}.
  If a reviewer or an editor left feedback on an earlier draft, address it:
  {{outputs.reviewer.history}}
  {{outputs.publish_gate.history}}

prompt reviewer_system:
  You review a paragraph for accuracy and clarity.
  Approve it only if a newcomer would understand it.

prompt reviewer_user:
  Review this paragraph about {{vars.topic}}:
  {{outputs.writer.text}}

prompt publish_instructions:
  Read the approved paragraph about {{vars.topic}}:
  {{outputs.writer.text}}
  Approve it to publish it, or say what to change.

schema draft:
  text: string

schema verdict:
  approved: bool
  feedback: string

schema decision:
  approved: bool
  comment: string

agent writer:
  model: "claude-sonnet-4-5"
  output: draft
  system: writer_system
  user: writer_user

judge reviewer:
  model: "claude-sonnet-4-5"
  output: verdict
  system: reviewer_system
  user: reviewer_user

human publish_gate:
  output: decision
  publish: paragraph
  interaction: human
  instructions: publish_instructions

workflow hello:
  entry: writer

  budget:
    max_cost_usd: 1
    max_iterations: 10

  writer -> reviewer
  reviewer -> publish_gate when approved
  reviewer -> writer when not approved as revise(3)
  publish_gate -> done when approved
  publish_gate -> writer when not approved as rework(2)
"""

HELLO_SCRIPT = """\
# Model outputs for `iterloop run hello.iter --offline` (used because this file sits beside
# hello.iter): a scripted model, not a real one. The reviewer asks for one revision.
writer:
  text: "A durable workflow remembers where it is: if a machine restarts, it carries on from there."
reviewer:                      # one verdict per visit (the last repeats)
  - approved: false
    feedback: "Say what it means for an AI workflow: model calls are not repeated."
  - approved: true
    feedback: "Clear for a newcomer."
"""

GITIGNORE = """\
# iterloop
.env
.iterloop/
__pycache__/
.venv/
"""

ENV_EXAMPLE = """\
# Export these in your shell, or copy this file to .env (iterloop reads ./.env; the shell's
# environment wins). Never commit .env.
ANTHROPIC_API_KEY=
OPENAI_API_KEY=
# Used for agents, judges and llm routers that leave `model:` empty.
ITERLOOP_DEFAULT_MODEL=
"""

#: How the README says to give the API key (the CLI reads `./.env`: runtime/dotenv_file.py).
KEY_STEP = "export ANTHROPIC_API_KEY=sk-ant-…              # (or put it in .env) for the real model"

README_SNIPPET = """\
# My iterloop workflows

`hello.iter` is a writer/reviewer loop declared in iterloop's `.iter` language, with a human gate
(`publish_gate`) before the paragraph is published.

```sh
iterloop validate hello.iter                   # check it (exit 1 on errors)
iterloop diagram hello.iter --view detailed    # draw it as a Mermaid flowchart
iterloop run hello.iter --offline              # run it with the scripted model in hello.script.yaml
iterloop answer RUN --gate publish_gate --answer approved=true --answer comment="ship it"
{key_step}
iterloop run hello.iter                        # the same run, with Claude
iterloop report RUN                            # the outputs, timeline and cost of a run
iterloop fmt hello.iter                        # normalise its layout
iterloop compile hello.iter                    # print the compiled IR (JSON)
```

`run` follows the run and asks at the gate when it runs in a terminal; elsewhere it stops with
exit code 3 and prints the `iterloop answer` command to use (RUN is the run id it printed).
`--var topic="…"` changes the topic. `.env.example` lists the environment variables iterloop reads.
""".format(key_step=KEY_STEP)

#: What `iterloop init` writes, in order. Keep hello.iter valid: tests/test_cli.py validates it.
SCAFFOLD: tuple[tuple[str, str], ...] = (
    ("hello.iter", HELLO_ITER),
    ("hello.script.yaml", HELLO_SCRIPT),
    ("README.md", README_SNIPPET),
    (".env.example", ENV_EXAMPLE),
    (".gitignore", GITIGNORE),
)


def init_project(directory: Path, *, as_json: bool = False) -> int:
    """Create ``directory`` (if needed) and every scaffold file it lacks; say what was done (with
    ``as_json``, in one document: `created`, `skipped`, `next`, `exit_code`)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create directory '{directory}': {exc.strerror or exc}") from None
    if not directory.is_dir():
        raise UsageError(f"'{directory}' exists and is not a directory")
    created: list[str] = []
    skipped: list[str] = []
    for name, content in SCAFFOLD:
        target = directory / name
        try:
            if target.exists():
                raise FileExistsError(target)
            write_new_file(target, content)
        except FileExistsError:
            skipped.append(str(target))
            if not as_json:
                print(f"skipped {target} (already exists)")
            continue
        except OSError as exc:
            raise UsageError(f"cannot write '{target}': {exc.strerror or exc}") from None
        created.append(str(target))
        if not as_json:
            print(f"created {target}")
    hello = directory / "hello.iter"
    steps = [f"iterloop validate {hello}", f"iterloop run {hello} --offline"]
    if as_json:
        print(json.dumps({"directory": str(directory), "created": created, "skipped": skipped, "next": steps,
                          "exit_code": EXIT_OK}, indent=2))
    else:
        print(f"next: {steps[0]}")
        print(f"      {steps[1]}")
    return EXIT_OK


def write_new_file(path: Path, content: str) -> None:
    """Create ``path`` exclusively, so a file appearing meanwhile is not clobbered either."""
    with open(path, "x", encoding="utf-8", newline="") as handle:
        handle.write(content)

"""`iterloop init`: scaffold a small project around a valid example workflow.

The texts are what `init` writes; tests/test_cli.py checks that `hello.iter` validates and
formats to itself, and that the README only promises commands the CLI has. Existing files are
never overwritten, not even one that appears while `init` runs (files are created exclusively).
"""

from __future__ import annotations

from pathlib import Path

from runtime.command_errors import EXIT_OK, UsageError

HELLO_ITER = """\
## hello.iter: the smallest useful loop. A writer drafts a paragraph, a reviewer judges it,
## and the draft goes back for revision (at most 3 times) until it is approved.
## Check it with `iterloop validate hello.iter`, draw it with `iterloop diagram hello.iter`.
vars:
  topic: string = "durable AI workflows"

prompt writer_system:
  You write one short, friendly and accurate paragraph for newcomers.

prompt writer_user:
  Write a short introduction to {{vars.topic}}.
  If a reviewer left feedback on an earlier draft, address it:
  {{outputs.reviewer.history}}

prompt reviewer_system:
  You review a paragraph for accuracy and clarity.
  Approve it only if a newcomer would understand it.

prompt reviewer_user:
  Review this paragraph about {{vars.topic}}:
  {{outputs.writer.text}}

schema draft:
  text: string

schema verdict:
  approved: bool
  feedback: string

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

workflow hello:
  entry: writer

  budget:
    max_cost_usd: 1
    max_iterations: 10

  writer -> reviewer
  reviewer -> done when approved
  reviewer -> writer when not approved as revise(3)
"""

GITIGNORE = """\
# iterloop
.env
.iterloop/
__pycache__/
.venv/
"""

ENV_EXAMPLE = """\
# Copy to .env and fill in; never commit .env.
ANTHROPIC_API_KEY=
OPENAI_API_KEY=
# Used for agents, judges and llm routers that leave `model:` empty.
ITERLOOP_DEFAULT_MODEL=
"""

README_SNIPPET = """\
# My iterloop workflows

`hello.iter` is a writer/reviewer loop declared in iterloop's `.iter` language.

```sh
iterloop validate hello.iter                   # check it (exit 1 on errors)
iterloop diagram hello.iter --view detailed    # draw it as a Mermaid flowchart
iterloop fmt hello.iter                        # normalise its layout
iterloop compile hello.iter                    # print the compiled IR (JSON)
```

Copy `.env.example` to `.env` and set an API key before running workflows.
"""

#: What `iterloop init` writes, in order. Keep hello.iter valid: tests/test_cli.py validates it.
SCAFFOLD: tuple[tuple[str, str], ...] = (
    ("hello.iter", HELLO_ITER),
    ("README.md", README_SNIPPET),
    (".env.example", ENV_EXAMPLE),
    (".gitignore", GITIGNORE),
)


def init_project(directory: Path) -> int:
    """Create ``directory`` (if needed) and every scaffold file it lacks; say what was done."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create directory '{directory}': {exc.strerror or exc}") from None
    if not directory.is_dir():
        raise UsageError(f"'{directory}' exists and is not a directory")
    for name, content in SCAFFOLD:
        target = directory / name
        if target.exists():
            print(f"skipped {target} (already exists)")
            continue
        try:
            write_new_file(target, content)
        except FileExistsError:
            print(f"skipped {target} (already exists)")
            continue
        except OSError as exc:
            raise UsageError(f"cannot write '{target}': {exc.strerror or exc}") from None
        print(f"created {target}")
    print(f"next: iterloop validate {directory / 'hello.iter'}")
    return EXIT_OK


def write_new_file(path: Path, content: str) -> None:
    """Create ``path`` exclusively, so a file appearing meanwhile is not clobbered either."""
    with open(path, "x", encoding="utf-8", newline="") as handle:
        handle.write(content)

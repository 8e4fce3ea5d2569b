"""The formatter's contract: same IR after a round trip, a fixed point, and no comment lost."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dsl
from dsl.parser import parse
from dsl.unparse import format_file, format_source

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(ROOT.glob("examples/**/*.iter"))


def src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def ir_of(text: str) -> dict | None:
    result = dsl.check_source(text)
    return result.workflow.model_dump() if result.workflow is not None else None


def assert_round_trip(text: str) -> str:
    """Format ``text``; the output must re-parse cleanly, give the same IR (content hash
    included) and the same diagnostics codes, and be a fixed point of both entry points."""
    out = format_source(text)
    tree, parse_diags = parse(out)
    assert parse_diags == [], [d.render() for d in parse_diags] + [out]
    before, after = dsl.check_source(text), dsl.check_source(out)
    assert (before.workflow is None) == (after.workflow is None)
    if before.workflow is not None and after.workflow is not None:
        assert before.workflow.model_dump() == after.workflow.model_dump()
        assert before.workflow.content_hash == after.workflow.content_hash
    assert sorted(d.code for d in before.diagnostics) == sorted(d.code for d in after.diagnostics)
    assert format_source(out) == out
    once = format_file(parse(text)[0])
    assert format_file(parse(once)[0]) == once
    assert out.endswith("\n") and not out.endswith("\n\n")
    return out


RICH = src(r'''
    ## header comment
    vars:
      name: string = "de\"fault"  ## inline on a var
      count: int = 10
      offset: int = -3
      rate: float = 3.14
      ratio: float = 2
      verbose: bool = false
      config: json = { "key": "value", "n": [1, 2.5, null, true, 1.0], "nested": {"e": "\u00e9"} }
      tags: string[] = [
        "security",
        "performance",
      ]
      empty: string[] = []
      bare: string

    mcp_server github:
      transport: stdio
      command: "npx"
      args: ["-y", "@modelcontextprotocol/server-github"]

    mcp_server docs:
      transport: http
      url: "https://example.com/mcp"

    ## the system prompt
    prompt sys:
      You are an expert reviewer of {{vars.name}}.

        Indented detail line, with a backslash \d kept.


      Last line uses {{input.summary}}.

    prompt usr:
      Review it.

    schema verdict:
      approved: bool
      ## about confidence
      confidence: string [enum: "low", "medium", "high"]
      summary: string

    agent reviewer:
      model: "claude-sonnet"
      delegate: "claude_code"
      input: verdict
      output: verdict
      publish: review_report
      system: sys
      user: usr
      session: fresh
      tools: [read_file, mcp.github.*, "odd tool"]
      tool_policy: [read_file]
      tool_max_steps: 5
      reasoning_effort: high
      readonly: true
      interaction: llm_or_human
      interaction_prompt: usr
      interaction_model: "haiku"
      mcp:
        autoload_project: false
        inherit: true
        servers: [github]
        disable: [docs]

    judge critic:
      backend: "codex"
      model: "gpt"
      output: verdict
      system: sys

    router fan:
      mode: fan_out_all
      model: "leftover"
    router picker:
      mode: llm
      model: "router-model"
      system: sys
      user: usr
      multi: true
    router rr:
      mode: round_robin
    router cond:
      mode: condition

    join merge:
      await: best_effort
      require: [critic, reviewer]
      output: verdict

    human approve:
      mode: auto_answer
      output: verdict
      model: "answer-model"
      timeout: "48h"
    human gate:
      interaction: human
      instructions: usr
      min_answers: 2
      output: verdict

    tool run_tests:
      publish: test_report  ## inline on a tool's publish
      command: "pytest -q {{vars.name}} \\ \"quoted\""
      output: verdict
    tool read:
      call: fs.read_file
      input: verdict
      publish: read_back

    wait pause:
      duration: "1h30m"

    workflow main:
      vars:
        pr_title: string = "t"
        retries: int = 3
      entry: reviewer  ## start here
      budget:
        max_parallel_branches: 2
        max_duration: "30m"
        max_cost_usd: 10.5
        max_tokens: 400000
        max_iterations: 20
      default_backend: "claude_code"
      tool_policy: [git_diff, mcp.github.*]
      interaction: llm
      mcp:
        autoload_project: true
      ## the edges
      reviewer -> critic when approved
      reviewer -> run_tests when not approved as fix_loop(5) with {
        feedback: "{{outputs.reviewer.summary}}",  ## inline on an entry
        title: "{{vars.pr_title}}"
        ## end of the with block
      }
      run_tests -> reviewer as fix_loop(5) with { note: "{{outputs.run_tests.summary}}" }
      critic -> picker
      picker -> approve
      picker -> gate
      approve -> merge
      gate -> merge
      merge -> pause
      pause -> read
      read -> fan
      fan -> rr
      fan -> cond
      rr -> done
      rr -> fail
      cond -> done
    ## end of file
    ''')


def test_rich_file_round_trips() -> None:
    out = assert_round_trip(RICH)
    # Properties the user did not write stay unwritten; every written one is kept as spelled.
    assert "delegate: \"claude_code\"" in out and "backend: \"codex\"" in out
    assert "  mode: auto_answer\n" in out and "  interaction: human\n" in out
    assert "  await: best_effort\n" in out
    assert "  session: fresh\n" in out and out.count("session:") == 1
    assert "router fan:\n  mode: fan_out_all\n  model: \"leftover\"\n" in out  # llm-only, still printed
    assert "  input: verdict\n" in out.split("tool read:")[1]
    assert "  interaction: llm\n" in out.split("workflow main:")[1]
    assert "  timeout: \"48h\"\n" in out and "  duration: \"1h30m\"\n" in out
    assert "  call: fs.read_file\n" in out
    assert "  output: verdict\n  publish: test_report  ## inline on a tool's publish\n" in out.split("tool run_tests:")[1]
    assert "  input: verdict\n  publish: read_back\n" in out.split("tool read:")[1]
    assert '  config: json = {"key": "value", "n": [1, 2.5, null, true, 1.0], "nested": {"e": "é"}}\n' in out
    assert '  tags: string[] = ["security", "performance"]\n' in out
    assert "  tools: [read_file, mcp.github.*, \"odd tool\"]\n" in out


def test_layout_is_canonical() -> None:
    out = format_source(RICH)
    order = ["vars:", "mcp_server github:", "mcp_server docs:", "prompt sys:", "prompt usr:", "schema verdict:",
             "agent reviewer:", "judge critic:", "router fan:", "router picker:", "router rr:", "router cond:",
             "join merge:", "human approve:", "human gate:", "tool run_tests:", "tool read:", "wait pause:",
             "workflow main:"]
    positions = [out.index("\n" + header + "\n") if i else out.index(header + "\n") for i, header in enumerate(order)]
    assert positions == sorted(positions)
    # One empty line between top-level blocks.
    for header in order[1:]:
        assert f"\n\n{header}\n" in out or f"\n\n## the system prompt\n{header}\n" in out
    # The agent's nested mcp block comes first, indented by 4.
    assert "agent reviewer:\n  mcp:\n    autoload_project: false\n    inherit: true\n" in out
    # Prompt bodies: 2 spaces, relative indentation and inner empty lines kept.
    assert ("prompt sys:\n  You are an expert reviewer of {{vars.name}}.\n\n"
            "    Indented detail line, with a backslash \\d kept.\n\n\n"
            "  Last line uses {{input.summary}}.\n") in out
    workflow = out.split("workflow main:\n")[1]
    assert workflow.startswith(
        "  vars:\n    pr_title: string = \"t\"\n    retries: int = 3\n"
        "  mcp:\n    autoload_project: true\n"
        "  default_backend: \"claude_code\"\n"
        "  tool_policy: [git_diff, mcp.github.*]\n"
        "  interaction: llm\n"
        "\n  entry: reviewer  ## start here\n"
        "\n  budget:\n    max_parallel_branches: 2\n    max_duration: \"30m\"\n    max_cost_usd: 10.5\n"
        "    max_tokens: 400000\n    max_iterations: 20\n"
        "\n  ## the edges\n  reviewer -> critic when approved\n"
    )
    assert ("  reviewer -> run_tests when not approved as fix_loop(5) with {\n"
            "    feedback: \"{{outputs.reviewer.summary}}\",  ## inline on an entry\n"
            "    title: \"{{vars.pr_title}}\",\n"
            "    ## end of the with block\n"
            "  }\n") in workflow
    assert "  run_tests -> reviewer as fix_loop(5) with {\n    note: \"{{outputs.run_tests.summary}}\"\n  }\n" in workflow


def test_every_comment_is_kept_once_in_order() -> None:
    text = src('''
        ## one
        vars:
          a: string  ## two
          ## three
          b: int

        ## four

        agent x:  ## five
          model: "m"  ## six
          ## seven
          output: s
            ## eight (deeper: end of the agent block)

        ## nine
        workflow w:
          ## ten
          entry: x
          budget:
            max_tokens: 10
            ## eleven (end of the budget block)
          x -> done with {
            k1: "a",  ## twelve
            ## thirteen
            k2: "b"
          }
          ## fourteen (end of the workflow)
        ## fifteen
        ''')
    out = assert_round_trip(text)
    words = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen".split()
    where = []
    for word in words:
        found = [m.start() for m in re.finditer(rf"## {word}\b", out)]
        assert len(found) == 1, word
        where += found
    assert where == sorted(where)
    # Placement: before the next item at its indentation, inline stays inline, block ends.
    assert "vars:\n  a: string  ## two\n  ## three\n  b: int\n" in out
    assert "## four\n\nagent x:  ## five\n" in out  # the empty line after a detached comment is kept
    assert '  model: "m"  ## six\n  ## seven\n  output: s\n  ## eight (deeper: end of the agent block)\n' in out
    assert "    max_tokens: 10\n    ## eleven (end of the budget block)\n" in out
    assert '    k1: "a",  ## twelve\n    ## thirteen\n    k2: "b",\n  }\n' in out
    assert out.endswith("  ## fourteen (end of the workflow)\n\n## fifteen\n")


def test_comment_between_groups_follows_its_declaration() -> None:
    text = src('''
        workflow w:
          entry: a
          a -> done
        ## about agent a
        agent a:
          model: "m"
        ''')
    out = assert_round_trip(text)
    assert out.startswith('## about agent a\nagent a:\n  model: "m"\n\nworkflow w:\n')


def test_comment_lines_keep_their_inner_indentation() -> None:
    text = "## Diagram:\n##   a -> b\n##     -> c\n" + src('''
        agent a:
          model: "m"
        workflow w:
          entry: a
          a -> done
        ''')
    out = assert_round_trip(text)
    assert out.startswith("## Diagram:\n##   a -> b\n##     -> c\nagent a:\n")


ITERION_BASIC = src('''
    vars:
      workspace_dir: string = "${PROJECT_DIR}"
      debug: bool

    prompt my_prompt:
      You are an expert.
      Analyze the logs.

    schema diagnosis:
      confidence: string [enum: "low", "medium", "high"]
      tags: string[]
      green: bool

    agent diagnose:
      model: "claude"
      output: diagnosis
      tools: [read_file, list_files]

    agent verify_ci:
      model: "claude"
      output: diagnosis

    router my_router:
      mode: fan_out_all

    workflow fix:
      vars:
        attempts: int = 3
      entry: verify_ci
      budget:
        max_parallel_branches: 1
        max_duration: "30m"
        max_cost_usd: 15
        max_tokens: 400000
        max_iterations: 10
      verify_ci -> diagnose when not green as fix_loop(5) with {
        logs: "{{outputs.verify_ci}}",
        dir: "{{vars.workspace_dir}}"
      }
      verify_ci -> done when green
      diagnose -> verify_ci with { reason: "{{outputs.diagnose.confidence}}" }
    ''')


def test_iterion_pinned_fragments() -> None:
    out = assert_round_trip(ITERION_BASIC)
    for fragment in (
        'vars:\n  workspace_dir: string = "${PROJECT_DIR}"\n  debug: bool\n',
        "prompt my_prompt:\n  You are an expert.\n  Analyze the logs.\n",
        'confidence: string [enum: "low", "medium", "high"]',
        "tags: string[]",
        "tools: [read_file, list_files]",
        "router my_router:\n  mode: fan_out_all\n",
        "  vars:\n    attempts: int = 3\n",
        '  budget:\n    max_parallel_branches: 1\n    max_duration: "30m"\n    max_cost_usd: 15\n'
        "    max_tokens: 400000\n    max_iterations: 10\n",
        "verify_ci -> diagnose when not green as fix_loop(5) with {\n",
        '    logs: "{{outputs.verify_ci}}",\n    dir: "{{vars.workspace_dir}}",\n  }\n',
        # A single entry still uses the multi-line form, without a comma.
        'diagnose -> verify_ci with {\n    reason: "{{outputs.diagnose.confidence}}"\n  }\n',
    ):
        assert fragment in out, fragment


def test_backslashes_are_not_doubled() -> None:
    text = src(r'''
        vars:
          pattern: string = "a\\b \"c\" \n"
        tool t:
          command: "grep -E \"x\\.y\" {{vars.pattern}}"
        workflow w:
          entry: t
          t -> done with { re: "\\d+\"" }
        ''')
    out = assert_round_trip(text)
    assert r'pattern: string = "a\\b \"c\" \n"' in out
    assert r'command: "grep -E \"x\\.y\" {{vars.pattern}}"' in out
    assert r're: "\\d+\""' in out
    assert format_source(format_source(out)) == out


def test_numbers_re_read_as_the_same_values() -> None:
    text = src('''
        vars:
          j: json = [1.0, 100000000000000000000.0, 0.00001, -0.0, 7, "x\\\\y", {"k": []}, null]
          f: float = 2
          g: float = 2.50
          n: int = -12
        agent a:
          model: "m"
        workflow w:
          entry: a
          budget:
            max_cost_usd: 0.1
          a -> done
        ''')
    out = assert_round_trip(text)
    assert 'j: json = [1.0, 100000000000000000000.0, 0.00001, -0.0, 7, "x\\\\y", {"k": []}, null]' in out
    assert "f: float = 2\n" in out and "g: float = 2.50\n" in out and "n: int = -12\n" in out
    assert "max_cost_usd: 0.1\n" in out


def test_awkward_but_valid_spellings() -> None:
    text = src('''
        schema s:
          not: bool
          e: string [enum: low, 5, "x"]
        agent a:
            model:"m"
            backend: "first"
            delegate: "second"
            session: "fork"
            tools: ["a.b", "*", string[], "1abc"]
            output: s
        join j:
          strategy: wait_all
          await: best_effort
          require: ["join", "a b", a]
        human h:
          interaction: none
          mode: auto_or_pause
          output: s
          model: "m"
        tool t:
          call: "ns.tool"
        workflow w:
          entry: a
          tool_policy: []
          a -> h as l(2) when not
          a -> t when not not with { "join": "x", "k y": "v" }
          a -> j with {}
          h -> done
        workflow ignored:
          entry: x
        ''')
    out = assert_round_trip(text)
    assert '  delegate: "second"\n' in out and "backend:" not in out  # the spelling written last wins
    assert "  await: best_effort\n" in out and "strategy:" not in out
    assert "  mode: auto_or_pause\n" in out and "interaction:" not in out.split("human h:")[1].split("\n\n")[0]
    assert "  a -> h as l(2) when not\n" in out
    assert '    "join": "x",\n    "k y": "v",\n' in out
    assert "  a -> j with {}\n" in out
    assert "workflow ignored:\n  entry: x\n" in out


def test_empty_and_comment_only_files() -> None:
    assert format_source("") == ""
    assert format_source("\n\n") == ""
    assert format_file(dsl.File()) == ""
    assert format_source("## just a note\n\n## another\n") == "## just a note\n\n## another\n"


def test_parse_errors_are_refused() -> None:
    with pytest.raises(ValueError, match="E012"):
        format_source('agent a:\n  modle: "m"\n')
    with pytest.raises(ValueError, match="E004"):
        format_source('agent a:\n  model: "m\n')
    # Compile errors are fine: the file is still formatted as written.
    assert format_source("workflow w:\n  entry: nowhere\n") == "workflow w:\n  entry: nowhere\n"


@pytest.mark.parametrize("path", EXAMPLES, ids=[str(p.relative_to(ROOT)) for p in EXAMPLES])
def test_examples_round_trip(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    if any(d.code.startswith("E") for d in parse(text)[1]):
        pytest.fail(f"{path} does not parse")
    out = assert_round_trip(text)
    tree = parse(text)[0]
    for comment in tree.comments:
        assert comment.text in out


COMMENT_LINES = st.tuples(
    st.integers(min_value=0, max_value=10_000),
    st.sampled_from([0, 1, 2, 3, 4, 6, 8]),
    st.booleans(),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(COMMENT_LINES, min_size=1, max_size=8))
def test_comments_anywhere_round_trip(placements: list[tuple[int, int, bool]]) -> None:
    """Comments dropped at random lines and indentations (or at line ends) never break the
    contract, and each one survives."""
    lines = RICH.split("\n")
    for n, (where, indent, inline) in enumerate(placements):
        i = where % len(lines)
        if inline:
            lines[i] += f"  ## inline {n}"
        else:
            lines.insert(i, " " * indent + f"## note {n}")
    text = "\n".join(lines)
    tree, diags = parse(text)
    if any(d.code.startswith("E") for d in diags):
        return  # e.g. a comment that split a prompt body; not this test's concern
    out = assert_round_trip(text)
    for comment in tree.comments:
        assert comment.text in out


def test_edges_keep_the_groups_their_author_separated_with_empty_lines() -> None:
    text = src('''
        agent a:
          model: "m"

        agent b:
          model: "m"

        workflow w:
          entry: a
          a -> b with { x: "1" }

          ## the end
          b -> done
          b -> fail

          a -> fail
        ''')
    out = assert_round_trip(text)
    assert out.endswith('  a -> b with {\n    x: "1"\n  }\n\n  ## the end\n  b -> done\n  b -> fail\n\n  a -> fail\n')

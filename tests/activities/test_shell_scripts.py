"""Inline tool scripts (`script:` + `language:`) run by their interpreter through the shell activity.

Each test renders a script as the workflow does (dsl/scripts.py: templates become code reading
`ITERLOOP_VALUE_n`, the script itself travels as `ITERLOOP_VALUE_0`) and runs it in a real
subprocess of the real activity.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from temporalio.testing import ActivityEnvironment

from activities.shell import shell_exec
from dsl import scripts
from dsl.ir import Ref
from dsl.templates import MISSING
from workflows.contract.env_refs import expand_env
from workflows.contract.messages import ShellRequest, ShellResult, ShellValue

HOSTILE = 'x"; process.exit(3); "\' + __import__("os")._exit(3) + \'$(exit 3)'


async def run_script(script: str, language: str, inputs: dict[str, Any], cwd: Path | None = None) -> ShellResult:
    def lookup(ref: Ref) -> Any:
        return inputs.get(ref.path[0], MISSING) if ref.kind == "input" else MISSING

    rendered = scripts.render_script(script, language, lookup)
    values = [ShellValue(env=scripts.SCRIPT_ENV, ref="the script", value=rendered.text)]
    values += [ShellValue(env=env, ref=ref, value=value) for env, ref, value in rendered.values]
    req = ShellRequest(run_id="run-1", node_id="script", command=scripts.command_for(language), values=values,
                       cwd=str(cwd) if cwd else None)
    return await ActivityEnvironment().run(shell_exec, req)


async def test_a_js_script_reads_values_with_their_json_type() -> None:
    script = ("const p = {{!input.packages}};\nconst n = {{input.count}};\n"
              "console.log(JSON.stringify({first: p[0].name, n, t: typeof {{input.label}}}));\n")
    result = await run_script(script, "js", {"packages": [{"name": "left-pad"}], "count": 2, "label": "12"})
    assert result.output == {"first": "left-pad", "n": 2, "t": "string"}


async def test_a_value_inside_a_js_string_literal_is_data_not_code() -> None:
    script = 'const s = "scope: {{!input.scope}}";\nconsole.log(JSON.stringify({s}));\n'
    result = await run_script(script, "js", {"scope": HOSTILE})
    assert result.exit_code == 0 and result.output == {"s": "scope: " + HOSTILE}


async def test_a_python_script_reads_values_in_code_and_in_strings() -> None:
    script = ('import json\nitems = {{input.items}}\nlabel = "n={{!input.label}}"\n'
              "print(json.dumps({'count': len(items), 'label': label}))\n")
    result = await run_script(script, "py", {"items": ["a", "b", "c"], "label": HOSTILE})
    assert result.exit_code == 0 and result.output == {"count": 3, "label": "n=" + HOSTILE}


async def test_a_bash_script_runs_in_the_run_directory(tmp_path: Path) -> None:
    (tmp_path / "marker.txt").write_text("here")
    result = await run_script('set -euo pipefail\nprintf \'{"seen": "%s"}\' "$(cat marker.txt)"\n', "bash", {},
                              cwd=tmp_path)
    assert result.output == {"seen": "here"}


def test_nested_env_defaults_fall_back_one_level_at_a_time() -> None:
    text = "${A:-${B:-${C:-high}}}"
    assert expand_env(text, {"A": "low"}) == "low"
    assert expand_env(text, {"B": "medium"}) == "medium"
    assert expand_env(text, {}) == "high"
    assert expand_env("${A:-plain} ${A:-${B}x}", {"B": "b"}) == "plain bx"

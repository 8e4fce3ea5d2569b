"""Inline tool scripts (`script:` + `language:`) in a real run: Temporal dev server, real worker,
real interpreters."""

from __future__ import annotations

from typing import Any

import pytest
import runs
from runs import finish
from temporalio.testing import WorkflowEnvironment

pytestmark = pytest.mark.asyncio

HOSTILE = 'x"; process.exit(3); "\' + __import__("os")._exit(3) + \'$(exit 3)'

SCRIPTS = """
vars:
  packages: json
  scope: string
tool count_js:
  language: js
  script: |
    const pkgs = {{vars.packages}};
    console.log(JSON.stringify({count: pkgs.length, scope: "scope={{!vars.scope}}"}));
tool count_py:
  language: py
  script: |
    import json
    print(json.dumps({"first": {{vars.packages}}[0], "scope": "scope={{vars.scope}}"}))
tool echo_sh:
  language: bash
  script: |
    set -euo pipefail
    printf '{"scope": "%s"}' {{vars.scope}} | tr -d '\\n'
workflow scripted:
  entry: count_js
  count_js -> count_py
  count_py -> echo_sh
  echo_sh -> done
"""


async def test_scripts_of_each_language_run_with_their_values_as_data(temporal_env: WorkflowEnvironment,
                                                                      task_queue: str) -> None:
    inputs: dict[str, Any] = {"packages": ["left-pad", "is-odd"], "scope": HOSTILE}
    async with runs.running_worker(temporal_env.client, task_queue):
        handle = await runs.start(temporal_env.client, task_queue, SCRIPTS, inputs=inputs)
        result = await finish(handle)
    assert result.status == "finished", result
    assert result.outputs["count_js"] == {"count": 2, "scope": "scope=" + HOSTILE}
    assert result.outputs["count_py"] == {"first": "left-pad", "scope": "scope=" + HOSTILE}
    assert result.outputs["echo_sh"] == {"result": '{"scope": "' + HOSTILE + '"}'}

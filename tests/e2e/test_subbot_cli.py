"""A sub-workflow through the command line: `iterloop run` compiles the child file beside the
parent, and the child run is listed by `iterloop list` like any run."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_harness import Cli
from runs import poll

pytestmark = pytest.mark.asyncio

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


async def test_run_starts_the_subbot_file_as_a_child_run_that_list_shows(cli: Cli) -> None:
    started = await cli("run", str(EXAMPLES / "segment_review_subbot.iter"), "--offline", "--run-id", "review-sub",
                        timeout=120)
    assert started.code == 0, started.err + started.out

    async def listed() -> list[str]:
        result = await cli("list", "--json", "--limit", "100")
        assert result.code == 0, result.err
        return [row["run_id"] for row in result.json() if row["run_id"] == "review-sub-conversion-1"]

    assert await poll(listed, "the child run in iterloop list") == ["review-sub-conversion-1"]
    inspected = await cli("inspect", "review-sub-conversion-1", "--json")
    assert inspected.code == 0, inspected.err
    assert inspected.json()["status"] == "finished"

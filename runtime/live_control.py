"""Live control of a running run, as `iterloop budget|pause|resume` and `POST /api/runs/{id}/budget|
pause|resume` ask for it: the requests read from options (checked here, before anything is sent),
and the lines that tell a person what the run now has.

The run service sends them as GraphRun's validated updates (`raise_budget`, `grant_iterations`,
`pause`, `resume`): the run refuses what it cannot take (a limit not above the one in force, an
unknown loop) and records nothing then.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from runtime.command_errors import UsageError
from runtime.console import print_json

if TYPE_CHECKING:
    from runtime.run_models import ControlApplied
    from workflows.contract.state import BudgetRaise, LoopGrant


def budget_request(*, max_cost_usd: float | None = None, max_tokens: int | None = None,
                   max_iterations: int | None = None, max_duration: str | None = None,
                   grants: list[str] | None = None, by: str, reason: str = "") -> tuple[BudgetRaise | None, list[LoopGrant]]:
    """The raise and the loop grants a `budget` request asks for (`UsageError` on a value no run
    could take: not a positive number, a duration that does not parse, a grant not `LOOP=N`)."""
    from dsl.durations import parse_duration
    from workflows.contract.state import BudgetRaise, LoopGrant

    if max_cost_usd is not None and not (math.isfinite(max_cost_usd) and max_cost_usd > 0):
        raise UsageError(f"--max-cost-usd {max_cost_usd:g}: give a positive number of US dollars, e.g. 10")
    for flag, value in (("--max-tokens", max_tokens), ("--max-iterations", max_iterations)):
        if value is not None and value < 1:
            raise UsageError(f"{flag} {value}: give a positive whole number")
    duration_seconds = None
    if max_duration is not None:
        duration_seconds = parse_duration(max_duration)
        if duration_seconds is None or duration_seconds <= 0:
            raise UsageError(f"--max-duration {max_duration!r}: give a duration such as 90s, 30m or 2h")
    raised = BudgetRaise(max_cost_usd=max_cost_usd, max_tokens=max_tokens, max_iterations=max_iterations,
                         max_duration_seconds=duration_seconds, by=by, reason=reason)
    loop_grants = [_grant(text, by, reason, LoopGrant) for text in grants or []]
    return (raised if raised.limits() else None), loop_grants


def _grant(text: str, by: str, reason: str, model: type[LoopGrant]) -> LoopGrant:
    loop, sep, count = text.partition("=")
    if not sep or not loop.strip() or not count.strip().isdigit() or int(count) < 1:
        raise UsageError(f"--grant {text!r}: expected LOOP=N with N a positive whole number, e.g. --grant refine=2")
    return model(loop=loop.strip(), iterations=int(count), by=by, reason=reason)


def print_control(result: ControlApplied, *, as_json: bool) -> None:
    """`iterloop budget|pause|resume`: what the run now has."""
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    if result.action == "pause":
        print(f"run {result.run_id} holds at its next node boundary (a node running now finishes first); "
              f"`iterloop resume {result.run_id}` lets it go on")
    elif result.action == "resume":
        print(f"run {result.run_id} goes on")
    else:
        limits = ", ".join(f"{dim} {limit:g}" for dim, limit in result.limits.items() if limit) or "none"
        grants = ", ".join(f"{loop} +{n}" for loop, n in result.loop_grants.items())
        print(f"run {result.run_id}: limits now {limits}" + (f"; loop iterations granted: {grants}" if grants else "")
              + f" (status {result.status})")

"""The vocabulary is the one definition: what the interpreter emits is in it, and nothing in it is dead."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import get_args

from workflows.contract import vocabulary as V

WORKFLOWS = Path(__file__).resolve().parents[3] / "workflows"


def event_names(expr: ast.expr) -> set[str]:
    """The event names an `emit` argument can evaluate to (a literal, or either side of `a if c else b`)."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return {expr.value}
    if isinstance(expr, ast.IfExp):
        return event_names(expr.body) | event_names(expr.orelse)
    return set()


def emitted_event_literals() -> set[str]:
    """Every string literal the interpreter hands to `emit` (directly or through a conditional or a table)."""
    found: set[str] = set()
    for path in WORKFLOWS.rglob("*.py"):
        if "contract" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "emit" and node.args:
                found |= event_names(node.args[0])
            # tables of event names, e.g. `_END_EVENTS: dict[str, EventType] = {"failed": "run_failed", …}`
            if (isinstance(node, ast.AnnAssign) and isinstance(node.value, ast.Dict)
                    and "EventType" in ast.unparse(node.annotation)):
                found |= {v.value for v in node.value.values if isinstance(v, ast.Constant)}
    return found


def test_every_event_the_interpreter_emits_is_in_the_vocabulary() -> None:
    emitted = emitted_event_literals()
    assert emitted, "found no emit() calls: the scan is broken"
    assert emitted <= set(V.EVENT_TYPES), sorted(emitted - set(V.EVENT_TYPES))


def test_every_event_type_of_the_vocabulary_is_emitted_somewhere() -> None:
    assert set(V.EVENT_TYPES) <= emitted_event_literals(), sorted(set(V.EVENT_TYPES) - emitted_event_literals())


def test_derived_tuples_follow_their_literals() -> None:
    assert V.RUN_STATUSES == get_args(V.RunStatus)
    assert V.NOTIFY_EVENTS == get_args(V.NotifyEvent)
    assert V.FINAL_STATUSES < set(V.RUN_STATUSES)
    assert set(V.RETRYABLE) <= set(V.ERROR_TYPES)
    assert set(V.NON_RETRYABLE) == set(V.ERROR_TYPES) - set(V.RETRYABLE)


def test_the_workflow_retry_policy_never_retries_a_permanent_error_type() -> None:
    from temporalio.exceptions import ApplicationError

    from workflows import graph_run
    from workflows.activity_retries import error_retry_delay

    # Temporal retries no error of the vocabulary itself (only lost workers); the run retries the
    # retryable ones, and only those.
    assert list(graph_run._ENDS_THE_ATTEMPTS) == list(V.ERROR_TYPES)  # noqa: SLF001
    retried = {t for t in V.ERROR_TYPES if error_retry_delay(ApplicationError("x", type=t), 1, 3) is not None}
    assert retried == set(V.RETRYABLE)
    assert "ModelRateLimited" in retried and "ModelAuthFailed" not in retried

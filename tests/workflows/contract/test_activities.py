"""Each activity's implementation has the name, request type and result type its spec says."""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any

import pytest
from temporalio import activity

from workflows.contract import activities as A


def implementations() -> list[Callable[..., Any]]:
    """What `worker.build_worker` registers."""
    from activities.delegate.activity import delegate
    from activities.llm.activity import llm_turn
    from activities.mcp import mcp_call, mcp_check
    from activities.notify import Notifier
    from activities.shell import shell_exec
    from activities.tools.registry import tool_call

    return [llm_turn, shell_exec, tool_call, Notifier.notify, mcp_call, mcp_check, delegate]


def signature(fn: Callable[..., Any]) -> tuple[str, type, type]:
    definition = activity._Definition.from_callable(fn)  # noqa: SLF001  (the SDK's own reading of @activity.defn)
    assert definition is not None and definition.name is not None, fn
    hints = typing.get_type_hints(fn)
    params = [v for k, v in hints.items() if k != "return"]
    return definition.name, params[-1], hints["return"]


def test_every_spec_has_exactly_one_implementation() -> None:
    assert sorted(signature(fn)[0] for fn in implementations()) == sorted(spec.name for spec in A.ALL)


@pytest.mark.parametrize("spec", A.ALL, ids=[s.name for s in A.ALL])
def test_an_implementation_takes_the_spec_request_and_returns_its_result(spec: A.ActivitySpec[Any, Any]) -> None:
    found = {name: (req, res) for name, req, res in map(signature, implementations())}
    assert found[spec.name] == (spec.request, spec.result)

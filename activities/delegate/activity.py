"""The delegation activity (`iterloop.delegate`): one node visit handed to a coding agent's CLI.

The worker finds each CLI once at start (`configure`); a request names its backend
(`claude_code.py`, `codex.py`), which builds the command line and reads the stream. Here: the
offline answer (a run with a script never starts a CLI), heartbeats carrying the latest step (so a
cancel reaches a CLI that works for an hour, and the Web UI shows what it does), the answer checked
against the node's output schema, and large outputs offloaded like a model's.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from pathlib import Path
from typing import Any

from temporalio import activity

from activities import artifacts
from activities.delegate.backend import DelegateBackendRunner
from activities.delegate.stream import json_object_in
from activities.errors import BadRequestError
from activities.llm.scripted import scripted_output, scripted_tokens
from workflows.contract import vocabulary
from workflows.contract.delegation import (
    INTERACTION_PROTOCOL,
    DelegateRequest,
    DelegateResult,
    DelegateStep,
    interaction_questions,
    without_interaction_keys,
)
from workflows.contract.messages import LLMTurnRequest, Usage
from workflows.contract.output_validation import find_violation
from workflows.contract.scripts import COST_KEY

#: The backend modules, by the name a node's `backend:` gives (module `activities.delegate.NAME`).
_MODULES = {"claude_code": "activities.delegate.claude_code", "codex": "activities.delegate.codex"}
#: How the offline answer labels itself (usage provider and the text), like the scripted model.
SCRIPTED = "scripted"

_binaries: dict[str, Path | None] = {}
_problems: dict[str, str] = {}
_offline = [False]


def configure(*, claude_bin: Path | None = None, codex_bin: Path | None = None,
              problems: dict[str, str] | None = None, offline: bool = False) -> None:
    """Called by the worker at start with the binaries it found (None: not installed; the
    problem text says where it looked, for the failure of a node that needs it). An offline
    worker answers every delegated node from the script, like its model calls."""
    _offline[0] = offline
    _binaries.clear()
    _binaries.update({"claude_code": claude_bin, "codex": codex_bin})
    _problems.clear()
    _problems.update(problems or {})


def backend_runner(name: str) -> DelegateBackendRunner:
    module = _MODULES.get(name)
    if module is None:
        raise BadRequestError(f"unknown delegation backend {name!r}; use one of {', '.join(sorted(_MODULES))}")
    try:
        return importlib.import_module(module).run  # type: ignore[no-any-return]
    except (ImportError, AttributeError) as e:
        raise BadRequestError(f"delegation backend {name!r} is not available on this worker: {e}") from e


def scripted_result(req: DelegateRequest) -> DelegateResult:
    """Offline: the script's answer for this node and visit (or one generated from the schema),
    labelled as scripted; no CLI runs."""
    turn = LLMTurnRequest(run_id=req.run_id, node_id=req.node_id, node_kind=req.node_kind, visit=req.visit,
                          system=req.system, user=req.user, input=req.input, output_schema=req.output_schema,
                          script=req.script)
    output = scripted_output(turn)
    if req.interaction_round:  # offline, a person has answered: the script's answer, without asking again
        output = without_interaction_keys(output)
    tokens = scripted_tokens(turn, output)
    usage = Usage(provider=SCRIPTED, model=SCRIPTED, input_tokens=tokens.input_tokens,
                  output_tokens=tokens.output_tokens, calls=1,
                  cost_usd=float((req.script or {}).get(COST_KEY, 0.0)))
    return DelegateResult(status="final", output=output, usage=usage, session_id=f"scripted-{req.node_id}-{req.visit}",
                          text=f"scripted answer ({req.backend} not run offline)",
                          steps=[DelegateStep(kind="other", summary=f"scripted: {req.backend} not run offline")])


def checked(req: DelegateRequest, result: DelegateResult) -> DelegateResult:
    """A final answer that asks a person (a node with `interaction:`) becomes `needs_interaction`
    with the questions; one that does not match the output schema becomes `invalid`, with the reason."""
    if result.status != "final":
        return result
    if req.interaction:
        answer = result.output if req.output_schema is not None else json_object_in(result.text)
        questions = interaction_questions(answer) if isinstance(answer, dict) else None
        if questions is not None:
            return result.model_copy(update={"status": "needs_interaction", "questions": questions, "output": {}})
        if req.output_schema is not None:
            result = result.model_copy(update={"output": without_interaction_keys(result.output)})
    if req.output_schema is None:
        return result
    violation = find_violation(req.output_schema, result.output)
    if violation is None:
        return result
    return result.model_copy(update={"status": "invalid", "invalid_reason": violation.describe()})


async def run_delegate(req: DelegateRequest, *, heartbeat: Any = None) -> DelegateResult:
    """The activity's work, callable outside Temporal (tests) with ``heartbeat=None``."""
    if req.script is not None or _offline[0]:
        return checked(req, scripted_result(req if req.script is not None else req.model_copy(update={"script": {}})))
    runner = backend_runner(req.backend)
    binary = _binaries.get(req.backend)
    if binary is None:
        raise BadRequestError(f"node '{req.node_id}' delegates to {req.backend}, but this worker has no "
                              f"{req.backend} CLI: {_problems.get(req.backend, 'not configured')}")
    cache: dict[str, object] = {}
    tokens = req.artifact_tokens
    system = await artifacts.resolve_async(req.system, cache, tokens=tokens)
    if req.interaction:
        system = f"{system}\n\n{INTERACTION_PROTOCOL}" if system else INTERACTION_PROTOCOL
    resolved = req.model_copy(update={"system": system,
                                      "user": await artifacts.resolve_async(req.user, cache, tokens=tokens),
                                      "input": await artifacts.resolve_async(req.input, cache, tokens=tokens)})
    latest: dict[str, Any] = {"steps": 0}

    def on_step(step: DelegateStep) -> None:
        latest.update(steps=latest["steps"] + 1, latest=step.summary, tool=step.tool)

    async def beat() -> None:
        while True:
            heartbeat(dict(latest))
            await asyncio.sleep(max(req.heartbeat_seconds, 0.5))

    beating = asyncio.create_task(beat()) if heartbeat is not None else None
    try:
        result = await runner(resolved, binary=binary, on_step=on_step)
    finally:
        if beating is not None:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
    result = checked(req, result)
    output = await artifacts.offload_async(result.output, run_id=req.run_id, node_id=req.node_id,
                               threshold=req.offload_threshold_bytes)
    return result if output is result.output else result.model_copy(update={"output": output})


@activity.defn(name=vocabulary.DELEGATE)
async def delegate(req: DelegateRequest) -> DelegateResult:
    return await run_delegate(req, heartbeat=activity.heartbeat)

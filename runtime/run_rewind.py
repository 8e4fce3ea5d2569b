"""Rewind and fork: resume a run from an earlier node (the same run id), or start a new run from there.

Both read the run's whole state (the `run_state` query: it holds a checkpoint per node the main
walk entered) and its current input (the compiled workflow and options), rebuild the state as it
was before the node (`workflows.contract.rewind`) and start an execution with it as
`RunInput.carried`, `next_node` = the node and `RunInput.resume` saying which:

* **rewind** ends the run's current execution (terminated, with the reason) and starts a new
  execution of the *same workflow id*: `iterloop inspect RUN`, answers, the dashboard and the
  Web UI keep using the run id they know; the ended execution stays in Temporal's history.
* **fork** starts a new run (a new workflow id) and leaves the source alone.

Why not Temporal's reset: it replays the original input, so a rewind could not change a var or
the script that made the node go wrong, and it cannot reach back past a continue-as-new; mapping a
node's start to a workflow task of the history is also more fragile than the interpreter's own
checkpoint (docs/runtime.md, "Rewind and fork").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runtime.command_errors import CommandError, NoRewindPoint, RunAlreadyExists
from runtime.run_inputs import check_var_values, parse_var_assignments
from runtime.settings import Settings
from runtime.temporal_runs import RPC_TIMEOUT, read_run_input, temporal_errors

if TYPE_CHECKING:
    from temporalio.client import Client, WorkflowHandle

    from dsl.ir import Workflow
    from workflows.contract.state import RunInput, RunState


@dataclass
class ResumeSource:
    """What a rewind or a fork starts from: the run's current input and whole state."""

    run_input: RunInput
    state: RunState


async def read_source(client: Client, handle: WorkflowHandle[Any, Any], settings: Settings, run_id: str) -> ResumeSource:
    from workflows.contract.state import RunState

    run_input = await read_run_input(client, handle)
    if run_input is None:
        raise CommandError(f"cannot read the input of run '{run_id}' (its compiled workflow) from Temporal's history")
    async with temporal_errors(settings, run_id):
        state = await handle.query("run_state", result_type=RunState, rpc_timeout=RPC_TIMEOUT)
    return ResumeSource(run_input, state)


def var_overrides(wf: Workflow, assignments: list[str], values: dict[str, Any]) -> dict[str, Any]:
    """Typed values of the vars to change (`--var NAME=VALUE`, or a request body's JSON)."""
    return {**parse_var_assignments(assignments, wf), **check_var_values(values, wf)}


def resumed_input(source: ResumeSource, carried: RunState, *, kind: str, node: str, from_run: str, by: str,
                  overrides: dict[str, Any], script: dict[str, Any] | None) -> RunInput:
    from workflows.contract.state import Resume, RunInput

    old = source.run_input
    options = old.options if script is None else old.options.model_copy(update={"script": script})
    return RunInput(workflow=old.workflow, run_inputs={**old.run_inputs, **overrides}, source=old.source,
                    options=options, carried=carried,
                    resume=Resume(kind=kind, node=node, from_run=from_run, by=by, vars=overrides))  # type: ignore[arg-type]


async def start_resumed(client: Client, settings: Settings, run_input: RunInput, *, run_id: str, task_queue: str,
                        replace: WorkflowHandle[Any, Any] | None, running: bool, details: str) -> str:
    """Start ``run_input`` as run ``run_id``; with ``replace`` (a rewind), end that execution first when
    it is ``running`` and reuse its workflow id. Returns the new execution's Temporal run id."""
    from temporalio.common import (
        SearchAttributeKey,
        SearchAttributePair,
        TypedSearchAttributes,
        WorkflowIDConflictPolicy,
        WorkflowIDReusePolicy,
    )
    from temporalio.exceptions import WorkflowAlreadyStartedError

    from workflows.contract.state import SA_STATUS, SA_WORKFLOW, WORKFLOW_TYPE, RunResult

    wf = run_input.workflow
    attributes = TypedSearchAttributes([SearchAttributePair(SearchAttributeKey.for_keyword(SA_WORKFLOW), wf.name),
                                        SearchAttributePair(SearchAttributeKey.for_keyword(SA_STATUS), "running")])
    from temporalio.service import RPCError, RPCStatusCode

    async with temporal_errors(settings, run_id):
        if replace is not None and running:
            try:
                await replace.terminate(reason=details.splitlines()[0], rpc_timeout=RPC_TIMEOUT)
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:  # NOT_FOUND: it has ended meanwhile
                    raise
        try:
            handle = await client.start_workflow(
                WORKFLOW_TYPE, run_input, id=run_id, task_queue=task_queue, result_type=RunResult,
                id_reuse_policy=(WorkflowIDReusePolicy.ALLOW_DUPLICATE if replace is not None
                                 else WorkflowIDReusePolicy.REJECT_DUPLICATE),
                id_conflict_policy=(WorkflowIDConflictPolicy.TERMINATE_EXISTING if replace is not None
                                    else WorkflowIDConflictPolicy.FAIL),
                search_attributes=attributes, static_summary=f"{wf.name} · {run_input.source or '(api)'}",
                static_details=details, rpc_timeout=RPC_TIMEOUT)
        except WorkflowAlreadyStartedError:
            raise RunAlreadyExists(f"a run with id '{run_id}' already exists; choose another --run-id "
                                   f"(or look at it: `iterloop inspect {run_id}`)") from None
    return handle.result_run_id or ""


def check_node(wf: Workflow, node: str) -> None:
    if node not in wf.nodes:
        raise NoRewindPoint(f"workflow '{wf.name}' has no node '{node}'; nodes: {', '.join(wf.nodes)}")


"""The commands that read runs: `inspect`, `list`, `events` and `report`.

`load_run` is how a command finds an existing run: connect, describe it, make sure a worker can
answer its queries, and query its state.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dsl.ir import SchemaField, Workflow
from runtime.background_workers import ensure_worker_for_run
from runtime.command_errors import EXIT_OK, UsageError
from runtime.console import event_text, gate_answer_command, gate_fields, local_time, print_columns, print_json
from runtime.run_inputs import field_hint
from runtime.server_address import web_ui_link
from runtime.settings import Settings
from runtime.temporal_runs import (
    POLL_INTERVAL_SECONDS,
    RPC_TIMEOUT,
    TERMINAL_STATUSES,
    closed,
    connect_or_fail,
    describe_run,
    effective_status,
    execution_failure,
    execution_status,
    query_events,
    query_state,
    read_run_input,
    temporal_errors,
)

if TYPE_CHECKING:
    from temporalio.client import Client, WorkflowExecutionDescription, WorkflowHandle

    from workflows.contract.state import RunInput, RunView


async def load_run(settings: Settings, run_id: str) -> tuple[Client, WorkflowHandle[Any, Any],
                                                              WorkflowExecutionDescription, RunView]:
    """Connect, find the run, make sure a worker can answer for it, and query its state."""
    client = await connect_or_fail(settings)
    handle, desc = await describe_run(client, settings, run_id)
    await ensure_worker_for_run(client, settings, desc)
    view = await current_view(handle, desc, settings)
    return client, handle, desc, view


async def current_view(handle: WorkflowHandle[Any, Any], desc: WorkflowExecutionDescription,
                       settings: Settings) -> RunView:
    """The run's `state`, with the status corrected when Temporal ended the execution itself."""
    view = await query_state(handle, settings)
    status = effective_status(view.status, desc)
    if status != view.status:
        view = view.model_copy(update={"status": status, "reason": await execution_failure(handle, desc)})
    return view


# -- inspect -------------------------------------------------------------------------------------


def budget_rows(view: RunView, wf: Workflow | None, elapsed_seconds: float | None) -> list[dict[str, Any]]:
    """Each budget dimension: used, and the limit when the workflow sets one."""
    b = wf.budget if wf is not None else None
    used = view.budget_used
    rows = [
        {"dimension": "tokens", "used": int(used.get("tokens", view.usage.total_tokens)),
         "limit": (b.max_tokens or None) if b else None},
        {"dimension": "cost_usd", "used": round(used.get("cost_usd", view.usage.cost_usd), 6),
         "limit": (b.max_cost_usd or None) if b else None},
        {"dimension": "iterations", "used": int(used.get("iterations", 0)),
         "limit": (b.max_iterations or None) if b else None},
        {"dimension": "duration_s", "used": round(elapsed_seconds, 1) if elapsed_seconds is not None else None,
         "limit": (b.max_duration_seconds or None) if b else None},
    ]
    if b is not None and b.max_parallel_branches:
        rows.append({"dimension": "parallel_branches", "used": None, "limit": b.max_parallel_branches})
    return rows


def _elapsed(desc: WorkflowExecutionDescription) -> float | None:
    if desc.start_time is None:
        return None
    end = desc.close_time or datetime.now(UTC)
    return max(0.0, (end - desc.start_time).total_seconds())


def inspect_document(run_id: str, settings: Settings, desc: WorkflowExecutionDescription, view: RunView,
                     run_input: RunInput | None) -> dict[str, Any]:
    """Everything `iterloop inspect` shows, as the JSON document `--json` prints."""
    wf = run_input.workflow if run_input is not None else None
    nodes = {}
    for name, state in view.nodes.items():
        nodes[name] = {"kind": wf.nodes[name].kind if wf is not None and name in wf.nodes else "",
                       "visits": state.visits, "status": state.status, "attempts": state.attempts,
                       "tokens": state.usage.total_tokens, "cached_tokens": state.usage.cached_tokens,
                       "model_calls": state.usage.calls, "cost_usd": round(state.usage.cost_usd, 6),
                       "model": state.usage.model, "error": state.error}
    return {
        "run_id": run_id,
        "workflow": view.workflow,
        "source": view.source,
        "status": view.status,
        "reason": view.reason,
        "execution_status": execution_status(desc),
        "task_queue": desc.task_queue,
        "started_at": desc.start_time.isoformat() if desc.start_time else None,
        "closed_at": desc.close_time.isoformat() if desc.close_time else None,
        "current_nodes": view.current_nodes,
        "nodes": nodes,
        "open_gates": [{"gate": g.gate, "interaction_id": g.interaction_id, "instructions": g.instructions,
                        "questions": g.questions, "opened_at": g.opened_at, "timeout_seconds": g.timeout_seconds,
                        "fields": [f.model_dump(mode="json") for f in gate_fields(g)],
                        "answer_command": gate_answer_command(run_id, g)} for g in view.open_gates],
        "failures": [{**f.model_dump(mode="json"), "retry_command": f"iterloop retry {run_id} --node {f.node}"}
                     for f in view.failures],
        "answers": [a.model_dump(mode="json") for a in view.answers],
        "usage": view.usage.model_dump(mode="json"),
        "budget": budget_rows(view, wf, _elapsed(desc)),
        "loop_counters": view.loop_counters,
        "outputs": view.outputs,
        "artifacts": view.artifacts,
        "vars": view.vars,
        "executions": view.executions,
        "ui_url": web_ui_link(settings, run_id),
    }


async def inspect_run(settings: Settings, run_id: str, *, as_json: bool) -> int:
    client, handle, desc, view = await load_run(settings, run_id)
    run_input = await read_run_input(client, handle)
    doc = inspect_document(run_id, settings, desc, view, run_input)
    if as_json:
        print_json(doc)
    else:
        print_inspection(doc)
    return EXIT_OK


def print_inspection(doc: dict[str, Any]) -> None:
    from runtime.report import format_cost, format_duration, preview

    run_id = doc["run_id"]
    print(f"run        {run_id}")
    print(f"workflow   {doc['workflow']}" + (f"  ({doc['source']})" if doc["source"] else ""))
    print(f"status     {doc['status']}" + (f": {doc['reason']}" if doc["reason"] else "")
          + f"   [Temporal: {doc['execution_status']}, task queue {doc['task_queue']}]")
    print(f"started    {doc['started_at'] or '?'}" + (f"   closed {doc['closed_at']}" if doc["closed_at"] else ""))
    print(f"current    {', '.join(doc['current_nodes']) or '—'}")
    print(f"Web UI     {doc['ui_url']}")
    print()
    rows = [(name, n["kind"], str(n["visits"]), n["status"], f"{n['tokens']:,}", f"{n['cached_tokens']:,}",
             format_cost(n["cost_usd"])) for name, n in doc["nodes"].items()]
    print_columns(("NODE", "KIND", "VISITS", "STATUS", "TOKENS", "CACHED", "COST"), rows, right={2, 4, 5, 6})
    usage = doc["usage"]
    if usage.get("calls"):
        print(f"\nmodel      {usage['calls']:,} calls · {usage['input_tokens']:,} in ({usage['cached_tokens']:,} cached) · "
              f"{usage['output_tokens']:,} out · {format_cost(usage['cost_usd'])}"
              + (f" · caching saved {format_cost(usage['cache_savings_usd'])}" if usage.get("cache_savings_usd") else ""))
    if doc["open_gates"]:
        print("\nopen gates")
        for gate in doc["open_gates"]:
            print(f"  {gate['gate']}  (opened {gate['opened_at'] or '?'})")
            for line in (gate["instructions"] or "").rstrip().splitlines():
                print(f"    {line}")
            for key, value in gate["questions"].items():
                if not key.startswith("_"):
                    print(f"    · {key}: {preview(value, 200)}")
            fields = gate["fields"]
            expected = ", ".join(f"{f['name']} ({field_hint(SchemaField(**f))})" for f in fields) or "text"
            print(f"    expected: {expected}")
            print(f"    answer:   {gate['answer_command']}")
    if doc["failures"]:
        print("\nfailures (the run is parked; fix the cause, then retry)")
        for failure in doc["failures"]:
            print(f"  {failure['node']}" + (f" [{failure['branch']}]" if failure["branch"] else "")
                  + f": {failure['error']}")
            print(f"    retry: {failure['retry_command']}")
    print("\nbudget")
    for row in doc["budget"]:
        used, limit = row["used"], row["limit"]
        if row["dimension"] == "cost_usd":
            used_s, limit_s = format_cost(used or 0), (format_cost(limit) if limit else None)
        elif row["dimension"] == "duration_s":
            used_s = format_duration(used) if used is not None else "—"
            limit_s = format_duration(limit) if limit else None
        else:
            used_s, limit_s = ("—" if used is None else f"{used:,}"), (f"{limit:,}" if limit else None)
        share = f" ({100 * used / limit:.0f}%)" if limit and isinstance(used, (int, float)) else ""
        print(f"  {row['dimension']:<18} {used_s}" + (f" of {limit_s}{share}" if limit_s else " (no limit)"))


# -- list ----------------------------------------------------------------------------------------


def visibility_query(status: str | None, *, workflow: str | None = None, gate: str | None = None) -> str:
    """The visibility query for iterloop runs, optionally with a status, a workflow name, an open gate.

    A run that Temporal ended behind the interpreter's back (terminated, timed out) keeps the
    status it last published, so asking for a status of a live run, or for an open gate, also
    asks for a running execution.
    """
    from workflows.contract.state import SA_OPEN_GATES, SA_STATUS, SA_WORKFLOW, WORKFLOW_TYPE

    query = f'WorkflowType="{WORKFLOW_TYPE}"'
    for attribute, value in ((SA_STATUS, status), (SA_WORKFLOW, workflow), (SA_OPEN_GATES, gate)):
        if value:
            query += f' AND {attribute}="{_quoted(value)}"'
    if gate or (status and status not in TERMINAL_STATUSES):
        query += ' AND ExecutionStatus="Running"'
    return query


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


async def list_run_rows(client: Client, settings: Settings, query: str, limit: int) -> list[dict[str, Any]]:
    """The runs matching a visibility ``query`` (at most ``limit``), newest first."""
    from temporalio.common import SearchAttributeKey

    from workflows.contract.state import SA_COST, SA_OPEN_GATES, SA_STATUS, SA_WORKFLOW

    key_wf, key_status = SearchAttributeKey.for_keyword(SA_WORKFLOW), SearchAttributeKey.for_keyword(SA_STATUS)
    key_cost, key_gates = SearchAttributeKey.for_float(SA_COST), SearchAttributeKey.for_keyword_list(SA_OPEN_GATES)
    rows: list[dict[str, Any]] = []
    async with temporal_errors(settings):
        async for execution in client.list_workflows(query, limit=limit, rpc_timeout=RPC_TIMEOUT):
            attrs = execution.typed_search_attributes
            run_status = attrs.get(key_status) or ""
            temporal_status = execution.status.name.lower() if execution.status is not None else ""
            if temporal_status in ("terminated", "timed_out", "failed") and run_status not in TERMINAL_STATUSES:
                run_status = "failed"
            closed_run = temporal_status not in ("", "running")
            rows.append({"run_id": execution.id, "workflow": attrs.get(key_wf) or "", "status": run_status or "running",
                         "execution_status": temporal_status,
                         "started_at": execution.start_time.isoformat() if execution.start_time else None,
                         "closed_at": execution.close_time.isoformat() if execution.close_time else None,
                         "cost_usd": attrs.get(key_cost) or 0.0,
                         "open_gates": [] if closed_run else list(attrs.get(key_gates) or [])})
    rows.sort(key=lambda r: r["started_at"] or "", reverse=True)  # visibility lists open runs first
    return rows


async def list_runs(settings: Settings, *, status: str | None, limit: int, as_json: bool) -> int:
    from runtime.report import format_cost

    client = await connect_or_fail(settings)
    rows = await list_run_rows(client, settings, visibility_query(status), limit)
    if as_json:
        print_json(rows)
        return EXIT_OK
    if not rows:
        print("no runs" + (f" with status {status}" if status else ""))
        return EXIT_OK
    table = [(r["run_id"], r["workflow"], r["status"], local_time(r["started_at"]), format_cost(r["cost_usd"]))
             for r in rows]
    print_columns(("ID", "WORKFLOW", "STATUS", "STARTED", "COST"), table, right={4})
    return EXIT_OK


# -- events --------------------------------------------------------------------------------------


async def print_events(settings: Settings, run_id: str, *, follow: bool, as_json: bool) -> int:
    client, handle, desc, view = await load_run(settings, run_id)
    after = 0
    while True:
        for event in await query_events(handle, settings, after):
            after = max(after, event.seq)
            print(event_text(event, as_json=as_json), flush=True)
        if not follow or closed(desc) or effective_status(view.status, desc) in TERMINAL_STATUSES:
            return EXIT_OK
        await asyncio.sleep(POLL_INTERVAL_SECONDS)
        async with temporal_errors(settings, run_id):
            desc = await handle.describe(rpc_timeout=RPC_TIMEOUT)
        view = await query_state(handle, settings)


# -- report --------------------------------------------------------------------------------------


async def write_report(settings: Settings, run_id: str, output: Path | None) -> int:
    from runtime.report import render_report

    client, handle, desc, view = await load_run(settings, run_id)
    events = await query_events(handle, settings, 0)
    text = render_report(view, events, run_id=run_id, ui_url=web_ui_link(settings, run_id))
    if output is None:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write '{output}': {exc.strerror or exc}") from None
    print(f"wrote {output}", file=sys.stderr)
    return EXIT_OK

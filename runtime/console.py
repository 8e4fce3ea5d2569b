"""The runtime commands' terminal output: tables, event and progress lines, gates, gate prompts,
and the text form of `inspect` and `list` (their `--json` form is the run service's model as is).

`Terminal` writes event lines and, on a terminal, a progress line rewritten in place below them.
The texts themselves (event lines, costs, durations) come from `runtime.report`, which the
Markdown report shares.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from dsl.ir import SchemaField, Workflow
from runtime.command_errors import UsageError
from runtime.run_inputs import field_hint
from runtime.settings import Settings
from runtime.temporal_runs import RPC_TIMEOUT, query_state, temporal_errors, update_failure_message

if TYPE_CHECKING:
    from temporalio.client import WorkflowHandle

    from runtime.run_models import (
        AnswerSignalled,
        CancelRequested,
        GateAnswered,
        RetryRequested,
        RunDetail,
        RunForked,
        RunRewound,
        RunSummary,
    )
    from workflows.contract.state import Event, Gate, RunView


def print_columns(headers: tuple[str, ...], rows: list[tuple[str, ...]], *, right: set[int]) -> None:
    """A plain-text table: columns as wide as their widest cell, numbers (``right``) right-aligned."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip())
    for row in rows:
        cells = (c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths)))
        print("  ".join(cells).rstrip())


def print_json(doc: Any) -> None:
    print(json.dumps(doc, indent=2, ensure_ascii=False, default=str))


def local_time(iso: str | None) -> str:
    return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S") if iso else ""


def is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Terminal:
    """Event lines on stdout, and on a terminal a progress line rewritten in place below them."""

    def __init__(self, stream: TextIO, *, progress: bool) -> None:
        self.stream = stream
        self.progress_enabled = progress
        self._shown = False

    def line(self, text: str = "") -> None:
        self.clear()
        print(text, file=self.stream, flush=True)

    def progress(self, text: str) -> None:
        if not self.progress_enabled:
            return
        import shutil

        width = max(20, shutil.get_terminal_size().columns - 1)
        self.stream.write("\r\x1b[2K" + text[:width])
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self._shown = False


def event_text(event: Event, *, as_json: bool) -> str:
    """One event as a terminal line, or as one JSON Lines record."""
    from runtime.report import format_event_line

    return json.dumps(event.model_dump(mode="json"), ensure_ascii=False) if as_json else format_event_line(event)


def progress_text(view: RunView, wf: Workflow) -> str:
    """`[3/7 nodes] reviewer · llm node`."""
    from runtime.report import kind_label

    steps = [n for n, node in wf.nodes.items() if node.kind not in ("done", "fail")]
    visited = sum(1 for n in steps if view.nodes.get(n) is not None and view.nodes[n].visits > 0)
    current = ", ".join(f"{n} · {kind_label(wf.nodes[n].kind) if n in wf.nodes else 'node'}"
                        for n in view.current_nodes) or view.status.replace("_", " ")
    return f"[{visited}/{len(steps)} nodes] {current}"


# -- inspect and list ----------------------------------------------------------------------------


def print_inspection(detail: RunDetail, *, as_json: bool = False) -> None:
    """`iterloop inspect`: the run's status, node table, open gates, failures, budget, the preset's
    summary block and each node's final output."""
    from runtime.report import cost_text, format_cost, format_duration, incomplete_cost_note, preview, usage_cost_text

    if as_json:
        print_json(detail.model_dump(mode="json"))
        return
    print(f"run        {detail.run_id}")
    print(f"workflow   {detail.workflow}" + (f"  ({detail.source})" if detail.source else ""))
    print(f"status     {detail.status}" + (f": {detail.reason}" if detail.reason else "")
          + f"   [Temporal: {detail.execution_status}, task queue {detail.task_queue}]")
    print(f"started    {detail.started_at or '?'}" + (f"   closed {detail.closed_at}" if detail.closed_at else ""))
    print(f"current    {', '.join(detail.current_nodes) or '—'}")
    print(f"Web UI     {detail.ui_url}")
    print()
    rows = [(name, n.kind, str(n.visits), n.status, f"{n.tokens:,}", f"{n.cached_tokens:,}",
             cost_text(n.cost_usd, n.unpriced_calls)) for name, n in detail.nodes.items()]
    print_columns(("NODE", "KIND", "VISITS", "STATUS", "TOKENS", "CACHED", "COST"), rows, right={2, 4, 5, 6})
    usage = detail.usage
    if usage.calls:
        print(f"\nmodel      {usage.calls:,} calls · {usage.input_tokens:,} in ({usage.cached_tokens:,} cached) · "
              f"{usage.output_tokens:,} out · {usage_cost_text(usage)}"
              + (f" · caching saved {format_cost(usage.cache_savings_usd)}" if usage.cache_savings_usd else ""))
    if usage.unpriced_calls:
        print(f"cost       {incomplete_cost_note(usage)}")
    if detail.open_gates:
        print("\nopen gates")
        for gate in detail.open_gates:
            print(f"  {gate.gate}  (opened {gate.opened_at or '?'})")
            for line in (gate.instructions or "").rstrip().splitlines():
                print(f"    {line}")
            for key, value in gate.questions.items():
                if not key.startswith("_"):
                    print(f"    · {key}: {preview(value, 200)}")
            expected = ", ".join(f"{f.name} ({field_hint(f)})" for f in gate.fields) or "text"
            print(f"    expected: {expected}")
            print(f"    answer:   {gate.answer_command}")
    if detail.failures:
        print("\nfailures (the run is parked; fix the cause, then retry)")
        for failure in detail.failures:
            print(f"  {failure.node}" + (f" [{failure.branch}]" if failure.branch else "") + f": {failure.error}")
            print(f"    retry: {failure.retry_command}")
    if detail.budget_wait:  # live control: parked on a spent budget (`iterloop budget`)
        print(f"\nwaiting for a budget raise\n  {detail.budget_wait}")
    if detail.paused_by:
        print(f"\npaused by {detail.paused_by}: `iterloop resume {detail.run_id}` lets it go on")
    print("\nbudget")
    for row in detail.budget:
        used, limit = row.used, row.limit
        if row.dimension == "cost_usd":
            used_s, limit_s = cost_text(used or 0, usage.unpriced_calls), (format_cost(limit) if limit else None)
        elif row.dimension == "duration_s":
            used_s = format_duration(used) if used is not None else "—"
            limit_s = format_duration(limit) if limit else None
        else:
            used_s, limit_s = ("—" if used is None else f"{used:,}"), (f"{limit:,}" if limit else None)
        share = f" ({100 * used / limit:.0f}%)" if limit and isinstance(used, (int, float)) else ""
        print(f"  {row.dimension:<18} {used_s}" + (f" of {limit_s}{share}" if limit_s else " (no limit)"))
    if detail.summary:
        print("\nsummary")
        for line in detail.summary:
            print(f"  {line}")
    print_outputs(detail.outputs)


#: How many characters of one output value `inspect` shows (the report has them whole).
OUTPUT_VALUE_CHARS = 300


def print_outputs(outputs: dict[str, dict[str, Any]]) -> None:
    """`inspect`'s outputs section: each node's final output, one field a line, long values cut
    (`iterloop report RUN` has them whole)."""
    from runtime.report import preview

    if not outputs:
        return
    print("\noutputs")
    for node, output in outputs.items():
        shown = {k: v for k, v in output.items() if not k.startswith("_")}  # the runtime's own (`_session_id`)
        print(f"  {node}" + ("" if shown else "  (empty)"))
        for key, value in shown.items():
            print(f"    {key}: {preview(value, OUTPUT_VALUE_CHARS)}")


def print_run_list(runs: list[RunSummary], *, status: str | None, as_json: bool = False) -> None:
    """`iterloop list`: one row per run (id, workflow, status, start time, cost)."""
    from runtime.report import format_cost

    if as_json:
        print_json([r.model_dump(mode="json") for r in runs])
        return
    if not runs:
        print("no runs" + (f" with status {status}" if status else ""))
        return
    table = [(r.run_id, r.workflow, r.status, local_time(r.started_at), format_cost(r.cost_usd)) for r in runs]
    print_columns(("ID", "WORKFLOW", "STATUS", "STARTED", "COST"), table, right={4})


def print_answer(result: GateAnswered | AnswerSignalled, *, as_json: bool) -> None:
    """`iterloop answer`: what the run recorded (an update), or that the answer is on its way (a signal)."""
    from runtime.run_models import AnswerSignalled

    if as_json:
        print_json(result.model_dump(mode="json"))
    elif isinstance(result, AnswerSignalled):
        note = ("" if result.gate_open else f" (gate '{result.gate}' is not open now: the run keeps the answer for its "
                "next opening, or records a rejection in its events if it refuses it)")
        print(f"sent the answer for gate '{result.gate}' of run {result.run_id} as a signal{note}")
        print(f"check it with: iterloop events {result.run_id}")
    elif not result.gate_open:
        print(f"gate '{result.gate}' of run {result.run_id} is not open; the answer was sent in advance and is kept "
              "for its next opening")
    else:
        print(f"recorded the answer for gate '{result.gate}' of run {result.run_id} (by {result.answered_by}): "
              f"{json.dumps(result.answers, ensure_ascii=False)}")


def print_retried(result: RetryRequested, *, as_json: bool) -> None:
    """`iterloop retry`: which nodes run again, and how to follow them."""
    if as_json:
        print_json(result.model_dump(mode="json"))
    else:
        print(f"retrying {', '.join(result.retried)} in run {result.run_id}; follow it with "
              f"`iterloop events {result.run_id} --follow`")


def print_cancelled(result: CancelRequested, *, as_json: bool) -> None:
    """`iterloop cancel`: whether the run has ended already or will when a worker sees the request."""
    if as_json:
        print_json(result.model_dump(mode="json"))
    elif result.ended:
        print(f"cancelled run {result.run_id}")
    else:
        print(f"asked run {result.run_id} to cancel; it ends as cancelled when a worker picks up the request")


def print_rewound(result: RunRewound, *, as_json: bool) -> None:
    """`iterloop rewind`: where the run goes on from, with what."""
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    kept = ", ".join(result.outputs) or "(none)"
    changed = "".join(f"; {k}={json.dumps(v, ensure_ascii=False)}" for k, v in result.vars.items())
    print(f"rewound run {result.run_id} to {result.node} (outputs kept: {kept}{changed}); follow it with "
          f"`iterloop events {result.run_id} --follow`")


def print_forked(result: RunForked, *, as_json: bool) -> None:
    """`iterloop fork`: the new run's id and where it starts."""
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    kept = ", ".join(result.outputs) or "(none)"
    changed = "".join(f"; {k}={json.dumps(v, ensure_ascii=False)}" for k, v in result.vars.items())
    print(f"forked run {result.forked_from} at {result.node} into run {result.run_id} (outputs: {kept}{changed}); "
          f"follow it with `iterloop events {result.run_id} --follow`")


def print_report(text: str, output: Path | None, *, document: dict[str, Any] | None = None) -> None:
    """`iterloop report`: the Markdown on stdout, or in ``output`` (`wrote FILE` on stderr); with
    ``document`` (`--json`), that document on stdout instead of the Markdown."""
    if output is not None:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write '{output}': {exc.strerror or exc}") from None
        print(f"wrote {output}", file=sys.stderr)
    if document is not None:
        print_json(document)
    elif output is None:
        sys.stdout.write(text)


# -- gates ---------------------------------------------------------------------------------------


def gate_fields(gate: Gate) -> list[SchemaField]:
    return list(gate.schema_.fields) if gate.schema_ is not None else []


def gate_answer_command(run_id: str, gate: Gate) -> str:
    from runtime.report import answer_command

    return answer_command(run_id, gate.gate, [f.name for f in gate_fields(gate)])


def describe_gate(gate: Gate) -> list[str]:
    """Instructions, questions and expected fields of an open gate, as indented lines."""
    from runtime.report import preview

    out: list[str] = []
    if gate.instructions:
        out += [f"  {line}" for line in gate.instructions.rstrip().splitlines()]
    for key, value in gate.questions.items():
        if not key.startswith("_"):
            out.append(f"  · {key}: {preview(value, 200)}")
    fields = gate_fields(gate)
    if fields:
        out.append("  expected: " + ", ".join(f"{f.name} ({field_hint(f)})" for f in fields))
    else:
        out.append("  expected: text (free-form answer)")
    return out


def print_failure(term: Terminal, run_id: str, view: RunView) -> None:
    term.line(f"run {run_id} is parked: a node failed after its retries (status failed_resumable)")
    for failure in view.failures:
        first, *rest = failure.error.splitlines() or [""]
        term.line(f"  {failure.node}: {first}")
        for line in rest:
            term.line(f"    {line}")
    term.line("fix the cause, then retry the node:")
    for failure in view.failures:
        term.line(f"  iterloop retry {run_id} --node {failure.node}")


def print_waiting(term: Terminal, run_id: str, view: RunView) -> None:
    for gate in sorted(view.open_gates, key=lambda g: g.gate):
        term.line(f"run {run_id} waits for a human answer at gate '{gate.gate}':")
        for line in describe_gate(gate):
            term.line(line)
        term.line("answer it with:")
        term.line(f"  {gate_answer_command(run_id, gate)}")


def final_line(run_id: str, status: str, view: RunView, events: list[Event]) -> str:
    from runtime.report import format_duration, incomplete_cost_note, run_duration_seconds, usage_cost_text

    duration = run_duration_seconds(events)
    took = f" in {format_duration(duration)}" if duration is not None else ""
    usage = view.usage
    spend = f" · {usage.total_tokens:,} tokens · {usage_cost_text(usage)}"
    if usage.unpriced_calls:
        spend += f" ({incomplete_cost_note(usage)})"
    if usage.provider == "scripted":
        spend += " (scripted model)"
    if status == "finished":
        return f"run {run_id} finished{took}{spend}"
    if status == "budget_exceeded":
        return f"run {run_id} stopped{took}: {view.reason}{spend}"
    if status == "cancelled":
        return f"run {run_id} was cancelled{took}"
    return f"run {run_id} {status.replace('_', ' ')}{took}" + (f": {view.reason}" if view.reason else "") + spend


# -- interactive answers -------------------------------------------------------------------------


async def prompt_gate(handle: WorkflowHandle[Any, Any], settings: Settings, gate: Gate, *, by: str,
                      ask: Callable[[str], str], say: Callable[[str], None]) -> bool:
    """Ask for each field of an open gate and send the answer as a validated update.

    A rejected answer shows the gate's reason and asks again. Returns False when the gate was
    closed meanwhile (answered elsewhere), True once our answer is recorded.
    """
    from temporalio.client import WorkflowUpdateFailedError

    from workflows.contract.state import Answer, AnswerRecord

    say(f"── human gate '{gate.gate}' ──")
    for line in describe_gate(gate):
        say(line)
    fields = gate_fields(gate)
    while True:
        answers: dict[str, Any] = {}
        for field in fields or [SchemaField(name="text", type="string")]:
            answers[field.name] = ask(f"  {field.name} ({field_hint(field)}): ").strip()
        view = await query_state(handle, settings)
        if not any(g.interaction_id == gate.interaction_id for g in view.open_gates):
            say(f"  gate '{gate.gate}' was answered meanwhile; your answer was not sent")
            return False
        try:
            async with temporal_errors(settings, handle.id):
                record = await handle.execute_update(
                    "answer", Answer(gate=gate.gate, answers=answers, answered_by=by,
                                     interaction_id=gate.interaction_id),
                    result_type=AnswerRecord, rpc_timeout=RPC_TIMEOUT)
        except WorkflowUpdateFailedError as exc:
            say(f"  rejected: {update_failure_message(exc)}; try again")
            continue
        say(f"  recorded: {json.dumps(record.answers, ensure_ascii=False)} (by {record.answered_by})")
        return True

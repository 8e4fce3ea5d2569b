"""The runtime commands' terminal output: tables, event and progress lines, gates, and gate prompts.

`Terminal` writes event lines and, on a terminal, a progress line rewritten in place below them.
The texts themselves (event lines, costs, durations) come from `runtime.report`, which the
Markdown report shares.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

from dsl.ir import SchemaField, Workflow
from runtime.run_inputs import field_hint
from runtime.settings import Settings
from runtime.temporal_runs import RPC_TIMEOUT, query_state, temporal_errors, update_failure_message

if TYPE_CHECKING:
    from temporalio.client import WorkflowHandle

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
    from runtime.report import format_cost, format_duration, run_duration_seconds

    duration = run_duration_seconds(events)
    took = f" in {format_duration(duration)}" if duration is not None else ""
    usage = view.usage
    spend = f" · {usage.total_tokens:,} tokens · {format_cost(usage.cost_usd)}"
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

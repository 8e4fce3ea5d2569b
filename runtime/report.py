"""What a run looks like to a person: one line per event, and the Markdown run report.

Pure functions over the `state` and `events` query results (`RunView`, `Event`): no Temporal, no
I/O, so `iterloop run` / `events` (the streamed lines) and `iterloop report` (the Markdown) say
the same thing in the same words, and unit tests drive them with hand-made views.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from workflows.contract.messages import Usage
from workflows.contract.state import Event, RunView

#: Statuses after which nothing more happens to a run.
TERMINAL_STATUSES = ("finished", "failed", "cancelled", "budget_exceeded")

#: How many timeline rows the report shows before eliding the middle (long loops).
TIMELINE_ROWS = 400

_KIND_LABELS = {
    "agent": "llm node",
    "judge": "llm judge",
    "router": "router",
    "join": "join",
    "human": "human gate",
    "tool": "tool",
    "wait": "timer",
}


def kind_label(kind: str) -> str:
    """`agent` → `llm node`: what a node kind does, in the words the progress line uses."""
    return _KIND_LABELS.get(kind, kind or "node")


# -- small formatters ---------------------------------------------------------------------------


def format_cost(usd: float) -> str:
    """`$0.0123`: four decimals below a dollar (model calls are cheap), two above."""
    return f"${usd:,.2f}" if usd >= 1 else f"${usd:.4f}"


#: What a cost of calls to a model with no known price says (they count 0 USD).
UNPRICED = "unpriced"


def cost_text(usd: float, unpriced_calls: int = 0) -> str:
    """A cost, marked when some of its calls are unpriced: `unpriced` when all of them are (nothing
    was priced), `$0.0123 + unpriced` when the figure is a lower bound."""
    if not unpriced_calls:
        return format_cost(usd)
    return UNPRICED if not usd else f"{format_cost(usd)} + {UNPRICED}"


def usage_cost_text(usage: Usage) -> str:
    """`cost_text` of a `Usage`."""
    return cost_text(usage.cost_usd, usage.unpriced_calls)


def incomplete_cost_note(usage: Usage) -> str:
    """Why the cost is incomplete (empty when it is not): how many calls had no price, and the fix."""
    n = usage.unpriced_calls
    if not n:
        return ""
    return (f"incomplete: {n} model call{'s' if n != 1 else ''} unpriced (no price known for the model; "
            "add it to ITERLOOP_PRICES_FILE)")


def format_duration(seconds: float) -> str:
    """`2h 03m`, `4m 05s`, `12.3s`."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def parse_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None


def clock(text: str) -> str:
    """The `HH:MM:SS` of an event's ISO time (what a terminal line has room for)."""
    when = parse_time(text)
    return when.strftime("%H:%M:%S") if when else text


def preview(value: Any, limit: int = 80) -> str:
    """Compact JSON on one line, cut to ``limit`` characters."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- events --------------------------------------------------------------------------------------


def describe_event(event: Event) -> str:
    """A short, human description of one event (`started · llm node (visit 2)`)."""
    d = event.data
    kind = event.type
    if kind == "run_started":
        return f"run started (workflow {d.get('workflow', '?')}, entry {d.get('entry', '?')})"
    if kind == "run_continued":
        return f"run continued as new (execution {d.get('execution', '?')}) at {d.get('next_node', '?')}"
    if kind in ("run_rewound", "run_forked"):
        what = ("rewound to " if kind == "run_rewound" else f"forked from run {d.get('from_run', '?')} at ")
        changed = d.get("vars") or {}
        return (f"run {what}{event.node or '?'}" + (f" by {d['by']}" if d.get("by") else "")
                + (f" (vars changed: {', '.join(changed)})" if changed else ""))
    if kind == "continue_as_new":
        return f"continuing as new (history length {d.get('history_length', '?')})"
    if kind == "node_started":
        visit = d.get("visit", 1)
        return f"started · {kind_label(str(d.get('kind', '')))}" + (f" (visit {visit})" if visit and visit > 1 else "")
    if kind == "node_finished":
        output = d.get("output")
        return "finished" + (f" → {preview(output, 70)}" if output else "")
    if kind == "edge_selected":
        text = f"→ {d.get('to', '?')}"
        if d.get("condition"):
            text += f" (when {'not ' if d.get('negated') else ''}{d['condition']})"
        if d.get("loop"):
            text += f" [loop {d['loop']}, iteration {d.get('iteration', '?')}]"
        if d.get("reset_loops"):
            text += f" (inner loops start afresh: {', '.join(d['reset_loops'])})"
        if "round_robin_index" in d:
            text += f" [round robin #{d['round_robin_index']}]"
        return text
    if kind == "fan_out":
        targets = ", ".join(d.get("targets") or [])
        join = f", {d.get('strategy', 'wait_all')} at {d['convergence']}" if d.get("convergence") else ""
        return f"fan out to {targets}{join}"
    if kind == "branch_started":
        return "branch started"
    if kind == "branch_finished":
        return "branch finished"
    if kind == "branch_failed":
        return f"branch failed: {d.get('error', '')}".rstrip(": ")
    if kind == "join_ready":
        failed = d.get("failed_branches") or []
        return "join ready" + (f" ({len(failed)} failed branch{'es' if len(failed) != 1 else ''})" if failed else "")
    if kind == "human_input_requested":
        return "waiting for a human answer"
    if kind == "gate_answered":
        note = " (answer sent in advance)" if d.get("early") else ""
        return f"answered by {d.get('by', '?')}{note}"
    if kind == "answer_queued":
        return f"answer from {d.get('by', '?')} sent in advance: kept for the gate's next opening"
    if kind == "answer_rejected":
        return f"answer from {d.get('by', '?')} rejected: {d.get('error', '')}"
    if kind == "auto_answer_deferred":
        return f"model deferred to a human ({d.get('reason', '')})"
    if kind == "gate_timed_out":
        return f"gate timed out after {d.get('timeout', '?')}"
    if kind == "node_failed":
        how = " (branch tolerates it)" if d.get("tolerated") else " (parked: fix the cause, then retry)" if d.get(
            "resumable") else ""
        return f"failed: {preview(d.get('error', ''), 160)}{how}"
    if kind == "node_retried":
        return "retrying"
    if kind == "llm_step_finished":
        calls = d.get("tool_calls") or []
        what = {"tool_calls": "asks for " + ", ".join(calls), "invalid": "answer does not match the schema",
                "final": "answered"}.get(str(d.get("status")), str(d.get("status", "")))
        cached = f", {d['cached_tokens']:,} cached" if d.get("cached_tokens") else ""
        cost = f", {cost_text(d.get('cost_usd') or 0.0, 1 if d.get('unpriced') else 0)}" if d.get("cost_usd") or d.get(
            "unpriced") else ""
        return (f"llm turn {d.get('turn', '?')}: {what} ({int(d.get('input_tokens') or 0):,} in{cached}, "
                f"{int(d.get('output_tokens') or 0):,} out{cost})")
    if kind == "llm_repair_requested":
        return f"asked the model to repair its answer: {preview(d.get('reason', ''), 120)}"
    if kind == "tool_called":
        return f"tool {d.get('tool', '?')} ran"
    if kind in ("tool_denied", "tool_error"):
        label = "refused" if kind == "tool_denied" else "failed"
        return f"tool {d.get('tool', '?')} {label}: {preview(d.get('error', ''), 140)}"
    if kind == "session_not_found":
        return f"session not found: {preview(d.get('warning', ''), 140)}"
    if kind == "notified":
        return f"notified ({d.get('event', '?')}): {', '.join(d.get('delivered') or []) or 'nothing to send'}"
    if kind == "notify_failed":
        return f"notification failed ({d.get('event', '?')}): {preview(d.get('error') or d.get('failed') or '', 140)}"
    if kind == "artifact_written":
        return f"published artifact {d.get('publish', '?')} (version {d.get('version', 0)})"
    if kind in ("budget_warning", "budget_exceeded"):
        label = "budget warning" if kind == "budget_warning" else "budget exceeded"
        return f"{label}: {d.get('dimension', '?')} at {_number(d.get('used'))} of {_number(d.get('limit'))}"
    if kind == "run_finished":
        return "run finished"
    if kind.startswith("run_"):
        status = kind.removeprefix("run_").replace("_", " ")
        return f"run {status}" + (f": {d['reason']}" if d.get("reason") else "")
    return kind.replace("_", " ") + (f" {preview(d, 100)}" if d else "")


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def format_event_line(event: Event) -> str:
    """`12:03:04  reviewer  [split>a]  finished → {...}`: one terminal line per event."""
    node = event.node or "·"
    branch = f"  [{event.branch}]" if event.branch else ""
    return f"{clock(event.time)}  {node:<14}{branch}  {describe_event(event)}"


# -- run figures ---------------------------------------------------------------------------------


def run_duration_seconds(events: list[Event]) -> float | None:
    """From the first event to the run's last one (the end event if it ended); None if unknown."""
    times = [t for t in (parse_time(e.time) for e in events) if t is not None]
    if len(times) < 2:
        return 0.0 if times else None
    return max(0.0, (times[-1] - times[0]).total_seconds())


def model_calls(view: RunView) -> int:
    """Model turns of the run (tool loops and repairs make several per visit); runs recorded before
    turns were counted fall back to the visits of nodes that spent model tokens."""
    if view.usage.calls:
        return view.usage.calls
    return sum(state.visits for state in view.nodes.values() if state.usage.total_tokens or state.usage.model)


def answer_command(run_id: str, gate: str, fields: Iterable[str]) -> str:
    """The exact command that answers ``gate`` (values left for the user as `…`)."""
    answers = " ".join(f"--answer {name}=…" for name in fields) or "--answer text=…"
    return f"iterloop answer {run_id} --gate {gate} {answers}"


# -- the Markdown report -------------------------------------------------------------------------


def _cell(value: Any) -> str:
    """A Markdown table cell: one line, pipes escaped."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _table(headers: list[str], rows: Iterable[Iterable[Any]], align: str = "") -> list[str]:
    """A Markdown table; ``align`` has one letter per column, `r` for right-aligned numbers."""
    marks = ["---:" if (align[i:i + 1] == "r") else "---" for i in range(len(headers))]
    out = ["| " + " | ".join(headers) + " |", "| " + " | ".join(marks) + " |"]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return out


def render_report(view: RunView, events: list[Event], *, run_id: str = "", ui_url: str = "",
                  summary: list[str] | None = None) -> str:
    """The run as Markdown: summary, the preset's summary block (``summary``, rendered lines), each
    node's final output, timeline, artifacts, answers, failures, tokens and cost per node."""
    block = summary
    duration = run_duration_seconds(events)
    usage = view.usage
    title = f"# Run report: {view.workflow}" + (f" (`{run_id}`)" if run_id else "")
    lines = [title, ""]

    summary: list[tuple[str, Any]] = []
    if run_id:
        summary.append(("Run", f"`{run_id}`"))
    summary += [
        ("Workflow", f"{view.workflow}" + (f" (`{view.source}`)" if view.source else "")),
        ("Status", view.status + (f": {view.reason}" if view.reason else "")),
        ("Started", events[0].time if events else "unknown"),
        ("Duration", (format_duration(duration) if duration is not None else "unknown")
         + ("" if view.status in TERMINAL_STATUSES else " (so far)")),
        ("Tokens", f"{usage.total_tokens:,} ({usage.input_tokens:,} in, {usage.output_tokens:,} out"
                   + (f", {usage.cached_tokens:,} of the input from the prompt cache" if usage.cached_tokens else "")
                   + (f", {usage.reasoning_tokens:,} of the output reasoning" if usage.reasoning_tokens else "") + ")"),
        ("Cost", usage_cost_text(usage)
         + (f" ({incomplete_cost_note(usage)})" if usage.unpriced_calls else "")
         + (f" (prompt caching saved {format_cost(usage.cache_savings_usd)})" if usage.cache_savings_usd else "")),
        ("Model calls", model_calls(view)),
    ]
    if usage.provider == "scripted":
        summary.append(("Model", "scripted (offline run: outputs came from a script, not a real model)"))
    elif usage.model:
        summary.append(("Model", usage.model))
    if view.current_nodes:
        summary.append(("Current nodes", ", ".join(view.current_nodes)))
    if view.executions > 1:
        summary.append(("Executions", f"{view.executions} (continued as new)"))
    if ui_url:
        summary.append(("Temporal Web UI", ui_url))
    lines += ["## Summary", "", *_table(["Item", "Value"], summary), ""]
    if block:
        lines += ["## Result", "", "```text", *block, "```", ""]
    lines += ["## Outputs", "", *render_outputs(view), ""]

    lines += ["## Timeline", ""]
    if events:
        rows = list(events)
        elided = 0
        if len(rows) > TIMELINE_ROWS:
            elided = len(rows) - TIMELINE_ROWS
            rows = rows[: TIMELINE_ROWS // 2] + rows[-TIMELINE_ROWS // 2:]
        start = parse_time(events[0].time)
        table_rows = []
        for i, e in enumerate(rows):
            when = parse_time(e.time)
            offset = f"+{format_duration((when - start).total_seconds())}" if when and start else ""
            table_rows.append((clock(e.time), offset, e.node or "", e.branch or "", describe_event(e)))
            if elided and i == TIMELINE_ROWS // 2 - 1:
                table_rows.append(("…", "", "", "", f"{elided} events omitted"))
        lines += _table(["Time", "Elapsed", "Node", "Branch", "Event"], table_rows)
    else:
        lines.append("No events recorded.")
    lines.append("")

    lines += ["## Artifacts", ""]
    if view.artifacts:
        publishers = _artifact_publishers(events)
        rows_a = [(f"`{name}`", publishers.get(name, ("", ""))[0], publishers.get(name, ("", ""))[1],
                   preview(content, 100)) for name, content in sorted(view.artifacts.items())]
        lines += _table(["Artifact", "Published by", "Version", "Content"], rows_a)
    else:
        lines.append("No artifacts published.")
    lines.append("")

    if view.answers:
        lines += ["## Human answers", ""]
        lines += _table(["Gate", "Answered by", "At", "Answers"],
                        [(a.gate, a.answered_by, a.answered_at, preview(a.answers, 100)) for a in view.answers])
        lines.append("")

    if view.failures:
        lines += ["## Failures", ""]
        lines += _table(["Node", "Branch", "Error", "Retry"],
                        [(f.node, f.branch, preview(f.error, 160),
                          f"`iterloop retry {run_id or 'RUN'} --node {f.node}`") for f in view.failures])
        lines.append("")

    lines += ["## Tokens and cost per node", ""]
    node_rows = []
    for name, state in view.nodes.items():
        if not state.visits and not state.usage.total_tokens:
            continue
        u = state.usage
        node_rows.append((name, state.visits, state.status, f"{u.input_tokens:,}", f"{u.cached_tokens:,}",
                          f"{u.output_tokens:,}", f"{u.total_tokens:,}", usage_cost_text(u), u.model or ""))
    node_rows.append(("**total**", sum(s.visits for s in view.nodes.values()), "", f"{usage.input_tokens:,}",
                      f"{usage.cached_tokens:,}", f"{usage.output_tokens:,}", f"{usage.total_tokens:,}",
                      usage_cost_text(usage), ""))
    lines += _table(["Node", "Visits", "Status", "Input tokens", "Cached", "Output tokens", "Tokens", "Cost", "Model"],
                    node_rows, align="lrlrrrrrl")
    lines.append("")

    budget = _budget_rows(view.budget_used)
    if budget:
        lines += ["## Budget used", "", *_table(["Dimension", "Used"], budget, align="lr"), ""]
    return "\n".join(lines)


#: An output value longer than this (or on several lines) is folded in a `<details>` block.
FOLD_CHARS = 160


def render_outputs(view: RunView) -> list[str]:
    """Each node's final output as Markdown: short values on a line, long ones folded in `<details>`
    (the runtime's own fields, `_session_id` and the like, left out)."""
    order = [n for n in view.nodes if n in view.outputs] + [n for n in view.outputs if n not in view.nodes]
    if not order:
        return ["No node produced an output."]
    out: list[str] = []
    for name in order:
        output = {k: v for k, v in view.outputs[name].items() if not k.startswith("_")}  # `_session_id` …
        out += [f"### {name}", ""]
        if not output:
            out += ["(empty output)", ""]
            continue
        for key, value in output.items():
            out += _output_field(key, value)
        out.append("")
    return out[:-1]


def _output_field(key: str, value: Any) -> list[str]:
    """One field of an output: `- **key**: value`, or a folded block for long text and structures."""
    if isinstance(value, str):
        text = value
        if len(text) <= FOLD_CHARS and "\n" not in text:
            return [f"- **{key}**: {text}" if text else f"- **{key}**: (empty)"]
        body = text.strip()
    else:
        compact = json.dumps(value, ensure_ascii=False, default=str)
        if len(compact) <= FOLD_CHARS:
            return [f"- **{key}**: `{compact}`"]
        body = "```json\n" + json.dumps(value, ensure_ascii=False, indent=2, default=str) + "\n```"
    return [f"- <details><summary><b>{key}</b> ({_size(value)})</summary>", "", *("  " + line if line else ""
            for line in body.splitlines()), "", "  </details>"]


def _size(value: Any) -> str:
    if isinstance(value, str):
        return f"{len(value):,} characters"
    if isinstance(value, (list, dict)):
        return f"{len(value):,} item{'s' if len(value) != 1 else ''}"
    return type(value).__name__


def _artifact_publishers(events: list[Event]) -> dict[str, tuple[str, str]]:
    """Artifact name → (node, latest version) from `artifact_written` events."""
    found: dict[str, tuple[str, str]] = {}
    for e in events:
        if e.type == "artifact_written" and e.data.get("publish"):
            found[str(e.data["publish"])] = (e.node, str(e.data.get("version", "")))
    return found


def _budget_rows(used: Mapping[str, float]) -> list[tuple[str, str]]:
    rows = []
    for key, value in sorted(used.items()):
        if key == "cost_usd":
            rows.append(("cost", format_cost(value)))
        elif key == "duration_s":
            rows.append(("duration", format_duration(value)))
        else:
            rows.append((key, f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"))
    return rows

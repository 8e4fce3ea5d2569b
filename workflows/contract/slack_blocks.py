"""The Slack messages iterloop posts, and how a click on them becomes a gate's answer.

Pure functions over plain data: the notify activity posts what they build, the interactivity
endpoint (`api/slack.py`) reads clicks and modal submissions back with them. Nothing here does I/O.

How Approve / Reject become an answer (the *answer plan* of a gate's output schema):

1. The **decision field** is the schema's bool field named `approved`, `approve`, `accepted`,
   `accept`, `ok`, `go` or `proceed` (the first one present in that order), else its first bool
   field: Approve sends `true`, Reject `false`. Without a bool field, a string field whose enum
   has an approving value (`approve`, `approved`, `accept`, `yes`, `go`, …) and a rejecting one
   (`reject`, `rejected`, `decline`, `no`, `stop`, …) is the decision, and the buttons send those
   values.
2. Every **other field** is a detail the human fills in, because a gate's answer needs all of its
   fields. When there are any, the buttons open a modal with one input per field (free text for
   strings, optional, so `reviewer_notes` or `reason` may stay empty; a select for enums and
   bools; a number input for numbers; comma-separated text for lists; JSON text for json).
   When there are none, a click answers the gate at once.
3. A schema with fields but no decision field gets one **Answer…** button that opens the modal
   for all fields; a schema without fields gets a **Continue** button; a gate without a schema
   is answered `{"approved": true|false}`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from dsl.ir import Schema, SchemaField
from workflows.contract.json_values import load_json
from workflows.contract.messages import NotifyRequest
from workflows.contract.tool_approval import TOOL_APPROVAL_SCHEMA

Decision = Literal["approve", "reject", "answer"]

ACTION_APPROVE = "iterloop_approve"
ACTION_REJECT = "iterloop_reject"
ACTION_ANSWER = "iterloop_answer"
ACTION_OPEN_RUN = "iterloop_open_run"
ACTIONS_BLOCK = "iterloop_gate_actions"
DECISION_ACTIONS: dict[str, Decision] = {ACTION_APPROVE: "approve", ACTION_REJECT: "reject", ACTION_ANSWER: "answer"}
MODAL_CALLBACK = "iterloop_gate_answer"
FIELD_BLOCK_PREFIX = "field:"
FIELD_ACTION = "value"

DECISION_NAMES = ("approved", "approve", "accepted", "accept", "ok", "go", "proceed")
APPROVING = ("approve", "approved", "accept", "accepted", "yes", "go", "ship", "proceed", "continue")
REJECTING = ("reject", "rejected", "decline", "declined", "no", "stop", "hold", "abort")
LONG_TEXT_HINTS = ("note", "reason", "comment", "feedback", "rationale", "why", "message", "description")

# Slack's limits (Block Kit reference): 10 fields per section, 3000 characters per text object,
# 2000 per button value, 24 per modal title, 100 options per select, 50 blocks per message.
MAX_FACTS = 10
MAX_TEXT = 2900
MAX_FACT_TEXT = 120


# -- what a button carries -----------------------------------------------------------------------


@dataclass(frozen=True)
class ButtonValue:
    """Which gate opening a button answers, and how. Encoded into the button's `value`."""

    run_id: str
    gate: str
    interaction_id: str
    decision: Decision

    def encode(self) -> str:
        return json.dumps({"r": self.run_id, "g": self.gate, "i": self.interaction_id, "d": self.decision},
                          separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> ButtonValue:
        """The value of one of our buttons; ValueError when it is not one."""
        try:
            raw = load_json(text, what="button value")  # bounded: a deep value would overflow json
            value = cls(run_id=raw["r"], gate=raw["g"], interaction_id=raw["i"], decision=raw["d"])
        except (ValueError, TypeError, KeyError):
            raise ValueError(f"not an iterloop button value: {text[:80]!r}") from None
        if value.decision not in ("approve", "reject", "answer") or not value.run_id or not value.gate:
            raise ValueError(f"not an iterloop button value: {text[:80]!r}")
        return value


# -- the answer plan -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AnswerPlan:
    """How the buttons and the modal of one gate map to its answer (rules in the module docstring)."""

    decision_field: str = ""
    approve_value: Any = True
    reject_value: Any = False
    details: list[SchemaField] = field(default_factory=list)

    @property
    def decisions(self) -> list[Decision]:
        return ["approve", "reject"] if self.decision_field else ["answer"]

    @property
    def needs_modal(self) -> bool:
        return bool(self.details)

    def answers(self, decision: Decision, details: dict[str, Any] | None = None) -> dict[str, Any]:
        """The answer to signal: the decision's value plus the details (as typed into the modal)."""
        out: dict[str, Any] = {}
        if self.decision_field and decision in ("approve", "reject"):
            out[self.decision_field] = self.approve_value if decision == "approve" else self.reject_value
        out.update(details or {})
        return out


def answer_plan(schema: Schema | None) -> AnswerPlan:
    if schema is None:
        return AnswerPlan(decision_field="approved")
    if schema == TOOL_APPROVAL_SCHEMA:
        # A tool call (`tool_approval:`): Approve or Reject with an optional message; editing the
        # call's arguments (JSON) takes `iterloop answer` or the API.
        return AnswerPlan(decision_field="decision", approve_value="approve", reject_value="reject",
                          details=[f for f in schema.fields if f.name == "message"])
    bools = [f for f in schema.fields if f.type == "bool"]
    by_name = {f.name: f for f in bools}
    decision = next((by_name[n] for n in DECISION_NAMES if n in by_name), bools[0] if bools else None)
    approve: Any = True
    reject: Any = False
    if decision is None:
        for f in schema.fields:
            if f.type == "string" and f.enum_values:
                yes = next((v for v in f.enum_values if v.lower() in APPROVING), None)
                no = next((v for v in f.enum_values if v.lower() in REJECTING), None)
                if yes is not None and no is not None:
                    decision, approve, reject = f, yes, no
                    break
    details = [f for f in schema.fields if decision is None or f.name != decision.name]
    return AnswerPlan(decision_field=decision.name if decision else "", approve_value=approve,
                      reject_value=reject, details=details)


# -- messages ------------------------------------------------------------------------------------


def gate_message(req: NotifyRequest) -> tuple[str, list[dict[str, Any]]]:
    """Fallback text and Block Kit blocks for a gate that opened."""
    title = f"Approval needed: {req.gate} ({req.workflow})"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(_cut(f"⏸ {req.gate} is waiting for you", 150))},
        {"type": "context", "elements": [_md(f"*{_esc(req.workflow)}* · run `{_esc(req.run_id)}`")]},
    ]
    if req.instructions.strip():
        blocks.append({"type": "section", "text": _md(_cut(_esc(req.instructions.strip()), MAX_TEXT))})
    facts = key_facts(req.questions)
    if facts:
        blocks.append({"type": "section", "fields": [_md(f"*{_esc(k)}*\n{_esc(v)}") for k, v in facts]})
    if req.usage.cost_usd or req.usage.total_tokens:
        blocks.append({"type": "context", "elements": [
            _md(f"So far: {format_number(req.usage.total_tokens)} tokens · ${req.usage.cost_usd:.4f}")]})
    blocks.append({"type": "actions", "block_id": ACTIONS_BLOCK, "elements": gate_buttons(req)})
    return title, blocks


def gate_buttons(req: NotifyRequest) -> list[dict[str, Any]]:
    plan = answer_plan(req.answer_schema)
    elements: list[dict[str, Any]] = []
    labels = {"approve": ("Approve", ACTION_APPROVE, "primary"), "reject": ("Reject", ACTION_REJECT, "danger"),
              "answer": ("Answer…" if plan.details else "Continue", ACTION_ANSWER, "primary")}
    for decision in plan.decisions:
        label, action, style = labels[decision]
        value = ButtonValue(req.run_id, req.gate, req.interaction_id, decision).encode()
        elements.append({"type": "button", "action_id": action, "text": _plain(label), "style": style,
                         "value": value})
    if req.ui_url:
        elements.append({"type": "button", "action_id": ACTION_OPEN_RUN, "text": _plain("Open run"),
                         "url": req.ui_url})
    return elements


def run_end_message(req: NotifyRequest) -> tuple[str, list[dict[str, Any]]]:
    """Fallback text and blocks for a run that finished or failed."""
    finished = req.event == "run_finished"
    icon = "✅" if finished else "❌"
    status = req.status or ("finished" if finished else "failed")
    title = f"{icon} {req.workflow}: run {status}"
    lines = [f"{icon} *{_esc(req.workflow)}* run `{_esc(req.run_id)}` *{_esc(status)}*"]
    if req.reason:
        lines.append(_esc(_cut(req.reason, 1000)))
    usage = req.usage
    context = f"{format_number(usage.total_tokens)} tokens · ${usage.cost_usd:.4f}"
    if req.ui_url:
        context += f" · <{req.ui_url}|open the run>"
    blocks = [{"type": "section", "text": _md("\n".join(lines))},
              {"type": "context", "elements": [_md(context)]}]
    return title, blocks


def decided_blocks(blocks: list[dict[str, Any]], note: str) -> list[dict[str, Any]]:
    """The gate message once answered: the buttons give way to ``note`` (who decided, when)."""
    kept = [b for b in blocks if b.get("block_id") != ACTIONS_BLOCK]
    return [*kept, {"type": "context", "elements": [_md(note)]}]


def decision_note(plan: AnswerPlan, answers: dict[str, Any], *, user_id: str, when_unix: int) -> str:
    """`✅ Approved by <@U1> on <date>` (Slack renders the date in each reader's time zone)."""
    if plan.decision_field and plan.decision_field in answers:
        approved = answers[plan.decision_field] == plan.approve_value
        head = "✅ Approved" if approved else "⛔ Rejected"
    else:
        head = "📝 Answered"
    stamp = f"<!date^{when_unix}^{{date_short_pretty}} at {{time}}|{when_unix}>"
    extra = [f"{k}: {_cut(str(v), 200)}" for k, v in answers.items() if k != plan.decision_field and v not in ("", [])]
    return f"{head} by <@{user_id}> on {stamp}" + ("\n" + _esc("\n".join(extra)) if extra else "")


# -- the modal -----------------------------------------------------------------------------------


def answer_modal(plan: AnswerPlan, value: ButtonValue, *, channel: str, ts: str) -> dict[str, Any]:
    """The modal that collects the gate's detail fields; ``private_metadata`` remembers the click."""
    verb = {"approve": "approving", "reject": "rejecting", "answer": "answering"}[value.decision]
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": _md(f"You are *{verb}* gate *{_esc(value.gate)}*.")}]
    blocks += [_input_block(f) for f in plan.details]
    meta = {"r": value.run_id, "g": value.gate, "i": value.interaction_id, "d": value.decision, "c": channel,
            "t": ts}
    return {
        "type": "modal",
        "callback_id": MODAL_CALLBACK,
        "title": _plain(_cut(f"Answer {value.gate}", 24)),
        "submit": _plain("Reject" if value.decision == "reject" else "Submit"),
        "close": _plain("Cancel"),
        "private_metadata": json.dumps(meta, separators=(",", ":")),
        "blocks": blocks,
    }


@dataclass(frozen=True)
class ModalSubmission:
    value: ButtonValue
    channel: str
    ts: str
    details: dict[str, Any]


def read_modal(view: dict[str, Any], plan: AnswerPlan) -> ModalSubmission:
    """The click and the typed details from a `view_submission` payload's ``view``."""
    try:
        meta = load_json(view.get("private_metadata") or "", what="private_metadata")
        value = ButtonValue(meta["r"], meta["g"], meta["i"], meta["d"])
        channel, ts = meta["c"], meta["t"]
    except (ValueError, TypeError, KeyError):
        raise ValueError("not an iterloop answer modal") from None
    values = (view.get("state") or {}).get("values") or {}
    details: dict[str, Any] = {}
    for f in plan.details:
        state = (values.get(FIELD_BLOCK_PREFIX + f.name) or {}).get(FIELD_ACTION) or {}
        details[f.name] = _typed_value(f, state)
    return ModalSubmission(value, channel, ts, details)


def _typed_value(f: SchemaField, state: dict[str, Any]) -> Any:
    if "selected_options" in state:
        return [o["value"] for o in state.get("selected_options") or []]
    if "selected_option" in state:
        option = state.get("selected_option")
        return option["value"] if option else None
    raw = state.get("value")
    if f.type in ("string", "string[]"):
        return raw or ("" if f.type == "string" else [])
    return raw  # numbers, bools and JSON arrive as text; the gate's schema converts them


def _input_block(f: SchemaField) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "input", "block_id": FIELD_BLOCK_PREFIX + f.name, "label": _plain(f.name)}
    if f.enum_values and f.type in ("string", "string[]"):
        options = [{"text": _plain(_cut(v, 75)), "value": v} for v in f.enum_values[:100]]
        kind = "multi_static_select" if f.type == "string[]" else "static_select"
        block["element"] = {"type": kind, "action_id": FIELD_ACTION, "options": options}
    elif f.type == "bool":
        block["element"] = {"type": "static_select", "action_id": FIELD_ACTION,
                            "options": [{"text": _plain("yes"), "value": "true"},
                                        {"text": _plain("no"), "value": "false"}]}
    elif f.type in ("int", "float"):
        block["element"] = {"type": "number_input", "action_id": FIELD_ACTION,
                            "is_decimal_allowed": f.type == "float"}
    else:
        long_text = f.type == "json" or any(h in f.name.lower() for h in LONG_TEXT_HINTS)
        block["element"] = {"type": "plain_text_input", "action_id": FIELD_ACTION, "multiline": long_text}
        if f.type == "string[]":
            block["hint"] = _plain("Comma-separated values")
        elif f.type == "json":
            block["hint"] = _plain("JSON")
        block["optional"] = f.type in ("string", "string[]")
    return block


# -- the gate's key numbers ----------------------------------------------------------------------


def key_facts(questions: dict[str, Any], limit: int = MAX_FACTS) -> list[tuple[str, str]]:
    """The gate input's short scalar values (one level of nesting flattened as `a.b`), in order.

    Lists, long strings, artifact references and deeper objects are left out: the message shows the
    numbers a reviewer decides on, the run page has the rest.
    """
    facts: list[tuple[str, str]] = []
    for key, value in questions.items():
        if key.startswith("$"):
            continue
        items = value.items() if isinstance(value, dict) else [(None, value)]
        for sub, v in items:
            if isinstance(sub, str) and sub.startswith("$"):
                continue
            text = _scalar_text(v)
            if text is not None:
                facts.append((f"{key}.{sub}" if sub else key, text))
            if len(facts) == limit:
                return facts
    return facts


def _scalar_text(v: Any) -> str | None:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, float)):
        return format_number(v)
    if isinstance(v, str) and v.strip() and len(v) <= MAX_FACT_TEXT and "\n" not in v.strip():
        return v.strip()
    return None


def format_number(v: float) -> str:
    """Four significant digits, grouped, no exponent for everyday sizes: `12,345`, `0.0423`, `1,235`, `3.5e-07`."""
    if isinstance(v, int):
        return f"{v:,}"
    if not math.isfinite(v):
        return str(v)
    if v == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(v)))
    if magnitude < -4 or magnitude >= 15:
        return f"{v:.3g}"
    decimals = max(0, 3 - magnitude)
    return f"{v:,.{decimals}f}".rstrip("0").rstrip(".") if decimals else f"{v:,.0f}"


# -- Block Kit text objects ----------------------------------------------------------------------


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def _md(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def _esc(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"

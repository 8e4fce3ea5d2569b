"""Human answers: how an answer is checked against a gate's schema, and how a gate opening is named.

The workflow's `answer` update validator, the signal handler, the API's forms, the Slack
interactivity handler and preset gate answers all check an answer the same way, so they share
this one pure module of the contract (it imports only the IR).
"""

from __future__ import annotations

import math
from typing import Any

from dsl import ir
from workflows.contract.json_values import load_json
from workflows.contract.tool_approval import (
    TOOL_APPROVAL_SCHEMA,
    ApprovalError,
    approval_patterns,
    coerce_tool_approval,
)


class AnswerError(ValueError):
    """An answer that does not fit the gate; the message says what to send instead."""


def coerce_answers(schema: ir.Schema | None, answers: dict[str, Any], *, gate: str) -> dict[str, Any]:
    """Check and convert answers against the gate's output schema.

    CLI answers arrive as strings (`--answer approved=true`); they are converted to the field's
    type so edge conditions see real booleans. Every schema field is required; extra keys are an
    error (a typo must not silently pass). A field's constraints (pattern, lengths, min/max) hold
    for a person's answer as for a model's.
    """
    if schema is None:
        return dict(answers)
    if schema == TOOL_APPROVAL_SCHEMA:  # a tool call's approval: fields that go with the decision
        try:
            return coerce_tool_approval(answers, gate=gate)
        except ApprovalError as exc:
            raise AnswerError(str(exc)) from None
    known = {f.name: f for f in schema.fields}
    unknown = sorted(k for k in answers if k not in known)
    if unknown:
        raise AnswerError(f"gate '{gate}' has no field {', '.join(map(repr, unknown))}; expected fields: "
                          f"{', '.join(known) or '(none)'}")
    out: dict[str, Any] = {}
    for f in schema.fields:
        if f.name not in answers:
            raise AnswerError(f"gate '{gate}' needs field '{f.name}' ({_describe_field(f)})")
        out[f.name] = _coerce(f, answers[f.name], gate)
    return out


def _describe_field(f: ir.SchemaField) -> str:
    text = f.type
    if f.enum_values:
        text += f", one of {', '.join(f.enum_values)}"
    constraints = f.constraint_text()
    if constraints:
        text += (", each " if f.type == "string[]" else ", ") + constraints
    return text


def _coerce(f: ir.SchemaField, value: Any, gate: str) -> Any:
    def bad() -> AnswerError:
        return AnswerError(f"gate '{gate}' field '{f.name}' expects {_describe_field(f)}, got {value!r}")

    t = f.type
    if t == "bool":
        if isinstance(value, bool):
            result: Any = value
        elif isinstance(value, str) and value.strip().lower() in ("true", "yes", "y", "1", "false", "no", "n", "0"):
            result = value.strip().lower() in ("true", "yes", "y", "1")
        else:
            raise bad()
    elif t == "int":
        if isinstance(value, bool):
            raise bad()
        if isinstance(value, int):
            result = value
        elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
            result = int(value.strip())
        else:
            raise bad()
    elif t == "float":
        if isinstance(value, bool):
            raise bad()
        try:
            result = float(value)
        except (TypeError, ValueError):
            raise bad() from None
        if not math.isfinite(result):  # "NaN", "inf": not a number a run can store (JSON has none)
            raise AnswerError(f"gate '{gate}' field '{f.name}' expects {_describe_field(f)}; {value!r} is not a "
                              "number (JSON has no NaN or Infinity)")
    elif t == "string":
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise bad()
        result = str(value)
    elif t == "string[]":
        if isinstance(value, str):
            result = [s.strip() for s in value.split(",") if s.strip()]
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            result = list(value)
        else:
            raise bad()
    else:  # json
        if isinstance(value, str):
            try:
                result = load_json(value, what=f"field '{f.name}'")  # bounded: a deep value must not overflow
            except ValueError:
                result = value
        else:
            result = value
    if f.enum_values and t in ("string", "string[]"):
        values = result if isinstance(result, list) else [result]
        for v in values:
            if v not in f.enum_values:
                raise bad()
    if t in ("string", "string[]", "int", "float"):
        for v in result if isinstance(result, list) else [result]:
            problem = f.constraint_problem(v)
            if problem:
                raise AnswerError(f"gate '{gate}' field '{f.name}' expects {_describe_field(f)}; {v!r} {problem}")
    return result


def is_gate(node: ir.Node | None) -> bool:
    """A node a person answers: a human node, or a delegated agent or judge with `interaction:`
    (the coding agent may stop and ask; its answers are free-form)."""
    if isinstance(node, ir.HumanNode):
        return True
    # An agent or judge whose tool calls wait for approval (`tool_approval:`) opens its gate per call.
    return isinstance(node, ir.AgentNode) and (node.interaction != "none" or bool(node.tool_approval))


def answer_schema(wf: ir.Workflow, node: ir.Node) -> ir.Schema | None:
    """The schema a gate's answers must match: a human node's output schema; none for an agent's
    questions (a person answers them in their own words)."""
    if approval_patterns(wf, node):  # the node's gate opens for its tool calls (`tool_approval:`)
        return TOOL_APPROVAL_SCHEMA
    if not isinstance(node, ir.HumanNode):
        return None
    return wf.schemas.get(node.output_schema) if node.output_schema else None


def interaction_id(run_id: str, node_id: str, visit: int) -> str:
    """Stable id of one gate opening: the same gate in a later loop iteration gets a new id."""
    return f"{run_id}:{node_id}:{visit}"


def opening_number(interaction_id: str) -> str:
    """The opening's number (the gate's visit) from its id, for messages; the id itself if it has none."""
    number = interaction_id.rsplit(":", 1)[-1]
    return number if number.isdigit() else repr(interaction_id)


def already_answered(gate: str, interaction_id: str, answered_by: str, answered_at: str) -> str:
    """Why a second answer to one opening is refused: each opening takes exactly one answer."""
    return (f"gate '{gate}' opening {opening_number(interaction_id)} was already answered by {answered_by} at "
            f"{answered_at}; nothing was recorded (a gate opening takes one answer)")


def not_open(gate: str, run_id: str, *, last_id: str = "", last_by: str = "", last_at: str = "") -> str:
    """Why an answer for no particular opening is refused while the gate is closed, and how to send one
    in advance on purpose. ``last_*`` describe the gate's latest answered opening, if any."""
    if not last_id:
        where = "is not open (it has not opened yet, or it was answered and the run moved on)"
    else:
        where = (f"is not open; its last opening {opening_number(last_id)} was already answered by {last_by} at "
                 f"{last_at}")
    return (f"gate '{gate}' {where}; nothing was recorded. An answer is kept for a later opening only when it is "
            f"sent in advance on purpose: `iterloop answer {run_id} --gate {gate} --in-advance …`, or "
            f'"in_advance": true over the API')


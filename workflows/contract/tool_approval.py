"""Approving a model's tool call (`tool_approval:`): which calls wait for a person, the answer's
shape, and the check of edited arguments.

An agent's or judge's `tool_approval` lists tool patterns (the `tool_policy` syntax). A call of a
matching tool opens the node's gate before it runs; the person answers `decision: approve`, `edit`
with new `arguments`, or `reject` with a `message` that the model reads as the tool's result. The
workflow, the `answer` update's validator, the API, Slack and the CLI all judge that answer with
`coerce_tool_approval`, so it lives in the contract (pure: the IR, pydantic and jsonschema).
"""

from __future__ import annotations

from typing import Any, Literal

import jsonschema

from dsl import ir
from workflows.contract.delegation import DELEGATE_BACKENDS
from workflows.contract.json_values import load_json
from workflows.contract.tool_policy import tool_allowed

Decision = Literal["approve", "edit", "reject"]
DECISIONS: tuple[Decision, ...] = ("approve", "edit", "reject")

#: The gate's answer schema, as forms (API, Slack) and `iterloop inspect` show it. Its name has
#: spaces, so no schema of a workflow file can be mistaken for it.
TOOL_APPROVAL_SCHEMA = ir.Schema(name="tool call approval", fields=[
    ir.SchemaField(name="decision", type="string", enum_values=list(DECISIONS)),
    ir.SchemaField(name="arguments", type="json"),
    ir.SchemaField(name="message", type="string"),
])

#: What the model reads when a person rejects a call without saying why.
DEFAULT_REJECTION = "a person rejected this tool call"


class ApprovalError(ValueError):
    """An approval answer that does not fit; the message says what to send instead."""


def approval_patterns(wf: ir.Workflow, node: ir.Node) -> list[str]:
    """The node's `tool_approval` patterns, or none when the node's tools do not run in the
    workflow's tool loop (a delegated node: its coding agent's CLI runs its own tools)."""
    if not isinstance(node, ir.AgentNode) or not node.tool_approval:
        return []
    if (node.backend or wf.default_backend) in DELEGATE_BACKENDS:
        return []
    return list(node.tool_approval)


def needs_approval(tool: str, patterns: list[str]) -> bool:
    """Whether a call of ``tool`` waits for a person (``patterns`` match as `tool_policy` does)."""
    return bool(patterns) and tool_allowed(tool, patterns)


def coerce_tool_approval(answers: dict[str, Any], *, gate: str) -> dict[str, Any]:
    """Check an approval answer and give it its full shape: ``decision``, ``arguments`` (the edited
    ones; {} unless `edit`) and ``message`` (with `reject` what the model reads; with the others a
    note kept in the run's log). `approve` with arguments is an `edit`. Answers from the CLI arrive
    as strings: `arguments` is then parsed as JSON."""
    unknown = sorted(k for k in answers if k not in ("decision", "arguments", "message"))
    if unknown:
        raise ApprovalError(f"gate '{gate}' (a tool call approval) has no field {', '.join(map(repr, unknown))}; "
                            "expected: decision (approve|edit|reject), arguments (with edit), message (with reject)")
    decision = str(answers.get("decision") or "").strip().lower()
    if decision not in DECISIONS:
        raise ApprovalError(f"gate '{gate}' needs field 'decision' (one of approve, edit, reject), got "
                            f"{answers.get('decision')!r}; e.g. --answer decision=approve")
    arguments = answers.get("arguments")
    if isinstance(arguments, str):
        if not arguments.strip():
            arguments = None
        else:
            try:
                arguments = load_json(arguments, what=f"gate '{gate}' field 'arguments'")
            except ValueError as exc:
                raise ApprovalError(f"gate '{gate}' field 'arguments' must be a JSON object: {exc}") from None
    if arguments is not None and not isinstance(arguments, dict):
        raise ApprovalError(f"gate '{gate}' field 'arguments' must be a JSON object (the tool's arguments by "
                            f"name), got {type(arguments).__name__}")
    if arguments and decision == "approve":  # approving with other arguments is an edit (Slack's form)
        decision = "edit"
    if not arguments and decision == "edit":
        raise ApprovalError(f"gate '{gate}': decision 'edit' needs field 'arguments', the call's new arguments as "
                            "a JSON object, e.g. --answer 'arguments={\"values\": [1, 2]}'")
    if arguments and decision == "reject":
        raise ApprovalError(f"gate '{gate}': field 'arguments' goes with decision 'edit' (a rejected call does not "
                            "run); send decision=edit to run the call with other arguments")
    message = answers.get("message")
    if message is not None and not isinstance(message, str):
        raise ApprovalError(f"gate '{gate}' field 'message' must be text, got {type(message).__name__}")
    return {"decision": decision, "arguments": dict(arguments or {}), "message": (message or "").strip()}


def arguments_problem(arguments: dict[str, Any], input_schema: dict[str, Any] | None) -> str:
    """Why edited ``arguments`` do not fit the tool's input schema ("" if they do, or if the
    schema is unknown: the tool itself then refuses bad arguments, and the model reads why)."""
    if not input_schema:
        return ""
    try:
        validator = jsonschema.Draft202012Validator(input_schema)
        errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.absolute_path))
    except jsonschema.SchemaError:  # a server's broken schema must not block an approval
        return ""
    if not errors:
        return ""
    first = errors[0]
    where = "/".join(str(p) for p in first.absolute_path) or "(the arguments)"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first.message}{more}"

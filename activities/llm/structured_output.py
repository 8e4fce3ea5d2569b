"""What a model turn must answer with: the schema for each purpose, its JSON Schema, and the
instructions that go with it.

- nodes, `auto_answer` and `auto_or_pause` gates: the node's output schema (the workflow extends
  the schema of an `auto_or_pause` gate with `needs_human_input`);
- LLM routers: `<router>_route_selection` = `{selected_route: one of the candidates, reasoning}`,
  or `{selected_routes: [candidates…], reasoning}` for a `multi` router.

The JSON Schema follows Iterion's mapping (object, every field required, no additional
properties; `string[]` enums on the items), except that a `json` field accepts any JSON value
(Iterion's `object` rejected lists and scalars that its own validator accepts). OpenAI's strict
mode needs every value's shape spelled out, so a schema with a `json` field is sent non-strict.
"""

from __future__ import annotations

from typing import Any

from activities.llm.provider import AnswerSpec, wire_name
from dsl.ir import Schema, SchemaField
from workflows.contract.messages import LLMTurnRequest

NEEDS_HUMAN_INPUT = "needs_human_input"
SELECTED_ROUTE = "selected_route"
SELECTED_ROUTES = "selected_routes"
REASONING = "reasoning"


def answer_schema(req: LLMTurnRequest) -> Schema | None:
    """The schema the turn's final answer must match (None: free text)."""
    if req.purpose == "route":
        choice = (SchemaField(name=SELECTED_ROUTES, type="string[]", enum_values=list(req.route_candidates))
                  if req.multi_route else
                  SchemaField(name=SELECTED_ROUTE, type="string", enum_values=list(req.route_candidates)))
        return Schema(name=f"{req.node_id}_route_selection", fields=[choice, SchemaField(name=REASONING, type="string")])
    return req.output_schema


def optional_fields(req: LLMTurnRequest, schema: Schema | None, output: dict[str, Any]) -> frozenset[str]:
    """Fields an answer may leave out: an `auto_or_pause` gate that asks for a human (or omits
    `needs_human_input`, meaning no) need not fill the answer it will not give."""
    if req.purpose != "auto_or_pause" or schema is None:
        return frozenset()
    if output.get(NEEDS_HUMAN_INPUT) is True:
        return frozenset(f.name for f in schema.fields)
    return frozenset({NEEDS_HUMAN_INPUT})


def extra_problem(req: LLMTurnRequest, output: dict[str, Any]) -> str:
    """A problem the schema cannot express, or ""."""
    if req.purpose == "route" and req.multi_route and output.get(SELECTED_ROUTES) == []:
        return f"field '{SELECTED_ROUTES}' is empty; select at least one of {list(req.route_candidates)}"
    return ""


def system_instructions(req: LLMTurnRequest) -> str:
    """Text appended to the node's system prompt for this purpose ("" for plain nodes)."""
    candidates = ", ".join(req.route_candidates)
    if req.purpose == "route" and req.multi_route:
        return (f"You are routing this workflow. Choose one or more next steps among: {candidates}. "
                f"Answer with '{SELECTED_ROUTES}' (a list of those names) and a short '{REASONING}'.")
    if req.purpose == "route":
        return (f"You are routing this workflow. Choose exactly one next step among: {candidates}. "
                f"Answer with '{SELECTED_ROUTE}' (one of those names) and a short '{REASONING}'.")
    if req.purpose == "auto_or_pause":
        return (f"You are answering a question on behalf of a human. If you cannot answer it with confidence, "
                f"set '{NEEDS_HUMAN_INPUT}' to true and a human will answer instead; otherwise set it to false "
                "and fill in the answer.")
    return ""


def answer_spec(schema: Schema) -> AnswerSpec:
    """The schema as JSON Schema, with its API-safe name and whether it fits strict mode."""
    properties = {f.name: _field_schema(f) for f in schema.fields}
    json_schema: dict[str, Any] = {"type": "object", "properties": properties,
                                   "required": [f.name for f in schema.fields], "additionalProperties": False}
    strict = all(f.type != "json" for f in schema.fields)
    return AnswerSpec(name=wire_name(schema.name, fallback="output"), json_schema=json_schema, strict=strict)


def _field_schema(f: SchemaField) -> dict[str, Any]:
    if f.type == "json":
        return {"description": "any JSON value"}
    if f.type == "string[]":
        item: dict[str, Any] = {"type": "string"}
        if f.enum_values:
            item["enum"] = list(f.enum_values)
        return {"type": "array", "items": item}
    out: dict[str, Any] = {"type": {"string": "string", "bool": "boolean", "int": "integer", "float": "number"}[f.type]}
    if f.enum_values:
        out["enum"] = list(f.enum_values)
    return out

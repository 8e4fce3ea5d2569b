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

`strict_json_schema` rewrites a JSON Schema into the subset that providers' constrained decoding
accepts (Anthropic's `output_config.format`, OpenAI's strict mode): every object closed
(`additionalProperties: false`) with every property required, every value typed (or an enum,
`const`, `anyOf`), and the keywords the grammar cannot enforce (numeric bounds, string lengths,
longer `minItems`…) moved into the description, where the model still reads them and the
validator still checks the answer. A schema with an untyped value (a `json` field) has no strict
form: it returns None, and the provider falls back to its non-native path.
"""

from __future__ import annotations

import json
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
    strict = strict_json_schema(json_schema) is not None  # every field typed: no free-form `json` field
    return AnswerSpec(name=wire_name(schema.name, fallback="output"), json_schema=json_schema, strict=strict)


def _field_schema(f: SchemaField) -> dict[str, Any]:
    if f.type == "json":
        return {"description": "any JSON value"}
    if f.type == "string[]":
        item: dict[str, Any] = {"type": "string"}
        if f.enum_values:
            item["enum"] = list(f.enum_values)
        item.update(_constraint_keywords(f))
        return {"type": "array", "items": item}
    out: dict[str, Any] = {"type": {"string": "string", "bool": "boolean", "int": "integer", "float": "number"}[f.type]}
    if f.enum_values:
        out["enum"] = list(f.enum_values)
    out.update(_constraint_keywords(f))
    return out


#: A schema field's constraints as JSON Schema keywords (`strict_json_schema` moves those a
#: provider's grammar cannot enforce into the description; the answer is validated either way).
_KEYWORDS = {"pattern": "pattern", "min_length": "minLength", "max_length": "maxLength",
             "min": "minimum", "max": "maximum"}


def _constraint_keywords(f: SchemaField) -> dict[str, Any]:
    return {_KEYWORDS[key]: value for key, value in f.constraints().items()}


#: Keywords constrained decoding accepts besides the structural ones handled below.
_STRICT_STRING_FORMATS = frozenset({"date-time", "time", "date", "duration", "email", "hostname", "uri", "ipv4", "ipv6",
                                    "uuid"})
_STRICT_TYPES = frozenset({"object", "array", "string", "integer", "number", "boolean", "null"})


def strict_json_schema(schema: dict[str, Any]) -> dict[str, Any] | None:
    """``schema`` in the strict subset of JSON Schema that native structured outputs accept, or
    None when it has no such form (a value of any type, an open object). Pure; ``schema`` is not
    changed."""
    try:
        return _strict(schema)
    except _NotStrict:
        return None


class _NotStrict(Exception):
    pass


def _strict(node: Any) -> dict[str, Any]:
    if not isinstance(node, dict):
        raise _NotStrict
    rest = dict(node)
    out: dict[str, Any] = {}
    for key in ("$defs", "definitions"):
        if isinstance(rest.get(key), dict):
            out[key] = {name: _strict(sub) for name, sub in rest.pop(key).items()}
    if "$ref" in rest:
        out["$ref"] = rest.pop("$ref")
        if "description" in rest:
            out["description"] = rest.pop("description")
        return out
    for key in ("anyOf", "oneOf"):
        if isinstance(rest.get(key), list):
            out["anyOf"] = [_strict(v) for v in rest.pop(key)]
    if isinstance(rest.get("allOf"), list):
        out["allOf"] = [_strict(v) for v in rest.pop("allOf")]
    enum = rest.pop("enum", None)
    if isinstance(enum, list) and enum and all(v is None or isinstance(v, (str, int, float, bool)) for v in enum):
        out["enum"] = list(enum)
    elif enum is not None:
        raise _NotStrict
    if "const" in rest:
        out["const"] = rest.pop("const")
    kind = rest.pop("type", None)
    kinds = kind if isinstance(kind, list) else [kind] if kind is not None else []
    if any(k not in _STRICT_TYPES for k in kinds):
        raise _NotStrict
    if kind is not None:
        out["type"] = kind
    elif not ({"enum", "const", "anyOf", "allOf"} & out.keys()):
        raise _NotStrict  # a value of any type: no grammar for it
    for key in ("description", "title"):
        if isinstance(rest.get(key), str):
            out[key] = rest.pop(key)
    if "object" in kinds:
        properties = rest.pop("properties", None) or {}
        extra = rest.pop("additionalProperties", None)
        if extra not in (False, None, {}) or not isinstance(properties, dict) or (extra is not False and not properties):
            raise _NotStrict  # an open object (a map of any keys) has no strict form
        rest.pop("required", None)
        out["properties"] = {name: _strict(sub) for name, sub in properties.items()}
        out["required"] = list(properties)
        out["additionalProperties"] = False
    if "array" in kinds:
        if "items" not in rest:
            raise _NotStrict
        out["items"] = _strict(rest.pop("items"))
        if rest.get("minItems") in (0, 1):
            out["minItems"] = rest.pop("minItems")
    if "string" in kinds and rest.get("format") in _STRICT_STRING_FORMATS:
        out["format"] = rest.pop("format")
    rest.pop("default", None)
    rest.pop("examples", None)
    if rest:  # what the grammar cannot enforce is still said, and still validated afterwards
        note = "{" + ", ".join(f"{k}: {json.dumps(v, sort_keys=True)}" for k, v in sorted(rest.items())) + "}"
        out["description"] = (out["description"] + "\n\n" if "description" in out else "") + note
    return out

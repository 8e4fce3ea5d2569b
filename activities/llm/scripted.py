"""The offline model provider: outputs come from a script, or are generated from the schema.

It lets the demo and the tests run every workflow with no API key. Its results are labelled by
``usage.provider == "scripted"`` (outputs stay clean so downstream templates see the same keys a
real model would produce). The script's format, and the checks of its shape that the CLI and the
API run before a run starts, are in `workflows/contract/scripts.py`.
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any

from activities.errors import ScriptError
from activities.llm.provider import SCRIPTED, ModelCall, ModelReply, TokenCounts
from dsl.ir import SchemaField
from workflows.contract.messages import ChatMessage, LLMTurnRequest, ToolCall
from workflows.contract.output_validation import describe_value, find_violation
from workflows.contract.scripts import (
    COST_KEY,
    DEFAULTS_KEY,
    REPLY_TEXT_KEY,
    TOOL_CALLS_KEY,
    TURNS_KEY,
    entry_shape_problem,
    is_outputs_wrapper,
    is_reply_text,
    is_tool_turn,
    script_shape_problem,
)

NEEDS_HUMAN_INPUT = "needs_human_input"


class ScriptedProvider:
    """`ModelProvider` for offline runs; reads the script carried by each request."""

    name = SCRIPTED

    def __init__(self, settings: object = None) -> None:
        pass

    async def call(self, call: ModelCall) -> ModelReply:
        req = call.request
        turn = scripted_turn(req)
        where = _where(req)
        if isinstance(turn, dict) and is_tool_turn(turn):
            calls = [ToolCall(id=f"{req.node_id}-v{req.visit}-t{req.turn}-{i + 1}", name=c["name"],
                              arguments=copy.deepcopy(c.get("arguments") or {}))
                     for i, c in enumerate(turn[TOOL_CALLS_KEY])]
            message = ChatMessage(role="assistant", tool_calls=calls, provider=SCRIPTED)
            return ModelReply(message=message, tool_calls=calls,
                              tokens=scripted_tokens(req, [c.model_dump() for c in calls]), cost_usd=_cost(req))
        if isinstance(turn, dict) and is_reply_text(turn):
            text = turn[REPLY_TEXT_KEY]
            return ModelReply(message=ChatMessage(role="assistant", text=text, provider=SCRIPTED), text=text,
                              tokens=scripted_tokens(req, text), cost_usd=_cost(req))
        output = _checked_output(req, turn, where)
        if req.output_schema is None and req.purpose != "route" and turn is None:
            text = output["text"]  # free text, as a real model would answer a schemaless node
            return ModelReply(message=ChatMessage(role="assistant", text=text, provider=SCRIPTED), text=text,
                              tokens=scripted_tokens(req, output), cost_usd=_cost(req))
        shown = json.dumps(output, ensure_ascii=False, sort_keys=True)
        return ModelReply(message=ChatMessage(role="assistant", text=shown, provider=SCRIPTED), text=shown,
                          answer=output, tokens=scripted_tokens(req, output), cost_usd=_cost(req))


def scripted_turn(req: LLMTurnRequest) -> Any:
    """The script's item for this visit and turn: an output, a tool turn, a raw reply, or None
    (generate an output). Routers get their output here already."""
    script = req.script or {}
    if not isinstance(script, dict):
        raise _script_error(f"the run's script is malformed: {script_shape_problem(script)}")
    # Only what this turn reads: the whole script was checked when it was loaded (`load_script`),
    # and checking every node's entry on every turn made a long run's turns slower and slower.
    for key in (req.node_id, DEFAULTS_KEY, COST_KEY):
        problem = entry_shape_problem(key, script[key]) if key in script else None
        if problem is not None:
            raise _script_error(f"the run's script is malformed: {problem}")
    entry = script.get(req.node_id) if req.node_id not in (DEFAULTS_KEY, COST_KEY) else None
    if req.purpose == "route":
        return _route_output(req, entry)
    if entry is None:
        return None
    item = _visit_item(entry, req.visit)
    if not (isinstance(item, dict) and set(item) == {TURNS_KEY}):
        return item
    turns = item[TURNS_KEY]
    k = min(max(req.turn, 1), len(turns)) - 1
    if is_tool_turn(turns[k]) and not req.allow_tools:  # the tool budget is spent: answer now
        return next((t for t in turns[k + 1:] if not is_tool_turn(t)), None)
    return turns[k]


def scripted_output(req: LLMTurnRequest) -> dict[str, Any]:
    """The final output this visit and turn give (tool turns and raw replies excluded)."""
    turn = scripted_turn(req)
    if isinstance(turn, dict) and (is_tool_turn(turn) or is_reply_text(turn)):
        raise _script_error(f"script entry for {_where(req)} (turn {req.turn}) is not an output")
    return _checked_output(req, turn, _where(req))


def _checked_output(req: LLMTurnRequest, item: Any, where: str) -> dict[str, Any]:
    if req.purpose == "route":
        return item
    if item is None:
        return _generated_output(req, (req.script or {}).get(DEFAULTS_KEY) or {})
    if not isinstance(item, dict):
        raise _script_error(f"script entry for {where}: expected an output object (field: value), found "
                            f"{describe_value(item)}; write it as a mapping of the output schema's fields")
    output = copy.deepcopy(item)
    optional: set[str] = set()
    if req.purpose == "auto_or_pause":
        optional.add(NEEDS_HUMAN_INPUT)  # absent means "no human needed"
        if output.get(NEEDS_HUMAN_INPUT) is True and req.output_schema:  # the human will answer
            optional.update(f.name for f in req.output_schema.fields)
    violation = find_violation(req.output_schema, output, optional=optional)
    if violation is not None:
        schema = f" '{req.output_schema.name}'" if req.output_schema else ""
        raise _script_error(f"scripted output for {where}: {violation.describe()}; fix the script entry "
                            f"'{req.node_id}' to match the output schema{schema}")
    return output


def scripted_tokens(req: LLMTurnRequest, output: Any) -> TokenCounts:
    """Deterministic token counts (about 4 characters per token)."""
    shown = output if isinstance(output, str) else json.dumps(output, sort_keys=True, ensure_ascii=False)
    return TokenCounts(input_tokens=len(req.system + req.user) // 4 + 1, output_tokens=len(shown) // 4 + 1)


def _cost(req: LLMTurnRequest) -> float:
    """USD only if the script sets `cost_per_call_usd` (so cost budgets can be exercised offline)."""
    return float((req.script or {}).get(COST_KEY, 0.0))


# -- generation ----------------------------------------------------------------------------------

def _generated_output(req: LLMTurnRequest, defaults: dict[str, Any]) -> dict[str, Any]:
    if req.output_schema is None:
        return {"text": f"{req.node_id}.text"}
    output = {f.name: copy.deepcopy(defaults[f.name]) if f.name in defaults else _placeholder(req.node_id, f)
              for f in req.output_schema.fields}
    violation = find_violation(req.output_schema, output)
    if violation is not None and violation.field not in defaults:
        raise _script_error(f"generated output for {_where(req)}: no placeholder fits the schema's constraints "
                            f"({violation.describe()}); script '{req.node_id}' or set "
                            f"'{DEFAULTS_KEY}.{violation.field}' in the script")
    if violation is not None:
        raise _script_error(f"generated output for {_where(req)} uses the script's defaults: "
                            f"{violation.describe()}; fix '{DEFAULTS_KEY}.{violation.field}' in the script")
    return output


def _placeholder(node_id: str, f: SchemaField) -> Any:
    """A value of the field's type that fits its constraints where a simple one does (lengths,
    bounds, a pattern that `node-field` or `node_field` satisfies)."""
    if f.type == "string":
        if f.enum_values:
            return f.enum_values[0]
        candidates = [f"{node_id}.{f.name}", f"{node_id}-{f.name}".replace("_", "-"), f"{node_id}_{f.name}"]
        fitted = [_fit_length(c, f) for c in candidates]
        return next((c for c in fitted if f.constraint_problem(c) is None), fitted[0])
    if f.type in ("int", "float"):
        value: float = 1
        if f.min is not None and value < f.min:
            value = math.ceil(f.min) if f.type == "int" else f.min
        if f.max is not None and value > f.max:
            value = math.floor(f.max) if f.type == "int" else f.max
        return int(value) if f.type == "int" else float(value)
    return {"bool": True, "json": {}, "string[]": []}[f.type]


def _fit_length(text: str, f: SchemaField) -> str:
    if f.max_length is not None:
        text = text[:f.max_length]
    if f.min_length is not None and len(text) < f.min_length:
        text += "x" * (f.min_length - len(text))
    return text


# -- routers -------------------------------------------------------------------------------------

def _route_output(req: LLMTurnRequest, entry: Any) -> dict[str, Any]:
    candidates = req.route_candidates
    where = _where(req)
    if not candidates:
        raise _script_error(f"router {where} has no route candidates to choose from")
    key = "selected_routes" if req.multi_route else "selected_route"
    if entry is None:
        return {key: list(candidates) if req.multi_route else candidates[0], "reasoning": SCRIPTED}
    if req.multi_route and isinstance(entry, list) and all(isinstance(x, str) for x in entry):
        item: Any = entry  # a list of names is the selection itself, on every visit
    else:
        item = _visit_item(entry, req.visit)
    output = copy.deepcopy(item) if isinstance(item, dict) else {key: item}
    chosen = output.get(key)
    if req.multi_route:
        if isinstance(chosen, str):
            chosen = [chosen]
        if not (isinstance(chosen, list) and chosen and all(isinstance(c, str) for c in chosen)):
            raise _script_error(f"script entry for multi-route router {where}: expected a target name or a "
                                f"non-empty list of target names from {candidates}, found {describe_value(chosen)}")
        unknown = [c for c in chosen if c not in candidates]
    else:
        if not isinstance(chosen, str):
            raise _script_error(f"script entry for router {where}: expected one target name from {candidates}, "
                                f"found {describe_value(chosen)}")
        unknown = [] if chosen in candidates else [chosen]
    if unknown:
        raise _script_error(f"script entry for router {where} selects {unknown[0]!r}, which is not one of its "
                            f"routes {candidates}; use one of those target names")
    output[key] = chosen
    output.setdefault("reasoning", SCRIPTED)
    return output


# -- shared --------------------------------------------------------------------------------------

def _visit_item(entry: Any, visit: int) -> Any:
    """Visit k (1-based) uses item k-1 of a list entry; past the end the last item repeats."""
    if isinstance(entry, dict) and is_outputs_wrapper(entry):
        entry = entry["outputs"]
    if not isinstance(entry, list):
        return entry
    return entry[min(max(visit, 1), len(entry)) - 1]


def _where(req: LLMTurnRequest) -> str:
    return f"node '{req.node_id}' (visit {req.visit})"


def _script_error(message: str) -> ScriptError:
    return ScriptError(message)


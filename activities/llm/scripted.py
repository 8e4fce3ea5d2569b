"""The offline model provider: outputs come from a script, or are generated from the schema.

It lets the demo and the tests run every workflow with no API key. Its results are labelled by
``usage.provider == "scripted"`` (outputs stay clean so downstream templates see the same keys a
real model would produce).

The script is a mapping (usually YAML, see `load_script`), carried in the run options:

    defaults:                 # optional: field name → value used when generating an output
      needs_human_input: false
    analyst:                  # one output object, used on every visit
      summary: "Checkout conversion dropped 12% on mobile"
    critic:                   # a list: visit k uses item k-1; past the end the last item repeats
      - {verdict: revise}
      - {verdict: ship}
    planner:                  # the same, spelled out
      outputs: [{hypothesis: "Shorter form"}, {hypothesis: "Trust badges"}]
    triage: bug_fix           # an LLM router: the target to select
    fanout: [web, mobile]     # a multi-route LLM router: the targets to select (every visit)

A node with no entry gets a generated output: for each schema field, the `defaults:` value if
any, else string → "<node>.<field>" (or the first enum value), bool → true, int → 1,
float → 1.0, json → {}, string[] → []; a node with no output schema gets {"text": "<node>.text"}
(what a real model's free text looks like). A router with no entry picks its first candidate
(all candidates when multi). A human gate in `llm_or_human` mode therefore pauses for a human by
default (generated `needs_human_input: true`); script it or set a default to let it auto-answer.

Scripted outputs are checked against the node's output schema (every field required, types,
enums; extra keys allowed): a mismatch is a permanent `ScriptError` naming node, field, what
was expected and what was found. `defaults` and `cost_per_call_usd` are reserved keys, not node ids.

**Tool loops.** A visit's item may script several model turns, so offline runs exercise the
tool-use loop, repairs and sessions:

    analyst:
      turns:                  # turn k of the visit uses turns[k-1]; past the end the last repeats
        - tool_calls:         # a turn that calls tools (the workflow runs them, then asks again)
            - {name: get_funnel_data, arguments: {funnel: checkout}}
        - reply_text: "not json"   # a raw reply, checked like a real model's: here an invalid turn
        - {summary: "Checkout conversion dropped 12% on mobile"}   # the final output
    planner:                  # per visit, as above: visit 1 uses tools, visit 2 answers at once
      - turns: [{tool_calls: [{name: sum_values, arguments: {values: [1, 2]}}]}, {hypothesis: a}]
      - {hypothesis: b}

A turn item whose only key is `tool_calls` (a list of `{name, arguments}`) calls tools; one whose
only key is `reply_text` is the model's raw text, parsed and validated like a real reply (so a
repair can be scripted); anything else is an output. When the workflow says the tool budget is
spent, a tool turn is skipped for the next output item of the list (or a generated output).

Every turn, like a real provider's, appends to the conversation in the artifact store, so
sessions (`inherit`, `fork`) carry scripted conversations too.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

from temporalio.exceptions import ApplicationError

from activities.data_files import read_data_file
from activities.llm.output_validation import describe_value, find_violation
from activities.llm.provider import SCRIPTED, ModelCall, ModelReply, TokenCounts
from dsl.ir import SchemaField
from workflows.messages import ERR_SCRIPT, ChatMessage, LLMTurnRequest, ToolCall

DEFAULTS_KEY = "defaults"
COST_KEY = "cost_per_call_usd"  # reserved: USD charged per scripted call
NEEDS_HUMAN_INPUT = "needs_human_input"
TURNS_KEY = "turns"
TOOL_CALLS_KEY = "tool_calls"
REPLY_TEXT_KEY = "reply_text"


class ScriptLoadError(ValueError):
    """A script file that cannot be read, is not YAML, or does not have the script's shape."""


def load_script(path: str | Path) -> dict[str, Any]:
    """Read and check a YAML script file; an empty file is an empty script."""
    data = read_data_file(path, what="script file", missing_hint="check the path given with --script",
                          error=ScriptLoadError)
    if data is None:
        return {}
    problem = script_shape_problem(data)
    if problem is not None:
        raise ScriptLoadError(f"script file '{path}': {problem}")
    return data


def script_shape_problem(script: Any) -> str | None:
    """What is wrong with the script's overall shape, or None: every entry, as `load_script`
    checks a file (and the API should check a script it is given). Entries' contents are checked
    per visit, against the node's schema, when the node runs."""
    if not isinstance(script, dict):
        return f"expected a mapping of node id → scripted output, found {describe_value(script)}"
    for key, entry in script.items():
        problem = entry_shape_problem(key, entry)
        if problem is not None:
            return problem
    return None


def entry_shape_problem(key: Any, entry: Any) -> str | None:
    """What is wrong with one entry's shape (a node's, `defaults` or `cost_per_call_usd`), or None."""
    if not isinstance(key, str):
        return f"key {key!r} is not a node id (a string); quote it"
    if key == COST_KEY:
        if isinstance(entry, bool) or not isinstance(entry, (int, float)) or entry < 0:
            return f"'{COST_KEY}' must be a non-negative number of USD, found {describe_value(entry)}"
        return None
    if key == DEFAULTS_KEY and not isinstance(entry, dict):
        return f"'{DEFAULTS_KEY}' must map field names to values, found {describe_value(entry)}"
    if isinstance(entry, list) and not entry:
        return f"entry '{key}' is an empty list; give at least one output"
    if isinstance(entry, dict) and _is_outputs_wrapper(entry) and not entry["outputs"]:
        return f"entry '{key}' has an empty 'outputs' list; give at least one output"
    for where, item in _entry_items(key, entry):
        problem = _turns_problem(item, where)
        if problem is not None:
            return problem
    bad = _first_non_json(entry, key)
    if bad is not None:
        return (f"'{bad[0]}' holds {describe_value(bad[1])}, which JSON cannot carry (the script travels "
                "in the run input); quote it")
    return None


def _entry_items(key: str, entry: Any) -> list[tuple[str, Any]]:
    """An entry's per-visit items, each with its dotted path for messages."""
    if isinstance(entry, dict) and _is_outputs_wrapper(entry):
        return [(f"{key}.outputs[{i}]", item) for i, item in enumerate(entry["outputs"])]
    if isinstance(entry, list):
        return [(f"{key}[{i}]", item) for i, item in enumerate(entry)]
    return [(key, entry)]


def _turns_problem(item: Any, where: str) -> str | None:
    if not (isinstance(item, dict) and TURNS_KEY in item and set(item) == {TURNS_KEY}):
        return None
    turns = item[TURNS_KEY]
    if not isinstance(turns, list) or not turns:
        return f"'{where}.{TURNS_KEY}' must be a non-empty list of turns"
    for k, turn in enumerate(turns):
        if _is_tool_turn(turn):
            for c, call in enumerate(turn[TOOL_CALLS_KEY]):
                if not (isinstance(call, dict) and isinstance(call.get("name"), str)
                        and isinstance(call.get("arguments", {}), dict) and set(call) <= {"name", "arguments"}):
                    return (f"'{where}.{TURNS_KEY}[{k}].{TOOL_CALLS_KEY}[{c}]' must be {{name: <tool>, arguments: "
                            f"{{...}}}}, found {describe_value(call)}")
        elif _is_reply_text(turn) and not isinstance(turn[REPLY_TEXT_KEY], str):
            return f"'{where}.{TURNS_KEY}[{k}].{REPLY_TEXT_KEY}' must be a string"
    return None


class ScriptedProvider:
    """`ModelProvider` for offline runs; reads the script carried by each request."""

    name = SCRIPTED

    def __init__(self, settings: object = None) -> None:
        pass

    async def call(self, call: ModelCall) -> ModelReply:
        req = call.request
        turn = scripted_turn(req)
        where = _where(req)
        if isinstance(turn, dict) and _is_tool_turn(turn):
            calls = [ToolCall(id=f"{req.node_id}-v{req.visit}-t{req.turn}-{i + 1}", name=c["name"],
                              arguments=copy.deepcopy(c.get("arguments") or {}))
                     for i, c in enumerate(turn[TOOL_CALLS_KEY])]
            message = ChatMessage(role="assistant", tool_calls=calls, provider=SCRIPTED)
            return ModelReply(message=message, tool_calls=calls,
                              tokens=scripted_tokens(req, [c.model_dump() for c in calls]), cost_usd=_cost(req))
        if isinstance(turn, dict) and _is_reply_text(turn):
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
    if _is_tool_turn(turns[k]) and not req.allow_tools:  # the tool budget is spent: answer now
        return next((t for t in turns[k + 1:] if not _is_tool_turn(t)), None)
    return turns[k]


def scripted_output(req: LLMTurnRequest) -> dict[str, Any]:
    """The final output this visit and turn give (tool turns and raw replies excluded)."""
    turn = scripted_turn(req)
    if isinstance(turn, dict) and (_is_tool_turn(turn) or _is_reply_text(turn)):
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


def _is_tool_turn(turn: Any) -> bool:
    return isinstance(turn, dict) and set(turn) == {TOOL_CALLS_KEY} and isinstance(turn[TOOL_CALLS_KEY], list)


def _is_reply_text(turn: Any) -> bool:
    return isinstance(turn, dict) and set(turn) == {REPLY_TEXT_KEY}


# -- generation ----------------------------------------------------------------------------------

def _generated_output(req: LLMTurnRequest, defaults: dict[str, Any]) -> dict[str, Any]:
    if req.output_schema is None:
        return {"text": f"{req.node_id}.text"}
    output = {f.name: copy.deepcopy(defaults[f.name]) if f.name in defaults else _placeholder(req.node_id, f)
              for f in req.output_schema.fields}
    violation = find_violation(req.output_schema, output)
    if violation is not None:
        raise _script_error(f"generated output for {_where(req)} uses the script's defaults: "
                            f"{violation.describe()}; fix '{DEFAULTS_KEY}.{violation.field}' in the script")
    return output


def _placeholder(node_id: str, f: SchemaField) -> Any:
    if f.type == "string":
        return f.enum_values[0] if f.enum_values else f"{node_id}.{f.name}"
    return {"bool": True, "int": 1, "float": 1.0, "json": {}, "string[]": []}[f.type]


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
    if isinstance(entry, dict) and _is_outputs_wrapper(entry):
        entry = entry["outputs"]
    if not isinstance(entry, list):
        return entry
    return entry[min(max(visit, 1), len(entry)) - 1]


def _is_outputs_wrapper(entry: dict[str, Any]) -> bool:
    return set(entry) == {"outputs"} and isinstance(entry["outputs"], list)


def _where(req: LLMTurnRequest) -> str:
    return f"node '{req.node_id}' (visit {req.visit})"


def _script_error(message: str) -> ApplicationError:
    return ApplicationError(message, type=ERR_SCRIPT, non_retryable=True)


def _first_non_json(value: Any, path: str) -> tuple[str, Any] | None:
    """The dotted path and value of the first thing JSON cannot carry (YAML dates, non-string
    keys, NaN…), or None."""
    if isinstance(value, dict):
        for k, v in value.items():
            found = (f"{path}.{k}", k) if not isinstance(k, str) else _first_non_json(v, f"{path}.{k}")
            if found:
                return found
        return None
    if isinstance(value, list):
        for i, v in enumerate(value):
            found = _first_non_json(v, f"{path}[{i}]")
            if found:
                return found
        return None
    if value is None or isinstance(value, (str, bool, int)):
        return None
    if isinstance(value, float) and math.isfinite(value):
        return None
    return path, value

"""The offline script format: what `--script` files and the run options' `script` hold.

The CLI and the API check a script's shape before a run starts (`load_script`,
`script_shape_problem`); the scripted provider (`activities/llm/scripted.py`) reads it per turn.

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

import math
from pathlib import Path
from typing import Any

from workflows.contract.data_files import read_data_file
from workflows.contract.output_validation import describe_value

DEFAULTS_KEY = "defaults"
COST_KEY = "cost_per_call_usd"  # reserved: USD charged per scripted call
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
    if isinstance(entry, dict) and is_outputs_wrapper(entry) and not entry["outputs"]:
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
    if isinstance(entry, dict) and is_outputs_wrapper(entry):
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
        if is_tool_turn(turn):
            for c, call in enumerate(turn[TOOL_CALLS_KEY]):
                if not (isinstance(call, dict) and isinstance(call.get("name"), str)
                        and isinstance(call.get("arguments", {}), dict) and set(call) <= {"name", "arguments"}):
                    return (f"'{where}.{TURNS_KEY}[{k}].{TOOL_CALLS_KEY}[{c}]' must be {{name: <tool>, arguments: "
                            f"{{...}}}}, found {describe_value(call)}")
        elif is_reply_text(turn) and not isinstance(turn[REPLY_TEXT_KEY], str):
            return f"'{where}.{TURNS_KEY}[{k}].{REPLY_TEXT_KEY}' must be a string"
    return None


def is_tool_turn(turn: Any) -> bool:
    return isinstance(turn, dict) and set(turn) == {TOOL_CALLS_KEY} and isinstance(turn[TOOL_CALLS_KEY], list)


def is_reply_text(turn: Any) -> bool:
    return isinstance(turn, dict) and set(turn) == {REPLY_TEXT_KEY}


def is_outputs_wrapper(entry: dict[str, Any]) -> bool:
    return set(entry) == {"outputs"} and isinstance(entry["outputs"], list)


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


def script_for_node(script: dict[str, Any] | None, node_id: str) -> dict[str, Any] | None:
    """The part of an offline script one model call needs (its node's entry and the shared keys),
    so a turn's request does not carry every node's outputs into history. None stays None (a real
    model); an empty script stays an empty script (generated outputs)."""
    if script is None:
        return None
    return {k: v for k, v in script.items() if k in (node_id, DEFAULTS_KEY, COST_KEY)}

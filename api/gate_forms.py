"""HTML forms for human gates, generated from the gate's output schema, and their answers.

One widget per field type: bool → a yes/no select, an enum → a select of its values, int and
float → number inputs, string → a text input, string[] → one item per line (checkboxes when it
has an enum), json → a textarea. Nothing is pre-selected, so every answer is a decision someone
made. The values go to the run's validated `answer` update as the CLI sends them (text the gate
converts to the field's type), so the dashboard, the CLI and the REST API accept exactly the
same answers and the gate's reason is shown when it refuses one. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from dsl.ir import SchemaField
from workflows.contract.json_values import JsonValueError, load_json
from workflows.contract.state import Gate

FIELD_PREFIX = "field."
#: A gate without an output schema takes free text under this key (as `iterloop run` asks for it).
FREE_TEXT_FIELD = SchemaField(name="text", type="string")

Widget = Literal["select", "number", "text", "lines", "checkboxes", "json"]


@dataclass
class FormField:
    name: str
    type: str
    widget: Widget
    input_name: str
    options: list[tuple[str, str]] = field(default_factory=list)  # (value, label)
    step: str = ""
    value: str = ""  # what the input shows (after a rejected submission: what was typed)
    selected: list[str] = field(default_factory=list)  # checkboxes that are ticked
    hint: str = ""


def gate_schema_fields(gate: Gate) -> list[SchemaField]:
    return list(gate.schema_.fields) if gate.schema_ is not None and gate.schema_.fields else [FREE_TEXT_FIELD]


def form_fields(gate: Gate, submitted: Mapping[str, Sequence[str]] | None = None) -> list[FormField]:
    """The inputs of a gate's form; ``submitted`` (input name → values) refills them after an error."""
    submitted = submitted or {}
    out = []
    for f in gate_schema_fields(gate):
        name = FIELD_PREFIX + f.name
        values = list(submitted.get(name, []))
        value = values[0] if values else ""
        if f.type == "bool":
            out.append(FormField(f.name, f.type, "select", name, [("true", "yes"), ("false", "no")], value=value,
                                 hint="yes or no"))
        elif f.enum_values and f.type == "string[]":
            out.append(FormField(f.name, f.type, "checkboxes", name, [(v, v) for v in f.enum_values],
                                 selected=values, hint="tick any of them"))
        elif f.enum_values:
            out.append(FormField(f.name, f.type, "select", name, [(v, v) for v in f.enum_values], value=value,
                                 hint="one of " + ", ".join(f.enum_values)))
        elif f.type in ("int", "float"):
            out.append(FormField(f.name, f.type, "number", name, step="1" if f.type == "int" else "any", value=value,
                                 hint="a whole number" if f.type == "int" else "a number"))
        elif f.type == "string[]":
            out.append(FormField(f.name, f.type, "lines", name, value=value, hint="one item per line"))
        elif f.type == "json":
            out.append(FormField(f.name, f.type, "json", name, value=value, hint="a JSON value"))
        else:
            out.append(FormField(f.name, f.type, "text", name, value=value, hint="text"))
    return out


def answers_from_form(gate: Gate, form: Mapping[str, Sequence[str]]) -> tuple[dict[str, Any], list[str]]:
    """The answer to send, and problems the form itself can see (invalid JSON).

    An empty input is left out, so the gate names the missing field; everything else is checked
    by the run's update validator.
    """
    answers: dict[str, Any] = {}
    problems: list[str] = []
    for f in gate_schema_fields(gate):
        values = [v for v in form.get(FIELD_PREFIX + f.name, []) if isinstance(v, str)]
        if f.type == "string[]" and f.enum_values:
            answers[f.name] = values  # no box ticked is an empty list, a valid answer
            continue
        text = values[0] if values else ""
        if f.type == "string[]":
            items = [line.strip() for line in text.splitlines() if line.strip()]
            if items:
                answers[f.name] = items
        elif f.type == "json":
            if text.strip():
                try:  # the shared loader: bounded size and depth, no NaN/Infinity
                    answers[f.name] = load_json(text, what="it", fix='e.g. {"control": 50} or "text"')
                except JsonValueError as exc:
                    problems.append(f"field '{f.name}' must be a JSON value: {exc}")
        elif f.type == "string":
            if text != "" or f.enum_values is None:
                answers[f.name] = text
        elif text.strip():
            answers[f.name] = text.strip()
    return answers, problems

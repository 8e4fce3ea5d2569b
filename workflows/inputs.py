"""What a node sees: its input, and the prompts and commands rendered from the run's data.

Plain functions over plain data (no I/O, no clock, no set iteration order), so unit tests drive
them without a server and replays always build the same input. `with` values holding exactly one
reference keep their type while anything else is interpolated text (Iterion's rule); values kept
in the artifact store travel as tokens (`workflows.contract.artifact_refs`) that the activity
expands when the request lists them as placed here. Shell commands never carry values in their
text: see `render_command`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from dsl import ir
from dsl.expressions import Scope
from dsl.shell_quoting import template_places
from dsl.templates import MISSING, Lookup, TemplateError, evaluate_mapping, extract_refs, render
from workflows.contract.artifact_refs import ARTIFACT_KEY, ARTIFACT_REF_KEY, TOKEN_OPENING, artifact_token
from workflows.contract.env_refs import VALUE_ENV_PREFIX
from workflows.contract.messages import ShellValue


@dataclass
class DataContext:
    """What templates can see: latest outputs, their history, artifacts, vars and run inputs."""

    vars: dict[str, Any] = field(default_factory=dict)
    run_inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    artifacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: `{{loop.NAME.iteration|max|previous_output}}` per loop, and `{{run.id|elapsed_seconds|cost_usd|
    #: tokens}}`: filled by the workflow from its state and workflow.now(), so replays see the same.
    loops: dict[str, dict[str, Any]] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)

    def lookup(self, node_input: dict[str, Any] | None = None) -> Lookup:
        """A resolver for `{{…}}` references; ``node_input`` backs the `input` namespace."""

        def resolve(ref: ir.Ref) -> Any:
            head, rest = ref.path[0], ref.path[1:]
            if ref.kind == "vars":
                value = self.vars.get(head, MISSING)
            elif ref.kind == "input":
                value = (node_input or {}).get(head, MISSING)
            elif ref.kind == "artifacts":
                value = self.artifacts.get(head, MISSING)
            elif ref.kind == "run":
                return self.run.get(head, MISSING)
            elif ref.kind == "loop":
                value = self.loops.get(head, MISSING)
                if value is not MISSING and rest[:1] == ["previous_output"] and value.get("previous_output") is None:
                    return None  # the first round has no previous output: it reads as null, not as the raw text
            else:
                if rest and rest[-1] == "history":
                    return list(self.history.get(head, []))
                value = self.outputs.get(head, MISSING)
            for i, key in enumerate(rest):
                if not isinstance(value, dict):
                    return MISSING
                stub = value.get(ARTIFACT_KEY)
                if isinstance(stub, dict) and key in stub.get("fields", []):
                    return {ARTIFACT_REF_KEY: stub["uri"], "path": list(rest[i:])}
                value = value.get(key, MISSING)
            return value

        return resolve


def expression_scope(ctx: DataContext, node_input: dict[str, Any] | None = None,
                     fields: dict[str, Any] | None = None) -> Scope:
    """What an expression reads: the same data templates see (``fields``: the edge source's
    output, read by bare names in `when "…"` conditions)."""
    return Scope(vars=ctx.vars, input=node_input or {}, outputs=ctx.outputs, loop=ctx.loops, run=ctx.run,
                 fields=fields or {})


def loop_view(wf: ir.Workflow, counters: dict[str, int], grants: dict[str, int],
              previous: dict[str, dict[str, Any]], bounds: dict[str, int] | None = None) -> dict[str, dict[str, Any]]:
    """Each loop as `{{loop.NAME.…}}` reads it: rounds taken so far, its bound (from data once the
    loop was entered, with rounds granted live), and the loop edge source's output when the loop was
    last taken (null before)."""
    bounds = bounds or {}

    def bound(name: str, loop: ir.Loop) -> int | None:  # a data bound is null until the loop is entered
        value = bounds.get(name, None if loop.bound is not None else loop.max_iterations)
        return None if value is None else value + grants.get(name, 0)

    return {name: {"iteration": counters.get(name, 0), "max": bound(name, loop),
                   "previous_output": previous.get(name)}
            for name, loop in wf.loops.items()}


def initial_vars(wf: ir.Workflow, run_inputs: dict[str, Any]) -> dict[str, Any]:
    """Declared defaults, overridden by run inputs of the same name (others do not become vars)."""
    values = {name: var.default for name, var in wf.vars.items() if var.has_default}
    for name in wf.vars:
        if name in run_inputs:
            values[name] = run_inputs[name]
    return values


def missing_required_vars(wf: ir.Workflow, run_inputs: dict[str, Any]) -> list[str]:
    return [name for name, var in wf.vars.items() if not var.has_default and name not in run_inputs]


def build_input(wf: ir.Workflow, node_id: str, ctx: DataContext, *, entry_gets_run_inputs: bool = True,
                placed: list[str] | None = None) -> dict[str, Any]:
    """A node's input: the `with` mappings of incoming edges whose source has produced output.

    Mappings are applied in edge order (later edges overwrite keys). In a mapping, `input.X` reads
    the edge source's output over the run inputs. With no mapping at all, the entry node receives
    the run inputs merged over the var values. ``placed`` collects the artifact tokens written
    into interpolated text (see `as_text`).
    """
    result: dict[str, Any] = {}

    def text_of(value: Any) -> str:
        return as_text(value, placed)

    for e in wf.edges:
        if e.target != node_id or not e.with_ or e.source not in ctx.outputs:
            continue
        edge_input = {**ctx.run_inputs, **ctx.outputs[e.source]}
        lookup = ctx.lookup(edge_input)
        for mapping in e.with_:
            try:
                value = evaluate_mapping(mapping.raw, lookup, as_text=text_of)
            except TemplateError:
                value = mapping.raw
            if value is not None and value is not MISSING:
                result[mapping.key] = value
    if not result and node_id == wf.entry and entry_gets_run_inputs:
        return {**ctx.vars, **ctx.run_inputs}
    return result


def _tokenised(value: Any, placed: list[str] | None) -> Any:
    token = artifact_token(value)
    if token is not None:
        if placed is not None:
            placed.append(token)
        return token
    if isinstance(value, dict):
        return {k: _tokenised(v, placed) for k, v in value.items()}
    if isinstance(value, list):
        return [_tokenised(v, placed) for v in value]
    return value


def as_text(value: Any, placed: list[str] | None = None) -> str:
    """Text of a value inside a prompt: stored values become tokens the activity expands.

    Each token written is appended to ``placed``: the request lists them, and the activity
    expands exactly those, so token-shaped text that a value itself holds stays text.
    """
    value = _tokenised(value, placed)
    return value if isinstance(value, str) else _json(value)


def render_text(text: str, ctx: DataContext, node_input: dict[str, Any], placed: list[str] | None = None) -> str:
    """Render a prompt body; unresolvable references stay as written (visible, not silently empty).

    ``placed`` collects the artifact tokens written for stored values (see `as_text`).
    """
    try:
        return render(text, ctx.lookup(node_input), as_text=lambda value: as_text(value, placed))
    except TemplateError:
        return text


def placed_input_tokens(wf: ir.Workflow, node_id: str, ctx: DataContext, node_input: dict[str, Any]) -> list[str]:
    """The artifact tokens `build_input` wrote into ``node_id``'s input text, for its requests.

    Every token it wrote is in ``node_input``'s text, so an input without token-shaped text (almost
    every input) skips rebuilding it; which of the tokens found were *written* (not merely held by a
    value) only a rebuild can say.
    """
    if not _holds_token_text(node_input):
        return []
    placed: list[str] = []
    build_input(wf, node_id, ctx, placed=placed)
    return placed


def _holds_token_text(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if TOKEN_OPENING in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


@dataclass
class RenderedCommand:
    """A shell command whose templates became parameter expansions, and the values they read."""

    command: str
    values: list[ShellValue] = field(default_factory=list)


#: How a reference is written in each place of a command (`dsl/shell_quoting.py`). The compiler
#: accepts templates only unquoted (C116); the other forms keep the outer shell reading the value
#: as data for workflows compiled before that check, whose runs may still be in flight.
_EXPANSION_IN: dict[str, str] = {
    "unquoted": '"${{{name}}}"',
    "comment": '"${{{name}}}"',
    "double": "${{{name}}}",
    "single": "'\"${{{name}}}\"'",
    "escaped": '""${{{name}}}"',  # the backslash before it escapes the first quote
    "heredoc": "${{{name}}}",
}


def render_command(command: str, ctx: DataContext, node_input: dict[str, Any]) -> RenderedCommand:
    """Render a shell command so that no value is ever part of the command text.

    Each `{{ref}}` becomes `"${ITERLOOP_VALUE_n}"` and its value travels beside the command
    (`ShellValue`); the activity sets the variable and the shell expands it, and a parameter
    expansion is never read again as shell code, whatever it holds (quotes, `$(…)`, backquotes,
    newlines, `${SECRET}`, artifact-token look-alikes). Stored (large) values travel as their
    recorded references, resolved by the activity. A reference with no value stays as written.
    """
    lookup = ctx.lookup(node_input)
    try:
        refs = extract_refs(command)
    except TemplateError:
        return RenderedCommand(command)
    out: list[str] = []
    values: list[ShellValue] = []
    pos = 0
    for ref, place in zip(refs, template_places(command), strict=True):
        out.append(command[pos : place.offset])
        pos = place.offset + place.length
        value = lookup(ref)
        if value is MISSING or value is None:
            out.append(ref.raw)
            continue
        name = f"{VALUE_ENV_PREFIX}{len(values) + 1}"
        values.append(ShellValue(env=name, ref=ref.raw, value=value))
        out.append(_EXPANSION_IN[place.place].format(name=name))
    out.append(command[pos:])
    return RenderedCommand("".join(out), values)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def prompt_body(wf: ir.Workflow, name: str) -> str:
    prompt = wf.prompts.get(name)
    return prompt.body if prompt else ""

"""What a node sees: its input, and the prompts and commands rendered from the run's data.

Plain functions over plain data (no I/O, no clock, no set iteration order), so unit tests drive
them without a server and replays always build the same input. `with` values holding exactly one
reference keep their type while anything else is interpolated text (Iterion's rule); values kept
in the artifact store travel as tokens (`workflows.contract.artifact_refs`) that the activity
expands.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from typing import Any

from dsl import ir
from dsl.templates import MISSING, Lookup, TemplateError, evaluate_mapping, render
from workflows.contract.artifact_refs import ARTIFACT_KEY, ARTIFACT_REF_KEY, artifact_token


@dataclass
class DataContext:
    """What templates can see: latest outputs, their history, artifacts, vars and run inputs."""

    vars: dict[str, Any] = field(default_factory=dict)
    run_inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    artifacts: dict[str, dict[str, Any]] = field(default_factory=dict)

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


def initial_vars(wf: ir.Workflow, run_inputs: dict[str, Any]) -> dict[str, Any]:
    """Declared defaults, overridden by run inputs of the same name (others do not become vars)."""
    values = {name: var.default for name, var in wf.vars.items() if var.has_default}
    for name in wf.vars:
        if name in run_inputs:
            values[name] = run_inputs[name]
    return values


def missing_required_vars(wf: ir.Workflow, run_inputs: dict[str, Any]) -> list[str]:
    return [name for name, var in wf.vars.items() if not var.has_default and name not in run_inputs]


def build_input(wf: ir.Workflow, node_id: str, ctx: DataContext, *, entry_gets_run_inputs: bool = True) -> dict[str, Any]:
    """A node's input: the `with` mappings of incoming edges whose source has produced output.

    Mappings are applied in edge order (later edges overwrite keys). In a mapping, `input.X` reads
    the edge source's output over the run inputs. With no mapping at all, the entry node receives
    the run inputs merged over the var values.
    """
    result: dict[str, Any] = {}
    for e in wf.edges:
        if e.target != node_id or not e.with_ or e.source not in ctx.outputs:
            continue
        edge_input = {**ctx.run_inputs, **ctx.outputs[e.source]}
        lookup = ctx.lookup(edge_input)
        for mapping in e.with_:
            try:
                value = evaluate_mapping(mapping.raw, lookup, as_text=as_text)
            except TemplateError:
                value = mapping.raw
            if value is not None and value is not MISSING:
                result[mapping.key] = value
    if not result and node_id == wf.entry and entry_gets_run_inputs:
        return {**ctx.vars, **ctx.run_inputs}
    return result


def _tokenised(value: Any) -> Any:
    token = artifact_token(value)
    if token is not None:
        return token
    if isinstance(value, dict):
        return {k: _tokenised(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_tokenised(v) for v in value]
    return value


def as_text(value: Any) -> str:
    """Text of a value inside a prompt: stored values become tokens the activity expands."""
    value = _tokenised(value)
    return value if isinstance(value, str) else _json(value)


def render_text(text: str, ctx: DataContext, node_input: dict[str, Any]) -> str:
    """Render a prompt body; unresolvable references stay as written (visible, not silently empty)."""
    try:
        return render(text, ctx.lookup(node_input), as_text=as_text)
    except TemplateError:
        return text


def render_command(command: str, ctx: DataContext, node_input: dict[str, Any]) -> str:
    """Render a shell command: every substituted value is shell-quoted, never spliced raw.

    A stored (large) value is left as a bare token; the shell activity quotes it when it expands it.
    """
    lookup = ctx.lookup(node_input)

    def quoted(ref: ir.Ref) -> Any:
        value = lookup(ref)
        if value is MISSING or value is None:
            return MISSING
        token = artifact_token(value)
        if token is not None:
            return token
        return shlex.quote(as_text(value))

    try:
        return render(command, quoted, as_text=str)
    except TemplateError:
        return command


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def prompt_body(wf: ir.Workflow, name: str) -> str:
    prompt = wf.prompts.get(name)
    return prompt.body if prompt else ""

"""Structured edits of a `.iter` file: the visual editor's ops, applied to the AST, printed by the formatter.

Why edit the AST and not the text: the editor's canvas and inspector change one thing at a time
(a node, an edge, a schema), and the file must come back exactly as the user wrote it everywhere
else — comments, string styles (`|` blocks, backticks), spellings (`delegate:` / `backend:`),
edge paragraphs. `dsl.unparse` already prints an AST that way, so an edit changes the tree and
the formatter prints it (`apply_edits`). With no ops the result is `iterloop fmt`'s output.

How new things are placed: the formatter attaches each comment to the item whose source position
follows it. Everything an op creates gets line 0 — before every comment — so no comment of the
file moves onto a new item; the formatter's fixed layout (declarations grouped by kind, edges
last) decides where it is printed.

How values are read: a property value, an edge or a var default given as JSON is written as a
small snippet of `.iter` text and read by the real parser (`_parse_snippet`), so an op accepts
exactly what the language accepts and a bad value is refused with the parser's own message.

The language has no empty blocks (`agent a:` alone does not parse), so `_keep_parsable` gives a
node left without properties a neutral one (`PLACEHOLDER_PROPERTIES`) and an empty workflow an
`entry:`: every edit yields a file that parses; the validator says what is still missing.

Pure: no I/O, nothing of the rest of iterloop.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from . import ast as A
from .diagnostics import Diagnostic
from .parser import RESERVED_NAMES, parse
from .unparse import _comments_as_written, _name_or_string, _one_line, _plain_float, _string_form, format_file

__all__ = [
    "NODE_KINDS",
    "OPS",
    "PLACEHOLDER_PROPERTIES",
    "PROPERTY_ATTRS",
    "EditError",
    "SourceHasErrors",
    "apply_edits",
    "edge_when_text",
    "format_with_edits",
    "node_kind",
    "parse_errors",
]

#: Node kinds an `add_node` may create, as the language spells their keywords.
NODE_KINDS = ("agent", "judge", "router", "join", "human", "tool", "wait", "compute", "subbot")

#: The property a node gets when it would otherwise have none: the kind's default (same meaning as
#: leaving it out) or an empty value the validator reports as missing. Kinds without a neutral
#: one-line property get the smallest valid content.
PLACEHOLDER_PROPERTIES: dict[str, tuple[str, Any]] = {
    "agent": ("session", "fresh"),
    "judge": ("session", "fresh"),
    "router": ("mode", "fan_out_all"),
    "join": ("strategy", "wait_all"),
    "human": ("interaction", "none"),
    "tool": ("command", ""),
    "wait": ("duration", ""),
    "compute": ("expr", {"result": "null"}),
    "subbot": ("bot", ""),
}

_NAME = re.compile(r"[^\W\d]\w*\Z")
_BARE = re.compile(r"[^\W\d][\w.*]*\Z")
#: Spellings of one property (the formatter prints the one written last); setting one drops the others.
_SPELLINGS: dict[str, dict[str, tuple[str, ...]]] = {
    "agent": {"backend": ("backend", "delegate"), "delegate": ("backend", "delegate")},
    "router": {"backend": ("backend", "delegate"), "delegate": ("backend", "delegate")},
    "human": {"interaction": ("interaction", "mode"), "mode": ("interaction", "mode")},
    "join": {"strategy": ("strategy", "await"), "await": ("strategy", "await")},
}
#: Property name → attribute of the AST class where they differ.
PROPERTY_ATTRS: dict[str, dict[str, str]] = {
    "agent": {"delegate": "backend", "await": "await_mode"},
    "router": {"delegate": "backend"},
    "join": {"await": "strategy"},
    "human": {"mode": "interaction", "await": "await_mode"},
    "tool": {"await": "await_mode"},
    "wait": {"await": "await_mode"},
    "compute": {"await": "await_mode", "expr": "exprs"},
    "subbot": {"await": "await_mode"},
}
#: Properties that are blocks: printed when the attribute is set, not through ``props``.
_BLOCK_ATTRS = {"mcp", "budget"}

_CLASSES: dict[type, str] = {A.RouterDecl: "router", A.JoinDecl: "join", A.HumanDecl: "human",
                             A.ToolDecl: "tool", A.WaitDecl: "wait", A.ComputeDecl: "compute",
                             A.SubbotDecl: "subbot"}
_NEW_DECL: dict[str, Callable[[str, A.Pos], A.NodeDecl]] = {
    "agent": lambda name, pos: A.AgentDecl("agent", name, pos),
    "judge": lambda name, pos: A.AgentDecl("judge", name, pos),
    "router": A.RouterDecl, "join": A.JoinDecl, "human": A.HumanDecl, "tool": A.ToolDecl,
    "wait": A.WaitDecl, "compute": A.ComputeDecl, "subbot": A.SubbotDecl,
}


class EditError(ValueError):
    """An op cannot apply. ``index`` is its place in the list, ``op`` its name; the message says both."""

    def __init__(self, index: int, op: str, problem: str) -> None:
        super().__init__(f"op {index} ({op}): {problem}")
        self.index = index
        self.op = op
        self.problem = problem


class SourceHasErrors(ValueError):
    """The source does not parse: editing it would drop what the parser skipped."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        super().__init__("fix the source first: it has parse errors\n" + "\n".join(d.render() for d in diagnostics))
        self.diagnostics = diagnostics


class _OpProblem(ValueError):
    """Raised inside an op; `apply_edits` adds which op it was."""


# -- entry points -------------------------------------------------------------------------------


def parse_errors(source: str) -> list[Diagnostic]:
    """The parser's errors (E…) of ``source``: what makes formatting or editing it unsafe."""
    _, diags = parse(source)
    return [d for d in diags if d.is_error and d.code.startswith("E")]


def apply_edits(source: str, ops: list[Mapping[str, Any]]) -> str:
    """The source after ``ops``, formatted (`dsl.unparse`). No ops: exactly `iterloop fmt`'s output.

    Raises `SourceHasErrors` when ``source`` does not parse and `EditError` for the first op that
    cannot apply (nothing is applied then: the caller keeps its text)."""
    errors = parse_errors(source)
    if errors:
        raise SourceHasErrors(errors)
    tree, _ = parse(source)
    for index, op in enumerate(ops):
        name = str(op.get("op", "")) if isinstance(op, Mapping) else ""
        handler = OPS.get(name)
        if handler is None:
            raise EditError(index, name or "?", f"unknown op {name!r}; expected one of {', '.join(OPS)}")
        try:
            handler(tree, op)
        except _OpProblem as exc:
            raise EditError(index, name, str(exc)) from None
        except (KeyError, TypeError) as exc:
            raise EditError(index, name, f"malformed op {dict(op)!r}: {exc}") from None
    if ops:
        _keep_parsable(tree)
    result = _format(tree, source)
    problems = parse_errors(result)
    if problems:  # a value the formatter cannot print back the same way: never hand out a broken file
        raise EditError(len(ops) - 1, str(ops[-1].get("op", "?")) if ops else "?",
                        "the edit gives a file that does not parse: " + "; ".join(d.render() for d in problems))
    return result


def format_with_edits(source: str) -> str:
    """`iterloop fmt` of ``source`` (`SourceHasErrors` when it does not parse)."""
    return apply_edits(source, [])


def _format(tree: A.File, source: str) -> str:
    blank_lines = frozenset(n for n, line in enumerate(source.split("\n"), start=1) if not line.strip())
    return format_file(A.File(tree.declarations, _comments_as_written(tree.comments, source), tree.string_styles),
                       blank_lines=blank_lines)


# -- helpers ------------------------------------------------------------------------------------


def _new_pos(column: int = 1) -> A.Pos:
    """Where new items are: line 0, before every comment (see the module docstring)."""
    return A.Pos(0, column)


def _relocate(value: Any) -> Any:
    """Move everything a snippet parsed to line 0, recursively (positions of a snippet mean nothing)."""
    if isinstance(value, A.Pos):
        value.line = 0
    elif isinstance(value, list):
        for item in value:
            _relocate(item)
    elif isinstance(value, dict):
        for item in value.values():
            _relocate(item)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            _relocate(getattr(value, f.name))
    return value


def _parse_snippet(text: str, what: str) -> A.File:
    tree, diags = parse(text)
    errors = [d for d in diags if d.is_error]
    if errors:
        raise _OpProblem(f"{what} is not valid: " + "; ".join(d.message for d in errors))
    return tree


def _check_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise _OpProblem(f"{what} must be a name (a letter or '_', then letters, digits, '_'), got {name!r}")
    return name


def _workflow(tree: A.File) -> A.WorkflowDecl:
    workflows = tree.workflows
    if not workflows:
        raise _OpProblem("the file has no workflow; send {'op': 'ensure_workflow', 'name': …} first")
    return workflows[0]


def _node(tree: A.File, name: Any) -> A.NodeDecl:
    for decl in tree.nodes:
        if decl.name == name:
            return decl
    known = ", ".join(d.name for d in tree.nodes) or "(none)"
    raise _OpProblem(f"no node named {name!r}; nodes: {known}")


def node_kind(decl: A.NodeDecl) -> str:
    return decl.kind if isinstance(decl, A.AgentDecl) else _CLASSES[type(decl)]


def _value_text(value: Any, key: str) -> tuple[str, list[str]]:
    """A JSON value as the language writes it: its text on the property line and the lines under it."""
    if value is True or value is False:
        return ("true" if value else "false"), []
    if isinstance(value, int):
        return str(value), []
    if isinstance(value, float):
        return _plain_float(value), []  # the lexer reads no exponents
    if isinstance(value, str):
        return _string_form(value, None, block_ok=True)
    if isinstance(value, list):
        items = [v if isinstance(v, str) and _BARE.match(v) else _one_line(str(v)) for v in value]
        return "[" + ", ".join(items) + "]", []
    if isinstance(value, dict):
        lines: list[str] = []
        for k, v in value.items():
            text, body = _value_text(v, str(k))
            lines.append(f"  {k}: {text}")
            lines.extend("    " + b if b else "" for b in body)
        return "", lines
    raise _OpProblem(f"property {key!r}: cannot write a {type(value).__name__} value")


def _property_lines(key: str, value: Any) -> list[str]:
    text, body = _value_text(value, key)
    return [f"  {key}: {text}".rstrip(), *("    " + b if b else "" for b in body)]


# -- nodes --------------------------------------------------------------------------------------


def _set_property(decl: A.NodeDecl, key: str, value: Any) -> None:
    kind = node_kind(decl)
    group = _SPELLINGS.get("agent" if kind == "judge" else kind, {}).get(key, (key,))
    attrs = PROPERTY_ATTRS.get("agent" if kind == "judge" else kind, {})
    attr = attrs.get(key, key)
    if value is None:
        for spelling in group:
            decl.props.pop(spelling, None)
        if attr in _BLOCK_ATTRS and hasattr(decl, attr):
            setattr(decl, attr, None)
        return
    snippet = None
    if isinstance(value, str) and _BARE.match(value):
        # names (schemas, prompts, modes) are written bare; try that first, then as a string
        tree, diags = parse(f"{kind} {decl.name}:\n  {key}: {value}\n")
        if not any(d.is_error for d in diags):
            snippet = tree
    if snippet is None:
        snippet = _parse_snippet(f"{kind} {decl.name}:\n" + "\n".join(_property_lines(key, value)) + "\n",
                                 f"property {key!r} = {json.dumps(value)} of {kind} {decl.name!r}")
    parsed = snippet.nodes[0]
    if key not in parsed.props:
        raise _OpProblem(f"{key!r} is not a property iterloop runs on a {kind} node")
    _relocate(parsed)
    setattr(decl, attr, getattr(parsed, attr))
    old = next((decl.props[s] for s in group if s in decl.props), None)
    for spelling in group:
        decl.props.pop(spelling, None)
    decl.props[key] = old if old is not None else _new_pos(len(key) + 5)


def add_node(tree: A.File, op: Mapping[str, Any]) -> None:
    kind = op["kind"]
    if kind in RESERVED_NAMES:
        raise _OpProblem(f"'{kind}' is a built-in terminal node: every workflow has it, edges may name it")
    if kind not in NODE_KINDS:
        raise _OpProblem(f"unknown node kind {kind!r}; expected one of {', '.join(NODE_KINDS)}")
    name = _check_name(op["name"], "the node's name")
    if name in RESERVED_NAMES:
        raise _OpProblem(f"'{name}' is the name of a built-in terminal node; choose another name")
    if any(d.name == name for d in tree.nodes):
        raise _OpProblem(f"a node named {name!r} exists already; choose another name")
    decl = _NEW_DECL[kind](name, _new_pos())
    for key, value in (op.get("props") or {}).items():
        if value is not None:
            _set_property(decl, key, value)
    tree.declarations.append(decl)


def remove_node(tree: A.File, op: Mapping[str, Any]) -> None:
    decl = _node(tree, op["name"])
    tree.declarations.remove(decl)
    for wf in tree.workflows:
        wf.edges = [e for e in wf.edges if decl.name not in (e.source, e.target)]
        if wf.entry == decl.name:
            wf.entry = ""
            wf.props.pop("entry", None)
    for other in tree.nodes:
        if isinstance(other, A.JoinDecl):
            other.require = [r for r in other.require if r != decl.name]


def rename_node(tree: A.File, op: Mapping[str, Any]) -> None:
    decl = _node(tree, op["name"])
    new = _check_name(op["new_name"], "new_name")
    if new in RESERVED_NAMES:
        raise _OpProblem(f"'{new}' is the name of a built-in terminal node; choose another name")
    if new != decl.name and any(d.name == new for d in tree.nodes):
        raise _OpProblem(f"a node named {new!r} exists already; choose another name")
    old = decl.name
    decl.name = new
    for wf in tree.workflows:
        for e in wf.edges:
            e.source = new if e.source == old else e.source
            e.target = new if e.target == old else e.target
        if wf.entry == old:
            wf.entry = new
    for other in tree.nodes:
        if isinstance(other, A.JoinDecl):
            other.require = [new if r == old else r for r in other.require]


def set_node_property(tree: A.File, op: Mapping[str, Any]) -> None:
    key = op["key"]
    if not isinstance(key, str) or not _NAME.match(key):
        raise _OpProblem(f"key must be a property name, got {key!r}")
    decl = _node(tree, op["name"])
    placeholder = _placeholder_only(decl)
    _set_property(decl, key, op["value"])
    if placeholder is not None and op["value"] is not None and key != placeholder:
        _set_property(decl, placeholder, None)  # it only stood in for the properties now written


def _placeholder_only(decl: A.NodeDecl) -> str | None:
    """The placeholder's key when it is the node's only property, with its placeholder value (the
    kind's default or an empty value): the first real property replaces it, so files built in the
    editor hold no line nobody wrote (`_keep_parsable` puts it back if the node empties again)."""
    kind = node_kind(decl)
    key, value = PLACEHOLDER_PROPERTIES[kind]
    if set(decl.props) != {key}:
        return None
    scratch = _parse_snippet(f"{kind} {decl.name}:\n" + "\n".join(_property_lines(key, value)) + "\n",
                             f"the placeholder of {kind} {decl.name!r}").nodes[0]
    attr = PROPERTY_ATTRS.get("agent" if kind == "judge" else kind, {}).get(key, key)
    return key if _same_value(getattr(scratch, attr), getattr(decl, attr)) else None


def _same_value(a: Any, b: Any) -> bool:
    """Equal as values: AST positions (where a thing was written) do not count."""
    if dataclasses.is_dataclass(a) and type(a) is type(b):
        return all(_same_value(getattr(a, f.name), getattr(b, f.name))
                   for f in dataclasses.fields(a) if f.name not in ("pos", "span"))
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_value(a[k], b[k]) for k in a)
    return bool(a == b)


# -- the workflow -------------------------------------------------------------------------------


def ensure_workflow(tree: A.File, op: Mapping[str, Any]) -> None:
    name = _check_name(op["name"], "the workflow's name")
    if not tree.workflows:
        tree.declarations.append(A.WorkflowDecl(name, _new_pos()))


def set_workflow(tree: A.File, op: Mapping[str, Any]) -> None:
    wf = _workflow(tree)
    if "name" in op:
        wf.name = _check_name(op["name"], "the workflow's name")
    if "entry" in op:
        entry = op["entry"]
        if entry is None or entry == "":  # an emptied entry field removes the line
            wf.entry = ""
            wf.props.pop("entry", None)
        else:
            wf.entry = _check_name(entry, "entry")
            wf.props.setdefault("entry", _new_pos(3))
    if "budget" in op:
        budget = op["budget"]
        if budget is None or budget == {}:
            wf.budget = None
            wf.props.pop("budget", None)
            return
        if not isinstance(budget, dict):
            raise _OpProblem(f"budget must be an object such as {{\"max_cost_usd\": 5}} or null, got {budget!r}")
        lines = [f"workflow {wf.name}:", "  budget:"]
        for key, value in budget.items():
            text, _ = _value_text(value, key)
            lines.append(f"    {key}: {text}")
        parsed = _parse_snippet("\n".join(lines) + "\n", "budget").workflows[0].budget
        assert parsed is not None
        _relocate(parsed)
        if wf.budget is not None:
            parsed.pos = wf.budget.pos
        wf.budget = parsed
        wf.props.setdefault("budget", parsed.pos)


# -- edges --------------------------------------------------------------------------------------


def edge_when_text(edge: A.Edge) -> str | None:
    """An edge's `when` as written: `approved`, `not approved`, `"expr"` (quoted), `else`; None without one."""
    w = edge.when
    if w is None:
        return None
    if w.is_else:
        return "else"
    if w.expression is not None:
        return _one_line(w.expression)
    if w.field:
        return ("not " if w.negated else "") + w.field
    return None


def _edge_spec(edge: A.Edge) -> dict[str, Any]:
    loop = None
    if edge.loop is not None:
        loop = {"name": edge.loop.name,
                "max": edge.loop.bound_source if edge.loop.bound_source is not None else edge.loop.max_iterations}
    return {"from": edge.source, "to": edge.target, "when": edge_when_text(edge), "loop": loop,
            "with": {w.key: w.value for w in edge.with_} if edge.with_ is not None else None}


def _edge_from_spec(tree: A.File, spec: Mapping[str, Any]) -> A.Edge:
    known = {d.name for d in tree.nodes} | set(RESERVED_NAMES)
    for end in ("from", "to"):
        name = _check_name(spec.get(end), f"'{end}'")
        if name not in known:
            raise _OpProblem(f"'{end}': no node named {name!r}; nodes: {', '.join(sorted(known))}")
    text = f"{spec['from']} -> {spec['to']}"
    when = spec.get("when")
    if when is not None:
        if not isinstance(when, str) or not when.strip():
            raise _OpProblem(f"'when' must be text such as 'approved', 'not approved', '\"expr\"' or 'else', got {when!r}")
        text += f" when {when.strip()}"
    loop = spec.get("loop")
    if loop is not None:
        if not isinstance(loop, dict) or "name" not in loop:
            raise _OpProblem(f"'loop' must be {{\"name\": …, \"max\": …}} or null, got {loop!r}")
        bound = loop.get("max")
        if isinstance(bound, bool) or not isinstance(bound, int | str):
            raise _OpProblem(f"loop 'max' must be a number of iterations or a bound from data, got {bound!r}")
        shown = str(bound) if isinstance(bound, int) else _one_line(bound)
        text += f" as {_check_name(loop['name'], 'the loop name')}({shown})"
    with_ = spec.get("with")
    if with_ is not None:
        if not isinstance(with_, dict) or not all(isinstance(v, str) for v in with_.values()):
            raise _OpProblem(f"'with' must map names to template strings, got {with_!r}")
        text += " with {" + ", ".join(f"{_name_or_string(str(k))}: {_one_line(v)}" for k, v in with_.items()) + "}"
    wf = _parse_snippet(f"workflow snippet:\n  {text}\n", f"the edge '{text}'").workflows[0]
    if len(wf.edges) != 1:
        raise _OpProblem(f"the edge '{text}' is not valid")
    return _relocate(wf.edges[0])


def _edge_index(wf: A.WorkflowDecl, op: Mapping[str, Any]) -> int:
    index = op["index"]
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(wf.edges):
        raise _OpProblem(f"no edge with index {index!r}; the workflow has {len(wf.edges)} edge(s) (0-based)")
    return index


def add_edge(tree: A.File, op: Mapping[str, Any]) -> None:
    wf = _workflow(tree)
    wf.edges.append(_edge_from_spec(tree, op))


def update_edge(tree: A.File, op: Mapping[str, Any]) -> None:
    wf = _workflow(tree)
    index = _edge_index(wf, op)
    old = wf.edges[index]
    spec = _edge_spec(old)
    spec.update({k: op[k] for k in ("from", "to", "when", "loop", "with") if k in op})
    new = _edge_from_spec(tree, spec)
    # keep where the edge was, so its comments and string styles stay with it
    new.pos, new.target_pos = old.pos, old.target_pos
    if new.when is not None and old.when is not None:
        new.when.pos = old.when.pos
    if new.loop is not None and old.loop is not None:
        new.loop.pos = old.loop.pos
    old_with = {w.key: w for w in old.with_ or []}
    for w in new.with_ or []:
        if w.key in old_with:
            w.pos, w.value_pos = old_with[w.key].pos, old_with[w.key].value_pos
    wf.edges[index] = new


def remove_edge(tree: A.File, op: Mapping[str, Any]) -> None:
    wf = _workflow(tree)
    del wf.edges[_edge_index(wf, op)]


# -- schemas, prompts, vars ---------------------------------------------------------------------


def set_schema(tree: A.File, op: Mapping[str, Any]) -> None:
    name = _check_name(op["name"], "the schema's name")
    fields = op["fields"]
    if not isinstance(fields, list) or not fields:
        raise _OpProblem("a schema needs at least one field: [{'name': …, 'type': …}]")
    lines = [f"schema {name}:"]
    for f in fields:
        if not isinstance(f, dict):
            raise _OpProblem(f"each field is {{'name', 'type', 'enum'?}}, got {f!r}")
        line = f"  {_check_name(f.get('name'), 'a field name')}: {f.get('type')}"
        enum = f.get("enum")
        if enum:
            line += " [enum: " + ", ".join(_one_line(str(v)) for v in enum) + "]"
        lines.append(line)
    parsed: A.SchemaDecl = _relocate(_parse_snippet("\n".join(lines) + "\n", f"schema {name!r}").declarations[0])
    existing = next((d for d in tree.of_type(A.SchemaDecl) if d.name == name), None)
    if existing is None:
        tree.declarations.append(parsed)
        return
    before = {f.name: f for f in existing.fields}
    for f in parsed.fields:  # a field kept keeps its place and its constraints (the protocol has none)
        old = before.get(f.name)
        if old is not None:
            f.pos, f.enum_pos = old.pos, old.enum_pos
            if old.type == f.type:
                f.constraints, f.constraint_pos = old.constraints, old.constraint_pos
    existing.fields = parsed.fields


def remove_schema(tree: A.File, op: Mapping[str, Any]) -> None:
    _remove_named(tree, A.SchemaDecl, op["name"], "schema")


def set_prompt(tree: A.File, op: Mapping[str, Any]) -> None:
    name = _check_name(op["name"], "the prompt's name")
    text = op["text"]
    if not isinstance(text, str) or not text.strip():
        raise _OpProblem("a prompt needs text")
    body = "\n".join(line.rstrip() for line in text.strip("\n").split("\n"))
    existing = next((d for d in tree.of_type(A.PromptDecl) if d.name == name), None)
    if existing is None:
        tree.declarations.append(A.PromptDecl(name, body, _new_pos()))
    else:
        existing.body = body


def remove_prompt(tree: A.File, op: Mapping[str, Any]) -> None:
    _remove_named(tree, A.PromptDecl, op["name"], "prompt")


def _remove_named(tree: A.File, cls: type, name: Any, what: str) -> None:
    found = [d for d in tree.of_type(cls) if d.name == name]
    if not found:
        known = ", ".join(d.name for d in tree.of_type(cls)) or "(none)"
        raise _OpProblem(f"no {what} named {name!r}; {what}s: {known}")
    for d in found:
        tree.declarations.remove(d)


def _vars_blocks(tree: A.File) -> list[A.VarsBlock]:
    return [*tree.of_type(A.VarsBlock), *(wf.vars for wf in tree.workflows if wf.vars is not None)]


def set_var(tree: A.File, op: Mapping[str, Any]) -> None:
    name = _check_name(op["name"], "the var's name")
    line = f"  {name}: {op['type']}"
    if op.get("default") is not None:
        default = op["default"]
        if isinstance(default, str):
            line += f" = {_one_line(default)}"
        else:
            line += f" = {json.dumps(default)}"
    parsed: A.VarField = _relocate(_parse_snippet(f"vars:\n{line}\n", f"var {name!r}").declarations[0].fields[0])
    for block in _vars_blocks(tree):
        for i, f in enumerate(block.fields):
            if f.name == name:
                parsed.pos = f.pos
                block.fields[i] = parsed
                return
    blocks = _vars_blocks(tree)
    if blocks:
        blocks[0].fields.append(parsed)
        return
    wf = _workflow(tree)
    wf.vars = A.VarsBlock([parsed], _new_pos(3))
    wf.props["vars"] = wf.vars.pos


def remove_var(tree: A.File, op: Mapping[str, Any]) -> None:
    name = op["name"]
    for block in _vars_blocks(tree):
        if any(f.name == name for f in block.fields):
            block.fields = [f for f in block.fields if f.name != name]
            return
    known = ", ".join(f.name for b in _vars_blocks(tree) for f in b.fields) or "(none)"
    raise _OpProblem(f"no var named {name!r}; vars: {known}")


# -- keeping the file parsable ------------------------------------------------------------------


def _keep_parsable(tree: A.File) -> None:
    """The language has no empty blocks: fill or drop the ones the ops left empty."""
    for decl in tree.nodes:
        has_blocks = getattr(decl, "mcp", None) is not None or getattr(decl, "budget", None) is not None
        if not decl.props and not has_blocks and not getattr(decl, "ignored", None):
            key, value = PLACEHOLDER_PROPERTIES[node_kind(decl)]
            _set_property(decl, key, value)
    for block in tree.of_type(A.VarsBlock):
        if not block.fields:
            tree.declarations.remove(block)
    for wf in tree.workflows:
        if wf.vars is not None and not wf.vars.fields:
            wf.vars = None
            wf.props.pop("vars", None)
        empty = (not wf.edges and not wf.props and wf.vars is None and wf.budget is None and wf.mcp is None
                 and not wf.ignored)
        if empty:
            nodes = tree.nodes
            wf.entry = nodes[0].name if nodes else "done"
            wf.props["entry"] = _new_pos(3)


OPS: dict[str, Callable[[A.File, Mapping[str, Any]], None]] = {
    "ensure_workflow": ensure_workflow,
    "set_workflow": set_workflow,
    "add_node": add_node,
    "remove_node": remove_node,
    "rename_node": rename_node,
    "set_node_property": set_node_property,
    "add_edge": add_edge,
    "update_edge": update_edge,
    "remove_edge": remove_edge,
    "set_schema": set_schema,
    "remove_schema": remove_schema,
    "set_prompt": set_prompt,
    "remove_prompt": remove_prompt,
    "set_var": set_var,
    "remove_var": remove_var,
}

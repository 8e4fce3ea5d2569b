"""The canonical formatter: AST → `.iter` text.

Why it exists: `iterloop fmt` must be safe to run on any valid file, so the contract is stronger
than Iterion's `Unparse` (see the reference, §8.3, for what Iterion loses). For every file that
parses without errors:

* ``parse(format(x))`` compiles to the *identical* IR (same ``content_hash``): only the properties
  that were written are printed (``session`` omitted stays omitted), the user's spelling is kept
  (``delegate:`` / ``backend:``, human ``mode:`` / ``interaction:``, join ``await:`` /
  ``strategy:``), strings are printed back raw (the lexer never unescapes, so re-escaping would
  double backslashes on every run), numbers are printed so they re-lex as the same kind;
* formatting is idempotent: ``format(format(x)) == format(x)``;
* no comment is lost: each one is re-attached to the item it was written next to.

The layout follows Iterion's (§8.1/§8.2): 2-space indentation, declarations grouped by kind in a
fixed order, one empty line between top-level blocks, workflow settings then entry then budget
then edges (in the groups the author separated with empty lines), multi-line ``with`` blocks.

How: the AST is first turned into a small tree of output lines (``_Node``), each remembering the
source position of the item it prints. Comments are then attached to those nodes by position,
and the tree is rendered. Keeping layout and comment placement separate is what makes both easy
to reason about (and idempotent: in canonical output every comment sits exactly where the
attachment rules would put it again).
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from . import ast as A
from .lexer import NOT_NAMES
from .parser import HUMAN_MODES, parse

__all__ = ["format_file", "format_source"]

INDENT = "  "

#: Declaration groups in output order (Iterion's order, with iterloop's joins and waits slotted in).
_GROUPS: tuple[Callable[[A.Declaration], bool], ...] = (
    lambda d: isinstance(d, A.VarsBlock),
    lambda d: isinstance(d, A.PresetsBlock),
    lambda d: isinstance(d, A.IgnoredBlock),
    lambda d: isinstance(d, A.MCPServerDecl),
    lambda d: isinstance(d, A.PromptDecl),
    lambda d: isinstance(d, A.SchemaDecl),
    lambda d: isinstance(d, A.AgentDecl) and d.kind == "agent",
    lambda d: isinstance(d, A.AgentDecl) and d.kind == "judge",
    lambda d: isinstance(d, A.RouterDecl),
    lambda d: isinstance(d, A.JoinDecl),
    lambda d: isinstance(d, A.HumanDecl),
    lambda d: isinstance(d, A.ToolDecl),
    lambda d: isinstance(d, A.WaitDecl),
    lambda d: isinstance(d, A.ComputeDecl),
    lambda d: isinstance(d, A.SubbotDecl),
    lambda d: isinstance(d, A.WorkflowDecl),
)

# The lexer's identifier rule: what may be printed without quotes where a string is also accepted.
_IDENT_RE = re.compile(r"[^\W\d]\w*")
_TOOL_REF_RE = re.compile(r"\*|[^\W\d]\w*(?:\.[^\W\d]\w*)*(?:\.\*)?")
_HUMAN_MODE_OF = {interaction: mode for mode, interaction in HUMAN_MODES.items()}


# -- values -------------------------------------------------------------------------------------


def _quoted(raw: str) -> str:
    """A string exactly as it was between the quotes: the lexer keeps escapes raw, so do we."""
    return f'"{raw}"'


_DOUBLE_QUOTABLE = re.compile(r'(?:\\.|[^"\\\n])*')


@dataclass(frozen=True, slots=True)
class _Str:
    """A string property value, printed in the style it was written in when that style can hold it."""

    value: str


def _block_fits(value: str) -> bool:
    """Whether a `|` block gives ``value`` back: one final newline, a first line that sets the
    indentation (not blank, not indented), and no line of only spaces (the lexer reads it as blank)."""
    if value == "":
        return True
    if not value.endswith("\n") or value.endswith("\n\n"):
        return False
    lines = value[:-1].split("\n")
    return bool(lines[0].strip()) and not lines[0][0].isspace() and all(line.strip() or not line for line in lines)


def _string_form(value: str, style: str | None, *, block_ok: bool) -> tuple[str, list[str]]:
    """How to print a string: its text on the line, and the lines of a `|` block under it.

    The style it was written in is kept when it can hold the value; otherwise the first of
    double quotes (the lexer keeps escapes raw, so a value without a bare `"` or a newline reads
    back the same), a backtick raw string (anything without a backtick), a `|` block."""
    def block() -> tuple[str, list[str]]:
        return "|", value[:-1].split("\n") if value else []

    if style == "|" and block_ok and _block_fits(value):
        return block()
    if style == "`" and "`" not in value:
        return f"`{value}`", []
    if _DOUBLE_QUOTABLE.fullmatch(value):
        return _quoted(value), []
    if "`" not in value:
        return f"`{value}`", []
    if block_ok and _block_fits(value):
        return block()
    raise ValueError(f"cannot format the string {value[:40]!r}…: it holds a backtick and a double quote or a line "
                     "break, which no string form of the language can hold here")


def _one_line(value: str) -> str:
    """A string on one line with no recorded style: double quotes when they hold it, else a raw string."""
    return _string_form(value, None, block_ok=False)[0]


def _name_or_string(value: str) -> str:
    """List items / with-keys that accept a name or a string: bare when the parser reads it back."""
    if _IDENT_RE.fullmatch(value) and value not in NOT_NAMES:
        return value
    return _one_line(value)


def _tool_ref(value: str) -> str:
    """Tool references (`name`, `ns.name`, `ns.*`, `*`) bare; anything else quoted."""
    return value if _TOOL_REF_RE.fullmatch(value) else _one_line(value)


def _list(items: Iterable[str], item: Callable[[str], str]) -> str:
    return "[" + ", ".join(item(v) for v in items) + "]"


def _plain_float(value: float) -> str:
    """Shortest round-tripping digits, never in exponent form (the lexer has no exponents), and
    always with a '.' so the number re-lexes as a float, not an int."""
    text = repr(float(value))
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    if "." not in text:
        text += ".0"
    return text


def _number(value: float) -> str:
    """Budget numbers: the compiler converts ints to float, so `15` is the canonical `15.0`."""
    value = float(value)
    if value.is_integer():
        return str(int(value))
    return _plain_float(value)


def _json(value: Any) -> str:
    """Compact one-line JSON that the parser's inline-JSON reader gives back as the same value.

    ``json.dumps`` alone is not enough: it writes floats such as ``1e+20`` that the lexer cannot
    read, and integral floats as ``1.0`` only by luck of ``repr``.
    """
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _plain_float(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_json(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k), ensure_ascii=False)}: {_json(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot format a {type(value).__name__} as a JSON default")


def _literal(lit: A.Literal_) -> str:
    if lit.kind == "json":
        return _json(lit.value)
    return lit.raw


def _bool(value: bool | None) -> str:
    return "true" if value else "false"


# -- the output tree ----------------------------------------------------------------------------


@dataclass(eq=False)
class _Node:
    """One output line (plus what hangs under it), tied to the source item it prints.

    ``col`` is the item's indentation column in the source: comment placement compares it with a
    comment's column to tell "comment before this item" from "comment at the end of a block".
    """

    text: str
    pos: A.Pos | None
    col: int = 1
    exact: bool = True  # False: ``col`` is an estimate (property lines only record the value's position)
    name_len: int = 0  # property name length, for that estimate
    children: list[_Node] = field(default_factory=list)
    parent: _Node | None = None
    body: list[str] = field(default_factory=list)  # prompt text lines, a `|` block's lines
    verbatim: list[str] = field(default_factory=list)  # an ignored block's lines, indented as written
    block: bool = False  # has an indented block (may hold trailing comments)
    prompt: bool = False
    close: str | None = None  # closing line of a `with {` block
    close_suffix: str = ""
    blank_before: bool = False
    before: list[A.Comment] = field(default_factory=list)
    inline: list[str] = field(default_factory=list)
    trailing: list[A.Comment] = field(default_factory=list)
    after: list[A.Comment] = field(default_factory=list)

    def add(self, child: _Node) -> None:
        child.parent = self
        self.children.append(child)


def _item(text: str, pos: A.Pos) -> _Node:
    """A line whose first token is at ``pos`` (so its column is its indentation)."""
    return _Node(text, pos, col=pos.column)


def _prop(name: str, value: str, pos: A.Pos) -> _Node:
    """A `name: value` line; ``pos`` is where the value starts, so the indentation is estimated."""
    return _Node(f"{name}: {value}", pos, col=pos.column, exact=False, name_len=len(name))


def _settle_columns(block: _Node) -> None:
    """Estimate the indentation of property lines (all lines of a block share one indentation).

    An exactly known sibling wins; otherwise assume the usual `name: value` spacing. An estimate
    that is off only moves a comment between "before the next item" and "end of the block", and
    the canonical output re-reads exactly.
    """
    guesses = [c for c in block.children if not c.exact]
    if not guesses:
        return
    exact = [c.col for c in block.children if c.exact]
    if exact:
        col = exact[0]
    else:
        col = min(c.col - c.name_len - 2 for c in guesses)
    col = max(col, block.col + 1)
    for c in guesses:
        c.col = col


def _chosen(props: dict[str, A.Pos], *spellings: str) -> str | None:
    """Of several spellings of one property, the one written last (its value is the one kept)."""
    written = [s for s in spellings if s in props]
    if not written:
        return None
    return max(written, key=lambda s: (props[s].line, props[s].column))


class _Builder:
    """AST → output tree, one method per declaration kind.

    ``blank_lines`` and ``comment_lines`` (line numbers of the source) let the edges of a workflow
    keep their paragraphs: authors group edges with empty lines, and those groups are kept.
    """

    def __init__(self, blank_lines: frozenset[int] = frozenset(), comment_lines: frozenset[int] = frozenset(),
                 styles: dict[tuple[int, int], str] | None = None) -> None:
        self.blank_lines = blank_lines
        self.comment_lines = comment_lines
        self.styles = styles or {}

    def inline_string(self, value: str, pos: A.Pos | None = None) -> str:
        """A string that must fit on its line (list items, `with` values, one-line settings)."""
        style = self.styles.get((pos.line, pos.column)) if pos is not None else None
        return _string_form(value, style, block_ok=False)[0]

    def string_prop(self, name: str, value: str, pos: A.Pos) -> _Node:
        text, body = _string_form(value, self.styles.get((pos.line, pos.column)), block_ok=True)
        node = _prop(name, text, pos)
        node.body = body
        return node

    def ignored(self, node: _Node, blocks: list[A.IgnoredBlock]) -> None:
        """Ignored upstream blocks (C118), printed back as written, after the known properties."""
        for block in blocks:
            child = _item(block.lines[0], block.pos)
            child.verbatim = block.lines[1:]
            node.add(child)

    def starts_paragraph(self, previous: A.Edge, edge: A.Edge) -> bool:
        """Whether the source has an empty line between ``previous`` and ``edge`` (or the comments
        written before it): the edge then starts a new group. An empty line after those comments is
        kept by the comment layout already (`_comments`)."""
        start = max([previous.pos.line, *(w.pos.line for w in previous.with_ or [])])
        following = [line for line in self.comment_lines if start < line < edge.pos.line]
        end = min(following, default=edge.pos.line)
        return any(start < line < end for line in self.blank_lines)

    def decl(self, d: A.Declaration) -> _Node:
        if isinstance(d, A.VarsBlock):
            return self.vars(d)
        if isinstance(d, A.PresetsBlock):
            return self.presets(d)
        if isinstance(d, A.IgnoredBlock):
            node = _item(d.lines[0], d.pos)
            node.verbatim = d.lines[1:]
            return node
        if isinstance(d, A.MCPServerDecl):
            return self.mcp_server(d)
        if isinstance(d, A.PromptDecl):
            return self.prompt(d)
        if isinstance(d, A.SchemaDecl):
            return self.schema(d)
        if isinstance(d, A.AgentDecl):
            return self.agent(d)
        if isinstance(d, A.RouterDecl):
            return self.router(d)
        if isinstance(d, A.JoinDecl):
            return self.join(d)
        if isinstance(d, A.HumanDecl):
            return self.human(d)
        if isinstance(d, A.ToolDecl):
            return self.tool(d)
        if isinstance(d, A.WaitDecl):
            return self.wait(d)
        if isinstance(d, A.ComputeDecl):
            return self.compute(d)
        if isinstance(d, A.SubbotDecl):
            return self.subbot(d)
        if isinstance(d, A.WorkflowDecl):
            return self.workflow(d)
        raise TypeError(f"not a declaration: {d!r}")

    # -- helpers -------------------------------------------------------------------------------
    def header(self, text: str, pos: A.Pos) -> _Node:
        node = _item(text, pos)
        node.block = True
        return node

    def props(self, node: _Node, props: dict[str, A.Pos],
              table: list[tuple[tuple[str, ...], Callable[[str], str | _Str]]]) -> None:
        """Add one line per written property, in the table's (canonical) order."""
        for spellings, render in table:
            name = _chosen(props, *spellings)
            if name is not None:
                value = render(name)
                if isinstance(value, _Str):
                    node.add(self.string_prop(name, value.value, props[name]))
                else:
                    node.add(_prop(name, value, props[name]))

    # -- declarations --------------------------------------------------------------------------
    def vars(self, block: A.VarsBlock) -> _Node:
        node = self.header("vars:", block.pos)
        for f in block.fields:
            text = f"{f.name}: {f.type}"
            if f.default is not None:
                text += f" = {_literal(f.default)}"
            node.add(_item(text, f.pos))
        return node

    def presets(self, block: A.PresetsBlock) -> _Node:
        node = self.header("presets:", block.pos)
        for preset in block.presets:
            child = self.header(f"{preset.name}:", preset.pos)
            for pv in preset.values:
                if pv.value is None:
                    continue
                if pv.value.kind == "string":
                    style = {"`": "`", "|": "|"}.get(pv.value.raw[:1])
                    text, body = _string_form(pv.value.value, style, block_ok=True)
                    item = _item(f"{pv.key}: {text}", pv.pos)
                    item.body = body
                else:
                    item = _item(f"{pv.key}: {_literal(pv.value)}", pv.pos)
                child.add(item)
            node.add(child)
        return node

    def mcp_server(self, d: A.MCPServerDecl) -> _Node:
        node = self.header(f"mcp_server {d.name}:", d.pos)
        self.props(node, d.props, [
            (("transport",), lambda _: d.transport),
            (("command",), lambda _: _Str(d.command)),
            (("args",), lambda _: _list(d.args, self.inline_string)),
            (("url",), lambda _: _Str(d.url)),
        ])
        _settle_columns(node)
        return node

    def prompt(self, d: A.PromptDecl) -> _Node:
        node = _item(f"prompt {d.name}:", d.pos)
        node.prompt = True
        node.body = d.body.split("\n") if d.body else []
        return node

    def schema(self, d: A.SchemaDecl) -> _Node:
        node = self.header(f"schema {d.name}:", d.pos)
        for f in d.fields:
            text = f"{f.name}: {f.type}"
            if f.enum_values:
                text += " [enum: " + ", ".join(_one_line(v) for v in f.enum_values) + "]"
            for key, value in f.constraints.items():
                shown = (_one_line(value) if isinstance(value, str)
                         else _plain_float(value) if isinstance(value, float) else str(value))
                text += f" [{key}: {shown}]"
            node.add(_item(text, f.pos))
        return node

    def mcp_block(self, block: A.MCPBlock) -> _Node:
        node = self.header("mcp:", block.pos)
        self.props(node, block.props, [
            (("autoload_project",), lambda _: _bool(block.autoload_project)),
            (("inherit",), lambda _: _bool(block.inherit)),
            (("servers",), lambda _: _list(block.servers, _name_or_string)),
            (("disable",), lambda _: _list(block.disable, _name_or_string)),
        ])
        _settle_columns(node)
        return node

    def agent(self, d: A.AgentDecl) -> _Node:
        node = self.header(f"{d.kind} {d.name}:", d.pos)
        if d.mcp is not None:
            node.add(self.mcp_block(d.mcp))
        self.props(node, d.props, [
            (("model",), lambda _: _Str(d.model)),
            (("backend", "delegate"), lambda _: _Str(d.backend)),
            (("input",), lambda _: d.input),
            (("output",), lambda _: d.output),
            (("publish",), lambda _: d.publish),
            (("system",), lambda _: d.system),
            (("user",), lambda _: d.user),
            (("session",), lambda _: d.session),
            (("tools",), lambda _: _list(d.tools, _tool_ref)),
            (("tool_policy",), lambda _: _list(d.tool_policy or [], _tool_ref)),
            (("tool_max_steps",), lambda _: str(d.tool_max_steps)),
            (("tool_approval",), lambda _: _list(d.tool_approval, _tool_ref)),
            (("max_tokens",), lambda _: str(d.max_tokens)),
            (("reasoning_effort",), lambda _: _Str(d.reasoning_effort) if "$" in d.reasoning_effort
             else d.reasoning_effort),
            (("readonly",), lambda _: _bool(d.readonly)),
            (("interaction",), lambda _: d.interaction),
            (("interaction_prompt",), lambda _: d.interaction_prompt),
            (("interaction_model",), lambda _: _Str(d.interaction_model)),
            (("await",), lambda _: d.await_mode),
        ])
        self.ignored(node, d.ignored)
        _settle_columns(node)
        return node

    def router(self, d: A.RouterDecl) -> _Node:
        # Every written property is printed, llm-only ones on other modes too: they are the
        # user's content (and their C023 warnings must survive formatting).
        node = self.header(f"router {d.name}:", d.pos)
        self.props(node, d.props, [
            (("mode",), lambda _: d.mode),
            (("model",), lambda _: _Str(d.model)),
            (("backend", "delegate"), lambda _: _Str(d.backend)),
            (("system",), lambda _: d.system),
            (("user",), lambda _: d.user),
            (("multi",), lambda _: _bool(d.multi)),
            (("over",), lambda _: _Str(d.over)),
            (("parallelism",), lambda _: str(d.parallelism)),
        ])
        self.ignored(node, d.ignored)
        _settle_columns(node)
        return node

    def join(self, d: A.JoinDecl) -> _Node:
        node = self.header(f"join {d.name}:", d.pos)
        self.props(node, d.props, [
            (("strategy", "await"), lambda _: d.strategy),
            (("require",), lambda _: _list(d.require, _name_or_string)),
            (("output",), lambda _: d.output),
        ])
        _settle_columns(node)
        return node

    def human(self, d: A.HumanDecl) -> _Node:
        node = self.header(f"human {d.name}:", d.pos)

        def interaction(spelling: str) -> str:
            return _HUMAN_MODE_OF.get(d.interaction, d.interaction) if spelling == "mode" else d.interaction

        self.props(node, d.props, [
            (("input",), lambda _: d.input),
            (("output",), lambda _: d.output),
            (("publish",), lambda _: d.publish),
            (("interaction", "mode"), interaction),
            (("interaction_prompt",), lambda _: d.interaction_prompt),
            (("interaction_model",), lambda _: _Str(d.interaction_model)),
            (("instructions",), lambda _: d.instructions),
            (("min_answers",), lambda _: str(d.min_answers)),
            (("timeout",), lambda _: _Str(d.timeout)),
            (("model",), lambda _: _Str(d.model)),
            (("system",), lambda _: d.system),
            (("await",), lambda _: d.await_mode),
        ])
        _settle_columns(node)
        return node

    def tool(self, d: A.ToolDecl) -> _Node:
        node = self.header(f"tool {d.name}:", d.pos)
        self.props(node, d.props, [
            (("command",), lambda _: _Str(d.command)),
            (("call",), lambda _: _tool_ref(d.call)),
            (("language",), lambda _: d.language),
            (("script",), lambda _: _Str(d.script)),
            (("input",), lambda _: d.input),
            (("output",), lambda _: d.output),
            (("publish",), lambda _: d.publish),
            (("await",), lambda _: d.await_mode),
        ])
        self.ignored(node, d.ignored)
        _settle_columns(node)
        return node

    def wait(self, d: A.WaitDecl) -> _Node:
        node = self.header(f"wait {d.name}:", d.pos)
        self.props(node, d.props, [
            (("duration",), lambda _: _Str(d.duration)),
            (("event",), lambda _: _Str(d.event)),
            (("timeout",), lambda _: _Str(d.timeout)),
            (("await",), lambda _: d.await_mode),
        ])
        _settle_columns(node)
        return node

    def subbot(self, d: A.SubbotDecl) -> _Node:
        node = self.header(f"subbot {d.name}:", d.pos)
        self.props(node, d.props, [
            (("bot",), lambda _: _Str(d.bot)),
            (("await",), lambda _: d.await_mode),
        ])
        if d.budget is not None:
            node.add(self.budget(d.budget))
        _settle_columns(node)
        return node

    def compute(self, d: A.ComputeDecl) -> _Node:
        node = self.header(f"compute {d.name}:", d.pos)
        self.props(node, d.props, [
            (("input",), lambda _: d.input),
            (("output",), lambda _: d.output),
            (("await",), lambda _: d.await_mode),
        ])
        if "expr" in d.props:
            block = self.header("expr:", d.props["expr"])
            for item in d.exprs:
                block.add(_item(f"{item.key}: {self.inline_string(item.source, item.value_pos)}", item.pos))
            node.add(block)
        _settle_columns(node)
        return node

    # -- workflow ------------------------------------------------------------------------------
    def workflow(self, wf: A.WorkflowDecl) -> _Node:
        node = self.header(f"workflow {wf.name}:", wf.pos)
        p = wf.props
        settings: list[_Node] = []
        if wf.vars is not None:
            settings.append(self.vars(wf.vars))
        if wf.mcp is not None:
            settings.append(self.mcp_block(wf.mcp))
        if "default_backend" in p:
            settings.append(_item(f"default_backend: {_one_line(wf.default_backend)}", p["default_backend"]))
        if "tool_policy" in p:
            settings.append(_item(f"tool_policy: {_list(wf.tool_policy or [], _tool_ref)}", p["tool_policy"]))
        if "interaction" in p:
            settings.append(_item(f"interaction: {wf.interaction or 'none'}", p["interaction"]))
        for block in wf.ignored:
            ignored = _item(block.lines[0], block.pos)
            ignored.verbatim = block.lines[1:]
            settings.append(ignored)
        entry = [_item(f"entry: {wf.entry}", p["entry"])] if "entry" in p else []
        budget = [self.budget(wf.budget)] if wf.budget is not None else []
        edges = [self.edge(e) for e in wf.edges]
        for i in range(1, len(edges)):
            edges[i].blank_before = self.starts_paragraph(wf.edges[i - 1], wf.edges[i])
        for section in (settings, entry, budget, edges):
            if section and node.children:
                section[0].blank_before = True
            for child in section:
                node.add(child)
        return node

    def budget(self, b: A.BudgetBlock) -> _Node:
        node = self.header("budget:", b.pos)
        self.props(node, b.props, [
            (("max_parallel_branches",), lambda _: str(b.max_parallel_branches)),
            (("max_duration",), lambda _: _Str(b.max_duration)),
            (("max_cost_usd",), lambda _: _number(b.max_cost_usd)),
            (("max_tokens",), lambda _: str(b.max_tokens)),
            (("max_iterations",), lambda _: str(b.max_iterations)),
        ])
        _settle_columns(node)
        return node

    def edge(self, e: A.Edge) -> _Node:
        text = f"{e.source} -> {e.target}"
        when = ""
        if e.when is not None and e.when.field:
            when = f" when {'not ' if e.when.negated else ''}{e.when.field}"
        elif e.when is not None and e.when.expression is not None:
            when = f" when {self.inline_string(e.when.expression, e.when.pos)}"
        elif e.when is not None and e.when.is_else:
            when = " when else"
        # `when not` followed by another clause would read as a negated condition on that
        # clause's keyword; a field literally named `not` therefore goes last on the edge.
        when_last = bool(when) and e.when is not None and not e.when.negated and e.when.field == "not"
        if not when_last:
            text += when
        if e.loop is not None and e.loop.bound_source is not None:
            text += f" as {e.loop.name}({_one_line(e.loop.bound_source)})"
        elif e.loop is not None:
            text += f" as {e.loop.name}({e.loop.max_iterations})"
        node = _item(text, e.pos)
        if e.with_ is not None:
            if not e.with_:
                node.text += " with {}"
            else:
                node.text += " with {"
                node.block = True
                node.close = "}"
                comma = "," if len(e.with_) > 1 else ""
                for w in e.with_:
                    value = self.inline_string(w.value, w.value_pos)
                    node.add(_item(f"{_name_or_string(w.key)}: {value}{comma}", w.pos))
        if when_last:
            if node.close is not None:
                node.close_suffix = when
            else:
                node.text += when
        return node


# -- comments -----------------------------------------------------------------------------------


def _walk(node: _Node) -> Iterable[_Node]:
    for child in node.children:
        yield child
        yield from _walk(child)


def _attach_comments(root: _Node, comments: list[A.Comment]) -> None:
    """Give every comment a place in the output tree.

    * inline comments stay at the end of the line of the last item that starts before them;
    * a full-line comment goes right before the next item, at its indentation, unless it is
      indented deeper than that item and the item is outside the block the comment follows:
      then it is a comment at the end of that block (chosen by its indentation);
    * a comment indented under a prompt header (after the body) cannot go inside the body, so it
      follows the prompt at column 1.
    """
    items = sorted((n for n in _walk(root) if n.pos is not None), key=lambda n: (n.pos.line, n.pos.column))  # type: ignore[union-attr]
    keys = [(n.pos.line, n.pos.column) for n in items]  # type: ignore[union-attr]
    lines = [k[0] for k in keys]
    for c in sorted(comments, key=lambda c: (c.pos.line, c.pos.column)):
        if c.inline:
            i = bisect.bisect_right(keys, (c.pos.line, c.pos.column)) - 1
            if i >= 0:
                items[i].inline.append(c.text)
                continue
        j = bisect.bisect_right(lines, c.pos.line)
        nxt = items[j] if j < len(items) else None
        k = bisect.bisect_left(lines, c.pos.line) - 1
        prev = items[k] if k >= 0 else None
        if nxt is not None and (
            prev is None or c.pos.column <= nxt.col or nxt.parent is prev or nxt.parent is prev.parent
        ):
            nxt.before.append(c)
            continue
        if prev is None:
            root.trailing.append(c)
            continue
        chain = [prev]
        while chain[-1].parent is not None and chain[-1].parent is not root:
            chain.append(chain[-1].parent)  # type: ignore[arg-type]
        target = next((n for n in chain if n.col <= c.pos.column), chain[-1])
        if c.pos.column > target.col and target.block:
            target.trailing.append(c)
        elif c.pos.column > target.col and target.prompt:
            target.after.append(c)
        else:
            (target.parent or root).trailing.append(c)


# -- rendering ----------------------------------------------------------------------------------


def _comment(text: str) -> str:
    """`## text`; a text that keeps its own leading spaces (see format_source) is used as is."""
    if not text:
        return "##"
    return "##" + text if text[0] in " \t" else "## " + text


def _comments(comments: list[A.Comment], pad: str, next_line: int | None, out: list[str]) -> None:
    """Comment lines; an empty line stays where the source had a gap (between two comments, or
    between the last one and the item they precede), so separate comment groups stay apart."""
    for i, c in enumerate(comments):
        out.append(pad + _comment(c.text))
        following = comments[i + 1].pos.line if i + 1 < len(comments) else next_line
        if following is not None and following - c.pos.line > 1:
            out.append("")


def _render_node(node: _Node, depth: int, out: list[str]) -> None:
    pad = INDENT * depth
    if node.blank_before and out:
        out.append("")
    _comments(node.before, pad, node.pos.line if node.pos is not None else None, out)
    line = pad + node.text
    if node.inline:
        line += "  " + "  ".join(_comment(t) for t in node.inline)
    out.append(line)
    out.extend(pad + INDENT + b if b else "" for b in node.body)
    out.extend(pad + b if b else "" for b in node.verbatim)
    for child in node.children:
        _render_node(child, depth + 1, out)
    _comments(node.trailing, pad + INDENT, None, out)
    if node.close is not None:
        out.append(pad + node.close + node.close_suffix)


def _render(root: _Node) -> str:
    # Comments that follow a prompt are printed as leading comments of whatever comes next:
    # that is where a re-read attaches them, so the output is a fixed point.
    pending: list[str] = []
    for child in root.children:
        child.before[:0] = pending
        pending = child.after
    root.trailing[:0] = pending
    out: list[str] = []
    for i, child in enumerate(root.children):
        child.blank_before = i > 0
        _render_node(child, 0, out)
    if root.trailing:
        if out:
            out.append("")
        _comments(root.trailing, "", None, out)
    return "\n".join(out) + "\n" if out else ""


# -- API ----------------------------------------------------------------------------------------


def format_file(file: A.File, *, blank_lines: frozenset[int] = frozenset()) -> str:
    """Canonical text of a parsed file; ends with one newline (an empty file gives ""). With the
    source's empty ``blank_lines`` (line numbers), the groups of edges a workflow has are kept."""
    root = _Node("", None, col=0, block=True)
    builder = _Builder(blank_lines, frozenset(c.pos.line for c in file.comments), file.string_styles)
    for belongs in _GROUPS:
        for decl in file.declarations:
            if belongs(decl):
                root.add(builder.decl(decl))
    _attach_comments(root, file.comments)
    return _render(root)


def format_source(source: str) -> str:
    """Parse and format. A file with parse errors is refused (ValueError): formatting it would
    silently drop whatever the parser skipped."""
    tree, diags = parse(source)
    errors = [d for d in diags if d.is_error and d.code.startswith("E")]
    if errors:
        listed = "\n".join(d.render() for d in errors)
        raise ValueError(f"cannot format a file with parse errors:\n{listed}")
    blank_lines = frozenset(n for n, line in enumerate(source.split("\n"), start=1) if not line.strip())
    return format_file(A.File(tree.declarations, _comments_as_written(tree.comments, source), tree.string_styles),
                       blank_lines=blank_lines)


def _comments_as_written(comments: list[A.Comment], source: str) -> list[A.Comment]:
    """The lexer strips comment text; with the source at hand, keep the spaces after `##` so
    indented comment lines (lists, diagrams) keep their shape. Trailing spaces still go."""
    lines = source.split("\n")
    kept: list[A.Comment] = []
    for c in comments:
        line = lines[c.pos.line - 1] if 0 < c.pos.line <= len(lines) else ""
        start = c.pos.column - 1
        raw = line[start + 2 :].rstrip() if line[start : start + 2] == "##" else ""
        if raw.strip() == c.text and raw[:1] in (" ", "\t"):
            c = A.Comment(raw, c.pos, c.inline)
        kept.append(c)
    return kept

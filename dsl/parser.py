"""Recursive-descent parser: tokens → AST, never stopping at the first error.

The parser accepts the union of Iterion's SEED syntax and its README syntax (see
docs/language.md): `await:` and `join` nodes, `backend:` and `delegate:`, human `interaction:` and
`mode:`, JSON / list / negative var defaults; plus iterloop's `wait` nodes, tool `call:` and human
`timeout:`; and, from current Iterion, backtick and `|` strings (lexer), `max_tokens`, the effort
aliases `xhigh`/`max` and `"${VAR:-level}"`, in-file `presets:`, and its coding-agent blocks
(`UPSTREAM_IGNORED`), which are kept verbatim for the formatter and ignored. Each property
handler records where the property was written so later phases can point at it. Recovery is
line-based: a bad line is reported once and skipped, a bad declaration is skipped up to the next
line that starts a declaration at column 1.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Callable
from typing import Any

from . import ast as A
from .diagnostics import Diagnostic, make
from .ir import REASONING_EFFORT_ALIASES, REASONING_EFFORTS
from .lexer import DEDENT, EOF, FLOAT, IDENT, INDENT, INT, NEWLINE, NOT_NAMES, PROMPTLINE, PUNCT, STRING, Token, lex
from .scripts import INTERPRETERS

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
#: What may follow '[' after a schema field's type.
FIELD_CLAUSES = ("enum", "pattern", "min_length", "max_length", "min", "max")

DECL_KEYWORDS = frozenset(
    "vars presets cursor attachments mcp_server prompt schema agent judge router join human tool wait compute workflow subbot".split()
)

#: Properties and declarations of current Iterion that iterloop accepts and ignores (C118), with
#: why: they configure its coding-agent runtime, which iterloop does not have. Owner → names.
UPSTREAM_IGNORED: dict[str, tuple[str, ...]] = {
    "agent": ("compaction", "memory", "sandbox", "cursors", "capabilities", "provider"),
    "judge": ("compaction", "memory", "sandbox", "cursors", "capabilities", "provider"),
    "router": ("provider",),
    "tool": ("sandbox",),
    "workflow": ("compaction", "worktree", "sandbox", "capabilities"),
    "file": ("cursor", "attachments"),
}
#: Upstream properties iterloop cannot ignore (the node would do nothing) and does not run: the
#: unknown-property error (E012) says what to write instead.
_UPSTREAM_UNSUPPORTED: dict[str, str] = {}
SESSION_MODES = ("fresh", "inherit", "artifacts_only", "fork")
ROUTER_MODES = ("fan_out_all", "condition", "round_robin", "llm", "fan_out_each", "foreach")
AWAIT_MODES = ("wait_all", "best_effort")
INTERACTIONS = ("none", "human", "llm", "llm_or_human")
HUMAN_MODES = {"pause_until_answers": "human", "auto_answer": "llm", "auto_or_pause": "llm_or_human"}
TRANSPORTS = ("stdio", "http", "sse")
RESERVED_NAMES = ("done", "fail")

_LINE_END = (NEWLINE, DEDENT, EOF)


class _Parser:
    def __init__(self, tokens: list[Token], lines: list[str] | None = None) -> None:
        self.toks = tokens
        self.i = 0
        self.diags: list[Diagnostic] = []
        self.lines = lines or []  # the source, to keep ignored upstream blocks verbatim
        self.ignored_lines: set[int] = set()  # their line numbers (their comments are part of them)

    # -- token helpers -------------------------------------------------------------------------
    def peek(self, offset: int = 0) -> Token:
        j = min(self.i + offset, len(self.toks) - 1)
        return self.toks[j]

    def advance(self) -> Token:
        tok = self.toks[self.i]
        if tok.kind != EOF:
            self.i += 1
        return tok

    def is_punct(self, ch: str, offset: int = 0) -> bool:
        tok = self.peek(offset)
        return tok.kind == PUNCT and tok.value == ch

    def is_name(self, tok: Token) -> bool:
        return tok.kind == IDENT and tok.value not in NOT_NAMES

    def error(self, code: str, message: str, tok: Token, *, hint: str | None = None, length: int | None = None) -> None:
        if length is None:
            length = len(tok.value) + (2 if tok.kind == STRING else 0) if tok.value else 1
        self.diags.append(make(code, message, tok.line, tok.column, length=length, hint=hint))

    def skip_newlines(self) -> None:
        while self.peek().kind == NEWLINE:
            self.advance()

    def skip_line(self) -> None:
        """Skip the rest of the current line, and a block indented under it."""
        while self.peek().kind not in _LINE_END:
            self.advance()
        if self.peek().kind == NEWLINE:
            self.advance()
        if self.peek().kind == INDENT:
            self.skip_block()

    def skip_block(self) -> None:
        depth = 0
        while self.peek().kind != EOF:
            tok = self.advance()
            if tok.kind == INDENT:
                depth += 1
            elif tok.kind == DEDENT:
                depth -= 1
                if depth == 0:
                    return

    def skip_to_declaration(self) -> None:
        while True:
            tok = self.peek()
            if tok.kind == EOF:
                return
            if tok.kind == IDENT and tok.first and tok.column == 1 and tok.value in DECL_KEYWORDS:
                return
            self.advance()

    def expect_punct(self, ch: str, context: str) -> bool:
        if self.is_punct(ch):
            self.advance()
            return True
        tok = self.peek()
        self.error("E002", f"expected '{ch}' {context}, got {tok.describe()}", tok)
        return False

    def end_of_line(self, context: str) -> None:
        tok = self.peek()
        if tok.kind in _LINE_END:
            if tok.kind == NEWLINE:
                self.advance()
            return
        self.error("E002", f"unexpected {tok.describe()} after {context}; expected end of line", tok,
                   hint="Put one property or edge per line.")
        self.skip_line()

    # -- value readers -------------------------------------------------------------------------
    def read_name(self, what: str) -> str:
        tok = self.peek()
        if self.is_name(tok):
            self.advance()
            return tok.value
        if tok.kind in _LINE_END:
            self.error("E002", f"expected {what}, got {tok.describe()}", tok)
            return ""
        self.advance()
        if tok.kind == IDENT:
            self.error("E002", f"'{tok.value}' is a reserved word and cannot be used as {what}", tok,
                       hint="Choose another name.")
        else:
            self.error("E002", f"expected {what}, got {tok.describe()}", tok)
        return tok.value

    def read_string(self, what: str) -> str:
        tok = self.peek()
        if tok.kind == STRING:
            self.advance()
            return tok.value
        if tok.kind in _LINE_END:
            self.error("E002", f"expected a string for {what}, got {tok.describe()}", tok)
            return ""
        self.advance()
        self.error("E002", f"expected a string in double quotes for {what}, got {tok.describe()}", tok,
                   hint=f'Write it quoted: "{tok.value}".')
        return tok.value

    def read_int(self, what: str, *, allow_negative: bool = False) -> int:
        tok = self.peek()
        if tok.kind != INT:
            if tok.kind not in _LINE_END:
                self.advance()
            self.error("E002", f"expected an integer for {what}, got {tok.describe()}", tok)
            return 0
        self.advance()
        value = int(tok.value)
        if not INT64_MIN <= value <= INT64_MAX:
            self.error("E002", f"integer {tok.value} is out of range for {what}", tok)
            return 0
        if value < 0 and not allow_negative:
            self.error("E020", f"{what} must not be negative, got {value}", tok, hint="Use 0 or a positive number.")
            return 0
        return value

    def read_number(self, what: str) -> float:
        tok = self.peek()
        if tok.kind not in (INT, FLOAT):
            if tok.kind not in _LINE_END:
                self.advance()
            self.error("E002", f"expected a number for {what}, got {tok.describe()}", tok)
            return 0.0
        self.advance()
        value = float(tok.value)
        if value < 0:
            self.error("E020", f"{what} must not be negative, got {tok.value}", tok, hint="Use 0 or a positive number.")
            return 0.0
        return value

    def read_bool(self, what: str) -> bool | None:
        tok = self.peek()
        if tok.kind == IDENT and tok.value in ("true", "false"):
            self.advance()
            return tok.value == "true"
        if tok.kind not in _LINE_END:
            self.advance()
        self.error("E020", f"expected true or false for {what}, got {tok.describe()}", tok)
        return None

    def read_choice(self, what: str, choices: tuple[str, ...] | dict[str, str]) -> str | None:
        """An enumerated value, written bare or quoted. None after an E020."""
        tok = self.peek()
        if tok.kind in (IDENT, STRING) and tok.value in choices:
            self.advance()
            return tok.value
        if tok.kind not in _LINE_END:
            self.advance()
        listed = ", ".join(choices)
        close = difflib.get_close_matches(tok.value, list(choices), n=1) if tok.value else []
        hint = f"Did you mean '{close[0]}'? Valid values: {listed}." if close else f"Valid values: {listed}."
        self.error("E020", f"invalid {what} {tok.describe()}; expected one of {listed}", tok, hint=hint)
        return None

    def read_list(self, what: str, item: Callable[[], str | None]) -> list[str]:
        """`[a, b, c]`; may span lines; empty and trailing-comma lists are fine."""
        items: list[str] = []
        if not self.expect_punct("[", f"to start the list of {what}"):
            self.skip_line_rest()
            return items
        while True:
            self.skip_layout()
            if self.is_punct("]"):
                self.advance()
                return items
            tok = self.peek()
            if tok.kind == EOF:
                self.error("E002", f"unclosed list of {what}: expected ']'", tok)
                return items
            value = item()
            if value is None:
                self.skip_list_rest()
                return items
            items.append(value)
            self.skip_layout()
            if self.is_punct(","):
                self.advance()
                continue
            if self.is_punct("]"):
                continue
            tok = self.peek()
            self.error("E002", f"expected ',' or ']' in the list of {what}, got {tok.describe()}", tok)
            self.skip_list_rest()
            return items

    def skip_layout(self) -> None:
        while self.peek().kind in (NEWLINE, INDENT, DEDENT):
            self.advance()

    def skip_line_rest(self) -> None:
        while self.peek().kind not in _LINE_END:
            self.advance()

    def skip_list_rest(self) -> None:
        while self.peek().kind not in (EOF, NEWLINE) and not self.is_punct("]"):
            self.advance()
        if self.is_punct("]"):
            self.advance()

    def tool_ref(self) -> str | None:
        """`name`, `ns.name`, `ns.sub.*`, `*` or a quoted string."""
        tok = self.peek()
        if tok.kind == STRING:
            self.advance()
            return tok.value
        if self.is_punct("*"):
            self.advance()
            return "*"
        if tok.kind != IDENT:
            self.error("E002", f"expected a tool name, got {tok.describe()}", tok)
            return None
        parts = [self.advance().value]
        while self.is_punct("."):
            self.advance()
            nxt = self.peek()
            if nxt.kind == IDENT:
                parts.append(self.advance().value)
            elif self.is_punct("*"):
                self.advance()
                parts.append("*")
                break
            else:
                self.error("E002", f"expected a name or '*' after '.' in a tool name, got {nxt.describe()}", nxt)
                return None
        return ".".join(parts)

    def ident_item(self) -> str | None:
        tok = self.peek()
        if tok.kind == STRING or self.is_name(tok):
            self.advance()
            return tok.value
        self.error("E002", f"expected a name, got {tok.describe()}", tok)
        return None

    def string_item(self) -> str | None:
        tok = self.peek()
        if tok.kind == STRING:
            self.advance()
            return tok.value
        self.error("E002", f"expected a string in double quotes, got {tok.describe()}", tok)
        return None

    # -- blocks --------------------------------------------------------------------------------
    def open_block(self, header: str) -> bool:
        """After `KIND NAME`: expect ':' and an indented body. False drops the declaration."""
        if self.is_punct(":"):
            self.advance()
        else:
            tok = self.peek()
            self.error("E002", f"expected ':' after {header}, got {tok.describe()}", tok)
            if tok.kind not in _LINE_END:
                self.skip_line_rest()
        self.skip_newlines()
        tok = self.peek()
        if tok.kind == INDENT:
            self.advance()
            return True
        self.error("E002", f"expected an indented block after {header}, got {tok.describe()}", tok,
                   hint="Indent the properties of the block by two spaces.")
        return False

    def block_body(self, owner: str, on_property: Callable[[Token], None]) -> None:
        """Loop over `prop: value` lines until the block's DEDENT.

        ``on_property`` receives the property-name token (already consumed, and the ':' too).
        """
        extra_depth = 0
        while True:
            tok = self.peek()
            if tok.kind == NEWLINE:
                self.advance()
                continue
            if tok.kind == EOF:
                return
            if tok.kind == DEDENT:
                self.advance()
                if extra_depth == 0:
                    return
                extra_depth -= 1
                continue
            if tok.kind == INDENT:
                self.advance()
                self.error("E003", f"line is indented deeper than the other properties of {owner}", self.peek(),
                           hint="Align the property with the ones above it.")
                extra_depth += 1
                continue
            if tok.kind != IDENT:
                self.advance()
                self.error("E012", f"expected a property of {owner}, got {tok.describe()}", tok)
                self.skip_line()
                continue
            self.advance()
            if not self.is_punct(":"):
                nxt = self.peek()
                self.error("E002", f"expected ':' after property '{tok.value}' of {owner}, got {nxt.describe()}", nxt)
                self.skip_line()
                continue
            self.advance()
            on_property(tok)

    def _suggest(self, word: str, known: tuple[str, ...]) -> str | None:
        close = difflib.get_close_matches(word, known, n=1) if known else []
        return f"Did you mean '{close[0]}'?" if close else None

    def props(self, owner: str, target: Any, handlers: dict[str, Callable[[], Any]],
              ignored: tuple[str, ...] = ()) -> Callable[[Token], None]:
        """Build an ``on_property`` callback from a name → value-reader table.

        ``target.props`` records where each property's value starts, for later diagnostics;
        ``ignored`` names upstream properties kept verbatim in ``target.ignored`` (C118).
        """
        known = tuple(handlers)

        def on_property(tok: Token) -> None:
            if tok.value in ignored:
                target.ignored.append(self.ignore_block(tok))
                return
            reader = handlers.get(tok.value)
            if reader is None:
                hint = _UPSTREAM_UNSUPPORTED.get(tok.value) or self._suggest(tok.value, known)
                self.error("E012", f"unknown property '{tok.value}' in {owner}", tok, hint=hint)
                self.skip_line()
                return
            value_tok = self.peek()
            target.props[tok.value] = value_tok.pos if value_tok.kind not in _LINE_END else tok.pos
            reader()
            if tok.value not in _BLOCK_PROPS:  # nested blocks consume their own line ends
                self.end_of_line(f"'{tok.value}'")

        return on_property

    def ignore_block(self, name_tok: Token) -> A.IgnoredBlock:
        """Skip an ignored upstream property or declaration (its line and the block under it) and
        keep its source lines, so `fmt` prints it back as written. Called with ``name_tok``
        consumed (a property's ':' too)."""
        if name_tok.kind == IDENT and name_tok.value in DECL_KEYWORDS and name_tok.column == 1:
            self.skip_to_next_declaration()
        else:
            self.skip_line()
        nxt = self.peek()
        last = len(self.lines) if nxt.kind == EOF else max(name_tok.line, nxt.line - 1)
        indent = name_tok.column - 1
        while last > name_tok.line:  # blank lines and the next item's comments are not part of it
            text = self.lines[last - 1] if last <= len(self.lines) else ""
            stripped = text.lstrip(" ")
            if stripped.strip() and not (stripped.startswith("##") and len(text) - len(stripped) <= indent):
                break
            last -= 1
        lines = []
        for number in range(name_tok.line, last + 1):
            text = (self.lines[number - 1] if number <= len(self.lines) else "").rstrip("\r")
            lines.append(text[indent:] if text[:indent].strip() == "" else text.lstrip(" "))
            self.ignored_lines.add(number)
        lines = [line if line.strip() else "" for line in lines]
        return A.IgnoredBlock(name_tok.value, name_tok.pos, lines)

    def skip_to_next_declaration(self) -> None:
        """Skip a top-level block: everything up to the next line that starts a declaration."""
        while self.peek().kind not in (NEWLINE, EOF):
            self.advance()
        self.skip_to_declaration()

    # -- file ----------------------------------------------------------------------------------
    def parse_file(self) -> list[A.Declaration]:
        decls: list[A.Declaration] = []
        while True:
            tok = self.peek()
            if tok.kind == EOF:
                return decls
            if tok.kind in (NEWLINE, DEDENT):
                self.advance()
                continue
            if tok.kind == IDENT and tok.value in DECL_KEYWORDS:
                decl = self.declaration()
                if decl is not None:
                    decls.append(decl)
                continue
            self.advance()
            if tok.kind == INDENT:
                self.error("E001", "unexpected indentation at top level", self.peek(),
                           hint="Top-level declarations start at column 1; indent only their bodies.")
            else:
                close = difflib.get_close_matches(tok.value, list(DECL_KEYWORDS), n=1)
                hint = f"Did you mean '{close[0]}'?" if close and tok.kind == IDENT else None
                self.error("E001", f"unexpected {tok.describe()} at top level", tok, hint=hint)
            self.skip_to_declaration()

    def declaration(self) -> A.Declaration | None:
        kw = self.advance()
        kind = kw.value
        if kind == "vars":
            return self.vars_block(kw)
        if kind == "presets":
            return self.presets_block(kw)
        if kind in UPSTREAM_IGNORED["file"]:
            return self.ignore_block(kw)
        name_tok = self.peek()
        if not self.is_name(name_tok):
            self.error("E002", f"expected a name after '{kind}', got {name_tok.describe()}", name_tok)
            self.skip_to_declaration()
            return None
        self.advance()
        name = name_tok.value
        pos = kw.pos
        if name in RESERVED_NAMES and kind in ("prompt", "schema", "agent", "judge", "join", "wait", "compute", "subbot"):
            article = "an" if kind[0] in "aeiou" else "a"
            self.error("E011", f"'{name}' is reserved and cannot name {article} {kind}", kw)
        header = f"'{kind} {name}'"
        if kind == "prompt":
            return self.prompt(name, pos, header)
        if not self.open_block(header):
            return None
        if kind == "schema":
            return self.schema(name, pos, header)
        if kind == "workflow":
            return self.workflow(name, pos, header)
        builders = {
            "mcp_server": self.mcp_server,
            "agent": self.agent,
            "judge": self.agent,
            "router": self.router,
            "join": self.join,
            "human": self.human,
            "tool": self.tool,
            "wait": self.wait,
            "compute": self.compute,
            "subbot": self.subbot,
        }
        return builders[kind](kind, name, pos, header)

    # -- vars, literals ------------------------------------------------------------------------
    def vars_block(self, kw: Token) -> A.VarsBlock | None:
        if not self.open_block("'vars'"):
            return None
        block = A.VarsBlock([], kw.pos)
        while True:
            tok = self.peek()
            if tok.kind == NEWLINE:
                self.advance()
                continue
            if tok.kind in (DEDENT, EOF):
                if tok.kind == DEDENT:
                    self.advance()
                return block
            if not self.is_name(tok):
                self.advance()
                self.error("E002", f"expected a variable name, got {tok.describe()}", tok)
                self.skip_line()
                continue
            self.advance()
            if not self.expect_punct(":", f"after variable '{tok.value}'"):
                self.skip_line()
                continue
            vtype = self.read_type(f"variable '{tok.value}'", fallback="json")
            default = None
            if self.is_punct("="):
                self.advance()
                default = self.literal(f"the default of '{tok.value}'")
            block.fields.append(A.VarField(tok.value, vtype, default, tok.pos))
            self.end_of_line(f"variable '{tok.value}'")

    def presets_block(self, kw: Token) -> A.PresetsBlock | None:
        """`presets:` then `NAME:` blocks of `var: literal` lines (Iterion's in-file presets)."""
        if not self.open_block("'presets'"):
            return None
        block = A.PresetsBlock([], kw.pos)
        while True:
            tok = self.peek()
            if tok.kind == NEWLINE:
                self.advance()
                continue
            if tok.kind in (DEDENT, EOF):
                if tok.kind == DEDENT:
                    self.advance()
                return block
            self.advance()
            if tok.kind != IDENT:
                self.error("E002", f"expected a preset name in 'presets', got {tok.describe()}", tok,
                           hint="Write `presets:`, then `NAME:` and its `var: value` lines indented below.")
                self.skip_line()
                continue
            preset = A.Preset(tok.value, [], tok.pos)
            block.presets.append(preset)
            if not self.open_block(f"preset '{tok.value}'"):
                self.skip_line()
                continue
            while True:
                item = self.peek()
                if item.kind == NEWLINE:
                    self.advance()
                    continue
                if item.kind in (DEDENT, EOF):
                    if item.kind == DEDENT:
                        self.advance()
                    break
                self.advance()
                if item.kind != IDENT:
                    self.error("E002", f"expected a variable name in preset '{tok.value}', got {item.describe()}", item)
                    self.skip_line()
                    continue
                if not self.expect_punct(":", f"after variable '{item.value}' of preset '{tok.value}'"):
                    self.skip_line()
                    continue
                value = self.literal(f"'{item.value}' of preset '{tok.value}'")
                preset.values.append(A.PresetValue(item.value, value, item.pos))
                self.end_of_line(f"'{item.value}' of preset '{tok.value}'")

    def read_type(self, what: str, fallback: str = "string") -> str:
        tok = self.peek()
        if tok.kind == IDENT and tok.value in A.FIELD_TYPES:
            self.advance()
            return tok.value
        if tok.kind not in _LINE_END:
            self.advance()
        close = difflib.get_close_matches(tok.value, list(A.FIELD_TYPES), n=1)
        self.error("E021", f"invalid type {tok.describe()} for {what}; expected one of "
                   + ", ".join(A.FIELD_TYPES), tok, hint=f"Did you mean '{close[0]}'?" if close else None)
        return fallback

    def literal(self, what: str) -> A.Literal_ | None:
        tok = self.peek()
        if tok.kind == STRING:
            self.advance()
            raw = f"`{tok.value}`" if tok.style == "`" else "|" if tok.style == "|" else f'"{tok.value}"'
            return A.Literal_("string", tok.value, raw)
        if tok.kind == INT:
            self.advance()
            value = max(INT64_MIN, min(INT64_MAX, int(tok.value)))
            return A.Literal_("int", value, str(value))
        if tok.kind == FLOAT:
            self.advance()
            return A.Literal_("float", float(tok.value), tok.value)
        if tok.kind == IDENT and tok.value in ("true", "false"):
            self.advance()
            return A.Literal_("bool", tok.value == "true", tok.value)
        if tok.kind == IDENT and tok.value == "null" or self.is_punct("{") or self.is_punct("["):
            start = self.i
            value = self.json_value()
            if value is _BAD:
                self.i = max(self.i, start + 1)
                self.skip_line_rest()
                return None
            return A.Literal_("json", value, json.dumps(value, ensure_ascii=False))
        if tok.kind not in _LINE_END:
            self.advance()
        self.error("E002", f"expected a literal value for {what}, got {tok.describe()}", tok,
                   hint='Use a string ("x"), a number, true/false, or JSON ({…} / […]).')
        return None

    def json_value(self) -> Any:
        """A JSON value written inline (may span lines inside brackets)."""
        self.skip_layout()
        tok = self.peek()
        if tok.kind == STRING:
            self.advance()
            return _json_string(tok.value)
        if tok.kind == INT:
            self.advance()
            return int(tok.value)
        if tok.kind == FLOAT:
            self.advance()
            return float(tok.value)
        if tok.kind == IDENT and tok.value in ("true", "false", "null"):
            self.advance()
            return {"true": True, "false": False, "null": None}[tok.value]
        if self.is_punct("["):
            self.advance()
            items: list[Any] = []
            while True:
                self.skip_layout()
                if self.is_punct("]"):
                    self.advance()
                    return items
                value = self.json_value()
                if value is _BAD:
                    return _BAD
                items.append(value)
                self.skip_layout()
                if self.is_punct(","):
                    self.advance()
                elif not self.is_punct("]"):
                    bad = self.peek()
                    self.error("E002", f"expected ',' or ']' in JSON array, got {bad.describe()}", bad)
                    return _BAD
        if self.is_punct("{"):
            self.advance()
            obj: dict[str, Any] = {}
            while True:
                self.skip_layout()
                if self.is_punct("}"):
                    self.advance()
                    return obj
                key_tok = self.peek()
                if key_tok.kind == STRING:
                    key = _json_string(key_tok.value)
                elif key_tok.kind == IDENT:
                    key = key_tok.value
                else:
                    self.error("E002", f"expected a JSON object key, got {key_tok.describe()}", key_tok)
                    return _BAD
                self.advance()
                if not self.expect_punct(":", "after a JSON object key"):
                    return _BAD
                value = self.json_value()
                if value is _BAD:
                    return _BAD
                obj[str(key)] = value
                self.skip_layout()
                if self.is_punct(","):
                    self.advance()
                elif not self.is_punct("}"):
                    bad = self.peek()
                    self.error("E002", f"expected ',' or '}}' in JSON object, got {bad.describe()}", bad)
                    return _BAD
        self.error("E002", f"expected a JSON value, got {tok.describe()}", tok)
        return _BAD

    # -- declarations --------------------------------------------------------------------------
    def prompt(self, name: str, pos: A.Pos, header: str) -> A.PromptDecl | None:
        if not self.open_block(header):
            return None
        lines: list[str] = []
        body_pos: A.Pos | None = None
        while True:
            tok = self.peek()
            if tok.kind == PROMPTLINE:
                self.advance()
                if body_pos is None:
                    body_pos = tok.pos
                lines.append(tok.value)
                continue
            if tok.kind == DEDENT:
                self.advance()
                break
            if tok.kind == EOF:
                break
            # Only reachable when the body did not start as prompt text (e.g. an INDENT oddity).
            self.advance()
            if tok.kind not in (NEWLINE, INDENT):
                self.error("E002", f"expected prompt text in {header}, got {tok.describe()}", tok,
                           hint="Indent the prompt body under 'prompt NAME:'.")
                depth = 0
                while self.peek().kind != EOF:
                    t = self.advance()
                    if t.kind == INDENT:
                        depth += 1
                    elif t.kind == DEDENT:
                        if depth == 0:
                            break
                        depth -= 1
                break
        return A.PromptDecl(name, "\n".join(lines), pos, body_pos)

    def schema(self, name: str, pos: A.Pos, header: str) -> A.SchemaDecl:
        decl = A.SchemaDecl(name, [], pos)
        while True:
            tok = self.peek()
            if tok.kind == NEWLINE:
                self.advance()
                continue
            if tok.kind in (DEDENT, EOF):
                if tok.kind == DEDENT:
                    self.advance()
                return decl
            if not self.is_name(tok):
                self.advance()
                self.error("E002", f"expected a field name in {header}, got {tok.describe()}", tok)
                self.skip_line()
                continue
            self.advance()
            if not self.expect_punct(":", f"after field '{tok.value}'"):
                self.skip_line()
                continue
            ftype = self.read_type(f"field '{tok.value}'")
            fld = A.SchemaField(tok.value, ftype, None, tok.pos)
            while self.is_punct("["):
                self.field_clause(fld)
            decl.fields.append(fld)
            self.end_of_line(f"field '{tok.value}'")

    def field_clause(self, fld: A.SchemaField) -> None:
        """One `[KEY: …]` after a field's type: `enum` (a list of values) or one constraint."""
        self.advance()  # [
        tok = self.peek()
        if not (tok.kind == IDENT and tok.value in FIELD_CLAUSES):
            self.error("E002", f"expected one of {', '.join(FIELD_CLAUSES)} after '[', got {tok.describe()}", tok,
                       hint='Write [enum: "a", "b"], [pattern: "^[a-z]+$"], [min_length: 1], [max_length: 100], '
                            "[min: 0] or [max: 100].")
            self.skip_list_rest()
            return
        self.advance()
        key = tok.value
        if key in fld.constraints or (key == "enum" and fld.enum_pos is not None):
            self.error("E020", f"field '{fld.name}' has '{key}' twice", tok,
                       hint=f"Keep one [{key}: …] on the field.")
            self.skip_list_rest()
            return
        if not self.expect_punct(":", f"after '{key}'"):
            self.skip_list_rest()
            return
        if key == "enum":
            fld.enum_pos = tok.pos
            fld.enum_values = self.enum_values()
            return
        vtok = self.peek()
        what = f"'{key}' of field '{fld.name}'"
        value: str | int | float | None
        if key == "pattern":
            value = self.read_string(what) if vtok.kind == STRING else None
        elif key in ("min_length", "max_length"):
            value = self.read_int(what) if vtok.kind == INT else None
        else:
            value = self.signed_number() if vtok.kind in (INT, FLOAT) else None
        if value is None:
            if vtok.kind not in _LINE_END and not self.is_punct("]"):
                self.advance()
            kind = "a string" if key == "pattern" else "an integer" if key.endswith("_length") else "a number"
            self.error("E002", f"expected {kind} for {what}, got {vtok.describe()}", vtok)
            self.skip_list_rest()
            return
        fld.constraints[key] = value
        fld.constraint_pos[key] = vtok.pos
        if self.is_punct("]"):
            self.advance()
            return
        bad = self.peek()
        self.error("E002", f"expected ']' after {what}, got {bad.describe()}", bad,
                   hint="Write one constraint per bracket: [min: 0] [max: 100].")
        self.skip_list_rest()

    def signed_number(self) -> int | float | None:
        """An INT or FLOAT token (negative allowed) as int or float; None (after an E002) when it
        does not fit a 64-bit integer or a finite float."""
        tok = self.advance()
        if tok.kind == INT:
            number: int | float = int(tok.value)
            ok = INT64_MIN <= number <= INT64_MAX
        else:
            number = float(tok.value)
            ok = math.isfinite(number)
        if not ok:
            self.error("E002", f"number {tok.value} is out of range", tok)
            return 0
        return number

    def enum_values(self) -> list[str] | None:
        values: list[str] = []
        while True:
            tok = self.peek()
            if tok.kind in (STRING, IDENT, INT, FLOAT):
                self.advance()
                values.append(tok.value)
            else:
                self.error("E002", f"expected an enum value, got {tok.describe()}", tok)
                self.skip_list_rest()
                return values or None
            if self.is_punct(","):
                self.advance()
                if self.is_punct("]"):
                    self.advance()
                    return values
                continue
            if self.is_punct("]"):
                self.advance()
                return values
            bad = self.peek()
            self.error("E002", f"expected ',' or ']' in enum, got {bad.describe()}", bad)
            self.skip_list_rest()
            return values

    def mcp_server(self, kind: str, name: str, pos: A.Pos, header: str) -> A.MCPServerDecl:
        decl = A.MCPServerDecl(name, pos)

        def transport() -> None:
            value = self.read_choice("transport", TRANSPORTS)
            decl.transport = value or ""

        def command() -> None:
            decl.command = self.read_string("'command'")

        def args() -> None:
            decl.args = self.read_list("args", self.string_item)

        def url() -> None:
            decl.url = self.read_string("'url'")

        self.block_body(header, self.props(header, decl, {"transport": transport, "command": command, "args": args, "url": url}))
        return decl

    def mcp_block(self, owner: str) -> A.MCPBlock:
        tok = self.toks[self.i - 2]  # the 'mcp' keyword (followed by ':')
        block = A.MCPBlock(tok.pos)
        header = f"the mcp block of {owner}"
        if self.peek().kind != NEWLINE:
            bad = self.peek()
            self.error("E002", f"expected an indented block after 'mcp:', got {bad.describe()}", bad)
            self.skip_line()
            return block
        self.advance()
        self.skip_newlines()
        if self.peek().kind != INDENT:
            bad = self.peek()
            self.error("E002", f"expected an indented block after 'mcp:', got {bad.describe()}", bad)
            return block
        self.advance()

        def setter(attr: str, reader: Callable[[], Any]) -> Callable[[], None]:
            def run() -> None:
                value = reader()
                if value is not None:
                    setattr(block, attr, value)
            return run

        self.block_body(header, self.props(header, block, {
            "autoload_project": setter("autoload_project", lambda: self.read_bool("'autoload_project'")),
            "inherit": setter("inherit", lambda: self.read_bool("'inherit'")),
            "servers": setter("servers", lambda: self.read_list("servers", self.ident_item)),
            "disable": setter("disable", lambda: self.read_list("disabled servers", self.ident_item)),
        }))
        return block

    def _common(self, decl: Any, owner: str) -> dict[str, Callable[[], None]]:
        """Readers shared by several node kinds, keyed by property name."""

        def set_str(attr: str) -> Callable[[], None]:
            return lambda: setattr(decl, attr, self.read_string(f"'{attr}' of {owner}"))

        def set_name(attr: str, what: str) -> Callable[[], None]:
            return lambda: setattr(decl, attr, self.read_name(f"{what} for '{attr}' of {owner}"))

        def set_await() -> None:
            value = self.read_choice("await mode", AWAIT_MODES)
            decl.await_mode = value or "wait_all"  # Iterion's fallback: still a convergence point

        def set_interaction() -> None:
            decl.interaction = self.read_choice("interaction", INTERACTIONS) or "none"

        def set_backend() -> None:
            decl.backend = self.read_string(f"'backend' of {owner}")

        return {
            "model": set_str("model"),
            "backend": set_backend,
            "delegate": set_backend,
            "input": set_name("input", "a schema name"),
            "output": set_name("output", "a schema name"),
            "publish": set_name("publish", "an artifact name"),
            "system": set_name("system", "a prompt name"),
            "user": set_name("user", "a prompt name"),
            "instructions": set_name("instructions", "a prompt name"),
            "interaction": set_interaction,
            "interaction_prompt": set_name("interaction_prompt", "a prompt name"),
            "interaction_model": set_str("interaction_model"),
            "await": set_await,
        }

    def _pick(self, table: dict[str, Callable[[], None]], names: str) -> dict[str, Callable[[], None]]:
        return {n: table[n] for n in names.split()}

    def agent(self, kind: str, name: str, pos: A.Pos, header: str) -> A.AgentDecl:
        decl = A.AgentDecl(kind, name, pos)  # type: ignore[arg-type]
        common = self._common(decl, header)
        handlers = self._pick(
            common,
            "model backend delegate input output publish system user interaction "
            "interaction_prompt interaction_model await",
        )

        def session() -> None:
            decl.session = self.read_choice("session mode", SESSION_MODES) or "fresh"

        def tools() -> None:
            decl.tools = self.read_list("tools", self.tool_ref)

        def tool_policy() -> None:
            decl.tool_policy = self.read_list("tool_policy", self.tool_ref)

        def tool_max_steps() -> None:
            decl.tool_max_steps = self.read_int("'tool_max_steps'")

        def tool_approval() -> None:
            decl.tool_approval = self.read_list("tool_approval", self.tool_ref)

        def max_tokens() -> None:
            decl.max_tokens = self.read_int("'max_tokens'")

        def reasoning_effort() -> None:
            tok = self.peek()
            if tok.kind == STRING and "$" in tok.value:  # "${VAR:-high}": resolved on the worker
                self.advance()
                decl.reasoning_effort = tok.value
                return
            levels = REASONING_EFFORTS + tuple(REASONING_EFFORT_ALIASES)
            decl.reasoning_effort = self.read_choice("reasoning effort", levels) or ""

        def readonly() -> None:
            value = self.read_bool("'readonly'")
            decl.readonly = bool(value)

        def mcp() -> None:
            decl.mcp = self.mcp_block(header)

        handlers.update(session=session, tools=tools, tool_policy=tool_policy, tool_max_steps=tool_max_steps,
                        tool_approval=tool_approval,
                        max_tokens=max_tokens, reasoning_effort=reasoning_effort, readonly=readonly, mcp=mcp)
        self.block_body(header, self.props(header, decl, handlers, UPSTREAM_IGNORED[kind]))
        return decl

    def router(self, kind: str, name: str, pos: A.Pos, header: str) -> A.RouterDecl:
        decl = A.RouterDecl(name, pos)
        handlers = self._pick(self._common(decl, header), "model backend delegate system user")

        def mode() -> None:
            decl.mode = self.read_choice("router mode", ROUTER_MODES) or "fan_out_all"

        def multi() -> None:
            decl.multi = bool(self.read_bool("'multi'"))

        def over() -> None:
            decl.over = self.read_string("'over' (the list to map over, e.g. \"{{outputs.planner.items}}\")")

        def parallelism() -> None:
            decl.parallelism = self.read_int("'parallelism'")

        handlers.update(mode=mode, multi=multi, over=over, parallelism=parallelism)
        self.block_body(header, self.props(header, decl, handlers, UPSTREAM_IGNORED["router"]))
        return decl

    def join(self, kind: str, name: str, pos: A.Pos, header: str) -> A.JoinDecl:
        decl = A.JoinDecl(name, pos)

        def strategy() -> None:
            decl.strategy = self.read_choice("join strategy", AWAIT_MODES) or "wait_all"

        def require() -> None:
            decl.require = self.read_list("required branches", self.ident_item)

        def output() -> None:
            decl.output = self.read_name(f"a schema name for 'output' of {header}")

        self.block_body(header, self.props(header, decl, {"strategy": strategy, "await": strategy,
                                                          "require": require, "output": output}))
        return decl

    def human(self, kind: str, name: str, pos: A.Pos, header: str) -> A.HumanDecl:
        decl = A.HumanDecl(name, pos)
        handlers = self._pick(
            self._common(decl, header),
            "input output publish instructions interaction interaction_prompt interaction_model model system await",
        )

        def mode() -> None:
            value = self.read_choice("human mode", HUMAN_MODES)
            if value is not None:
                decl.interaction = HUMAN_MODES[value]

        def min_answers() -> None:
            decl.min_answers = self.read_int("'min_answers'")

        def timeout() -> None:
            decl.timeout = self.read_string(f"'timeout' of {header}")

        handlers.update(mode=mode, min_answers=min_answers, timeout=timeout)
        self.block_body(header, self.props(header, decl, handlers))
        return decl

    def tool(self, kind: str, name: str, pos: A.Pos, header: str) -> A.ToolDecl:
        decl = A.ToolDecl(name, pos)
        handlers = self._pick(self._common(decl, header), "input output publish await")

        def command() -> None:
            decl.command = self.read_string(f"'command' of {header}")

        def call() -> None:
            decl.call = self.tool_ref() or ""

        def script() -> None:
            decl.script = self.read_string(f"'script' of {header}")

        def language() -> None:  # an interpreter iterloop does not run is E020, at the value
            decl.language = self.read_choice(f"'language' of {header}", tuple(INTERPRETERS)) or ""

        handlers.update(command=command, call=call, script=script, language=language)
        self.block_body(header, self.props(header, decl, handlers, UPSTREAM_IGNORED["tool"]))
        return decl

    def wait(self, kind: str, name: str, pos: A.Pos, header: str) -> A.WaitDecl:
        decl = A.WaitDecl(name, pos)
        handlers = self._pick(self._common(decl, header), "await")

        def duration() -> None:
            decl.duration = self.read_string(f"'duration' of {header}")

        def event() -> None:  # upstream's event wait: parsed to be refused (C119)
            tok = self.peek()
            decl.event = self.read_string(f"'event' of {header}") if tok.kind == STRING else self.read_name(
                f"an event name for 'event' of {header}")

        def timeout() -> None:
            decl.timeout = self.read_string(f"'timeout' of {header}")

        handlers.update(duration=duration, event=event, timeout=timeout)
        self.block_body(header, self.props(header, decl, handlers))
        return decl

    def subbot(self, kind: str, name: str, pos: A.Pos, header: str) -> A.SubbotDecl:
        decl = A.SubbotDecl(name, pos)
        handlers = self._pick(self._common(decl, header), "await")

        def bot() -> None:
            decl.bot = self.read_string(f"'bot' of {header} (the workflow file to run, e.g. \"review.iter\")")

        def budget() -> None:
            self.i -= 1  # `budget` reads its own ':' and block
            decl.budget = self.budget(self.toks[self.i - 1])

        handlers.update(bot=bot, budget=budget)
        self.block_body(header, self.props(header, decl, handlers))
        return decl

    def compute(self, kind: str, name: str, pos: A.Pos, header: str) -> A.ComputeDecl:
        decl = A.ComputeDecl(name, pos)
        handlers = self._pick(self._common(decl, header), "input output await")

        def expr() -> None:  # a nested block of `key: "expression"` lines
            self.end_of_line("'expr:'")
            self.skip_newlines()
            if self.peek().kind != INDENT:
                self.error("E002", f"expected an indented block of 'key: \"expression\"' lines under 'expr:' of {header}",
                           self.peek(), hint='Write e.g.  expr:\n    total: "sum(input.values)"')
                return
            self.advance()

            def on_key(key: Token) -> None:
                val = self.peek()
                if val.kind != STRING:
                    self.error("E002", f"the expression of '{key.value}' in {header} must be a quoted string, "
                               f"got {val.describe()}", val, hint='Quote it: total: "sum(input.values)".')
                    self.skip_line()
                    return
                self.advance()
                decl.exprs.append(A.ComputeExpr(key.value, val.value, key.pos, val.pos))
                self.end_of_line(f"the expression of '{key.value}'")

            self.block_body(f"'expr' of {header}", on_key)

        handlers.update(expr=expr)
        self.block_body(header, self.props(header, decl, handlers))
        return decl

    # -- workflow ------------------------------------------------------------------------------
    def workflow(self, name: str, pos: A.Pos, header: str) -> A.WorkflowDecl:
        wf = A.WorkflowDecl(name, pos)
        extra_depth = 0
        while True:
            tok = self.peek()
            if tok.kind == NEWLINE:
                self.advance()
                continue
            if tok.kind == EOF:
                return wf
            if tok.kind == DEDENT:
                self.advance()
                if extra_depth == 0:
                    return wf
                extra_depth -= 1
                continue
            if tok.kind == INDENT:
                self.advance()
                self.error("E003", f"line is indented deeper than the other lines of {header}", self.peek(),
                           hint="Align edges and properties of the workflow at the same indentation.")
                extra_depth += 1
                continue
            is_edge = self.is_name(tok) and self.is_punct("->", 1)
            if (tok.kind == IDENT and not is_edge and self.is_punct(":", 1)
                    and tok.value in UPSTREAM_IGNORED["workflow"]):
                self.advance()
                self.advance()
                wf.ignored.append(self.ignore_block(tok))
                continue
            if tok.kind == IDENT and not is_edge and self.is_punct(":", 1) and tok.value in _WORKFLOW_PROPS:
                self.workflow_property(wf, header)
                continue
            if self.is_name(tok):
                edge = self.edge()
                if edge is not None:
                    wf.edges.append(edge)
                continue
            self.advance()
            self.error("E001", f"unexpected {tok.describe()} in {header}; expected an edge 'a -> b' or a "
                       "workflow property", tok,
                       hint="Workflow lines are edges (a -> b …) or vars:, entry:, budget:, mcp:, default_backend:, "
                       "tool_policy:, interaction:.")
            self.skip_line()

    def workflow_property(self, wf: A.WorkflowDecl, header: str) -> None:
        tok = self.advance()
        self.advance()  # ':'
        prop = tok.value
        wf.props[prop] = tok.pos
        if prop == "vars":
            self.i -= 2
            vars_kw = self.advance()
            block = self.vars_block(vars_kw)
            if block is not None:
                wf.vars = block
            return
        if prop == "budget":
            self.i -= 1
            wf.budget = self.budget(tok) or wf.budget
            return
        if prop == "mcp":
            wf.mcp = self.mcp_block(header)
            return
        if prop == "entry":
            wf.entry = self.read_name("the entry node name")
            wf.entry_pos = self.toks[self.i - 1].pos
        elif prop == "default_backend":
            wf.default_backend = self.read_string("'default_backend'")
        elif prop == "tool_policy":
            wf.tool_policy = self.read_list("tool_policy", self.tool_ref)
        elif prop == "interaction":
            wf.interaction = self.read_choice("interaction", INTERACTIONS) or "none"
        self.end_of_line(f"'{prop}'")

    def budget(self, kw: Token) -> A.BudgetBlock | None:
        if not self.open_block("'budget'"):
            return None
        block = A.BudgetBlock(kw.pos)

        def int_prop(attr: str) -> Callable[[], None]:
            return lambda: setattr(block, attr, self.read_int(f"'{attr}'"))

        def duration() -> None:
            block.max_duration = self.read_string("'max_duration'")

        def cost() -> None:
            block.max_cost_usd = self.read_number("'max_cost_usd'")

        handlers = {
            "max_parallel_branches": int_prop("max_parallel_branches"),
            "max_duration": duration,
            "max_cost_usd": cost,
            "max_tokens": int_prop("max_tokens"),
            "max_iterations": int_prop("max_iterations"),
        }
        self.block_body("the budget", self.props("the budget", block, handlers))
        return block

    def edge(self) -> A.Edge | None:
        src = self.advance()
        if not self.is_punct("->"):
            tok = self.peek()
            self.error("E002", f"expected '->' after '{src.value}', got {tok.describe()}", tok,
                       hint="Edges read 'source -> target'.")
            self.skip_line()
            return None
        self.advance()
        tgt = self.peek()
        if not self.is_name(tgt):
            self.error("E002", f"expected a target node name after '->', got {tgt.describe()}", tgt)
            self.skip_line()
            return None
        self.advance()
        edge = A.Edge(src.value, tgt.value, src.pos, tgt.pos)
        while True:
            tok = self.peek()
            if tok.kind != IDENT or tok.value not in ("when", "as", "with"):
                break
            self.advance()
            if tok.value == "when":
                negated = False
                if self.peek().kind == STRING:  # `when "lift > 0.02 && !srm"`
                    cond_tok = self.advance()
                    edge.when = A.Condition("", False, cond_tok.pos, expression=cond_tok.value)
                    continue
                if self.peek().kind == IDENT and self.peek().value == "else":  # `when else`
                    cond_tok = self.advance()
                    edge.when = A.Condition("", False, cond_tok.pos, is_else=True)
                    continue
                if self.peek().kind == IDENT and self.peek().value == "not" and self.is_name(self.peek(1)):
                    self.advance()
                    negated = True
                cond_tok = self.peek()
                if self.is_name(cond_tok):
                    self.advance()
                    edge.when = A.Condition(cond_tok.value, negated, cond_tok.pos)
                else:
                    self.error("E002", f"expected a condition field after 'when', got {cond_tok.describe()}",
                               cond_tok, hint="Write 'when approved' or 'when not approved'.")
                    if cond_tok.kind not in _LINE_END:
                        self.advance()
                    edge.when = A.Condition("", negated, cond_tok.pos)
            elif tok.value == "as":
                name_tok = self.peek()
                loop_name = self.read_name("a loop name after 'as'")
                count = 1  # after a syntax error, a neutral bound avoids a follow-on C026
                bound_source: str | None = None
                if self.expect_punct("(", f"after loop name '{loop_name}'"):
                    if self.peek().kind == STRING:  # a bound from data, evaluated when the loop is entered
                        bound_source = self.advance().value
                    elif self.peek().kind == INT:
                        count = self.read_int(f"the bound of loop '{loop_name}'", allow_negative=True)
                    else:
                        self.read_int(f"the bound of loop '{loop_name}'")
                    self.expect_punct(")", f"after the bound of loop '{loop_name}'")
                edge.loop = A.LoopClause(loop_name, count, name_tok.pos, bound_source)
            else:
                edge.with_ = self.with_block()
        self.end_of_line(f"the edge '{src.value} -> {tgt.value}'")
        return edge

    def with_block(self) -> list[A.WithEntry]:
        entries: list[A.WithEntry] = []
        if not self.expect_punct("{", "after 'with'"):
            return entries
        while True:
            self.skip_layout()
            if self.is_punct("}"):
                self.advance()
                return entries
            key = self.peek()
            if key.kind == EOF:
                self.error("E002", "unclosed 'with' block: expected '}'", key)
                return entries
            if not (self.is_name(key) or key.kind == STRING):
                self.advance()
                self.error("E002", f"expected a key in the 'with' block, got {key.describe()}", key)
                self._skip_with_entry()
                continue
            self.advance()
            if not self.expect_punct(":", f"after with-key '{key.value}'"):
                self._skip_with_entry()
                continue
            val = self.peek()
            if val.kind != STRING:
                self.error("E002", f"the value of with-key '{key.value}' must be a string, got {val.describe()}", val,
                           hint='Quote it: key: "{{outputs.node}}".')
                self._skip_with_entry()
                continue
            self.advance()
            entries.append(A.WithEntry(key.value, val.value, key.pos, val.pos))
            if self.is_punct(","):
                self.advance()

    def _skip_with_entry(self) -> None:
        while self.peek().kind not in (EOF, NEWLINE) and not self.is_punct("}") and not self.is_punct(","):
            self.advance()
        if self.is_punct(","):
            self.advance()


_BLOCK_PROPS = frozenset({"mcp", "expr", "budget"})
_WORKFLOW_PROPS = frozenset("vars entry budget mcp default_backend tool_policy interaction".split())


class _Bad:
    pass


_BAD: Any = _Bad()


def _json_string(raw: str) -> str:
    """JSON strings inside var defaults are decoded with JSON escapes; fall back to raw text."""
    try:
        value = json.loads(f'"{raw}"')
    except ValueError:
        return raw
    return value if isinstance(value, str) else raw


def parse(source: str) -> tuple[A.File, list[Diagnostic]]:
    """Parse ``source``; always returns a (possibly partial) AST and the diagnostics."""
    lexed = lex(source)
    parser = _Parser(lexed.tokens, source.split("\n"))
    try:
        decls = parser.parse_file()
    except RecursionError:  # pathologically nested JSON defaults
        decls = []
        parser.diags.append(make("E003", "nesting too deep to parse", 1, 1))
    diags = sorted(lexed.diagnostics + parser.diags, key=lambda d: (d.line, d.column))
    comments = [c for c in lexed.comments if c.pos.line not in parser.ignored_lines]
    return A.File(decls, comments, lexed.string_styles, lexed.block_bodies), diags

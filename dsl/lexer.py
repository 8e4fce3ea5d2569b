"""Line-oriented lexer for `.iter` source.

Why line-oriented: indentation, comments and prompt bodies are all decided per line, and one
compiled regex over the rest of a line is what makes lexing fast in Python. Differences from
Iterion's lexer are deliberate and listed in docs/language.md: CRLF is accepted, tabs in
indentation are a clear error (E003), blank lines inside prompt bodies are kept, a prompt body
may start with `##` and prompt names may be keywords, and negative numbers exist (var defaults).

Comments never reach the token stream; they are collected (with positions) for the formatter.
Lexical errors become diagnostics right here, and the offending character is dropped.

Besides `"…"`, strings may be written as Iterion writes them since 2026-05 (docs/language.md §2):
a backtick raw string `` `…` `` (no escapes, may span lines: shell scripts and regexes without
escaping) and a `|` block scalar after a property's `:` (the indented lines below it, YAML's
"clip" form). Both become one STRING token; its ``style`` tells the formatter how it was written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .ast import Comment, Pos
from .diagnostics import Diagnostic, make

MAX_SOURCE_BYTES = 10 * 1024 * 1024
MAX_NESTING = 100

# Token kinds.
IDENT = "IDENT"
STRING = "STRING"
INT = "INT"
FLOAT = "FLOAT"
PUNCT = "PUNCT"  # value is the character, or "->"
NEWLINE = "NEWLINE"
INDENT = "INDENT"
DEDENT = "DEDENT"
PROMPTLINE = "PROMPTLINE"
EOF = "EOF"

#: Every word with a meaning somewhere in the language. Words are lexed as IDENT; the parser
#: decides by text, so most keywords double as names (Iterion does the same).
KEYWORDS = frozenset(
    """vars mcp_server prompt schema agent judge router join human tool workflow entry mcp budget
    transport servers disable autoload_project model input output publish system user session tools
    tool_policy tool_max_steps reasoning_effort mode strategy require instructions command args url
    readonly backend default_backend interaction interaction_prompt interaction_model await when not
    as with enum fresh inherit artifacts_only fork fan_out_all condition round_robin llm multi
    wait_all best_effort true false string bool int float json max_parallel_branches max_duration
    max_cost_usd max_tokens max_iterations done fail pattern min_length max_length min max presets duration
    event timeout""".split()
)

#: Keywords that cannot be used as names (Iterion's rule, kept so its files keep their meaning).
NOT_NAMES = frozenset(
    "join readonly default_backend interaction interaction_prompt interaction_model fork "
    "round_robin llm multi".split()
)


@dataclass(slots=True)
class Token:
    kind: str
    value: str
    line: int
    column: int
    first: bool = False  # first token on its line
    style: str = '"'  # STRING only: '"', '`' (raw string) or '|' (block scalar), as written

    @property
    def pos(self) -> Pos:
        return Pos(self.line, self.column)

    def describe(self) -> str:
        """How messages name this token: its text, or its kind for virtual tokens."""
        if self.kind == STRING:
            return f'"{self.value}"'
        if self.kind in (IDENT, INT, FLOAT, PUNCT):
            return f"'{self.value}'"
        return {
            NEWLINE: "end of line",
            INDENT: "an indented block",
            DEDENT: "end of block",
            EOF: "end of file",
            PROMPTLINE: "prompt text",
        }.get(self.kind, self.kind)


@dataclass(slots=True)
class LexResult:
    tokens: list[Token]
    comments: list[Comment] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    #: (line, column) of each STRING not written in double quotes → its style ('`' or '|').
    string_styles: dict[tuple[int, int], str] = field(default_factory=dict)
    #: (line, column) of each `|` block string → (line, column) of its first body character, so
    #: positions inside the value can be pointed at.
    block_bodies: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)


_TOKEN_RE = re.compile(
    r"""
    (?P<ws>[ \t]+)
    |(?P<comment>\#\#.*)
    |(?P<arrow>->)
    |(?P<num>-?\d+(?:\.\d+)?)
    |(?P<strlist>string\[\])
    |(?P<dashed>[^\W\d]\w*(?:-(?!>)\w+)+)
    |(?P<ident>[^\W\d]\w*)
    |(?P<str>"(?:\\.|[^"\\])*")
    |(?P<unterminated>"(?:\\.|[^"\\])*)
    |(?P<raw>`[^`]*`)
    |(?P<rawopen>`[^`]*$)
    |(?P<block>\|[ \t]*(?:\#\#.*)?$)
    |(?P<punct>[:=,\[\]{}().*])
    |(?P<bad>.)
    """,
    re.VERBOSE,
)


_DECL_START = re.compile(
    r"(vars|presets|cursor|mcp_server|prompt|schema|agent|judge|router|join|human|tool|wait|workflow)\b")


def decode_source(data: bytes) -> tuple[str | None, Diagnostic | None]:
    """Decode UTF-8 (a BOM is allowed); on failure, say where the first bad byte is."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        column = len(before[before.rfind(b"\n") + 1 :].decode("utf-8", "replace")) + 1
        return None, make(
            "E100",
            f"the file is not valid UTF-8: byte 0x{data[exc.start]:02x} cannot be decoded",
            line,
            column,
        )


def _leading_spaces(line: str) -> int:
    n = 0
    for ch in line:
        if ch != " ":
            break
        n += 1
    return n


@dataclass(slots=True)
class _OpenRaw:
    """A backtick string still open at the end of a line: its text so far and where it began."""

    parts: list[str]
    line: int
    column: int
    first: bool


@dataclass(slots=True)
class _OpenBlock:
    """A `|` block scalar being read: the property line's indentation, the body's (set by its first
    line) and the lines so far (blank lines wait in ``pending_blank`` until more text follows)."""

    line: int
    column: int
    owner_indent: int
    base: int | None = None
    first_line: int = 0  # the line of the body's first text
    lines: list[str] = field(default_factory=list)
    pending_blank: int = 0


class _Lexer:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens: list[Token] = []
        self.comments: list[Comment] = []
        self.diags: list[Diagnostic] = []
        self.stack = [0]
        self.prompt_header_indent: int | None = None  # set right after a `prompt NAME:` line
        self.prompt_level: int | None = None  # body indentation while inside a prompt body
        self.pending_blank: list[int] = []  # blank lines inside a prompt body, kept if more text follows
        self.tab_reported = False
        self.paren_depth = 0  # inside [ ], { } or ( ) lines join: no NEWLINE/INDENT/DEDENT
        self.raw: _OpenRaw | None = None  # a backtick string spanning lines
        self.block: _OpenBlock | None = None  # a `|` block scalar being read
        self.string_styles: dict[tuple[int, int], str] = {}
        self.block_bodies: dict[tuple[int, int], tuple[int, int]] = {}

    def error(self, code: str, message: str, line: int, column: int, length: int = 1, hint: str | None = None) -> None:
        self.diags.append(make(code, message, line, column, length=length, hint=hint))

    def run(self) -> LexResult:
        lines = self.source.split("\n")
        lineno = 0
        for lineno, text in enumerate(lines, start=1):
            if text.endswith("\r"):
                text = text[:-1]  # CRLF line ending
            self.line(lineno, text)
        end_line = max(1, lineno)
        end_col = len(lines[-1]) + 1 if lines else 1
        if self.raw is not None:
            raw = self.raw
            self.error("E004", "unterminated raw string: no closing backtick before the end of the file",
                       raw.line, raw.column, hint="Close the string with a backtick (`); a raw string cannot "
                       "contain one, so write such text in double quotes or as a `|` block.")
            self.emit_string("\n".join(raw.parts), raw.line, raw.column, raw.first, "`")
            self.tokens.append(Token(NEWLINE, "", end_line, end_col))
            self.raw = None
        if self.block is not None:
            self.close_block()
        while len(self.stack) > 1:
            self.stack.pop()
            self.tokens.append(Token(DEDENT, "", end_line, end_col))
        self.tokens.append(Token(EOF, "", end_line, end_col))
        return LexResult(self.tokens, self.comments, self.diags, self.string_styles, self.block_bodies)

    def emit_string(self, value: str, line: int, column: int, first: bool, style: str) -> None:
        self.tokens.append(Token(STRING, value, line, column, first, style))
        self.string_styles[(line, column)] = style

    # -- strings spanning lines ----------------------------------------------------------------
    def continue_raw(self, lineno: int, text: str) -> None:
        """A line inside a backtick string: all of it is text up to a closing backtick, and what
        follows that backtick is read as the rest of the string's line."""
        raw = self.raw
        assert raw is not None
        end = text.find("`")
        if end < 0:
            raw.parts.append(text)
            return
        raw.parts.append(text[:end])
        self.raw = None
        self.emit_string("\n".join(raw.parts), raw.line, raw.column, raw.first, "`")
        self.scan(lineno, end + 1, text[end + 1 :], continued=True)

    def continue_block(self, lineno: int, text: str) -> bool:
        """A line after `key: |`: True when it belongs to the block (and was taken), False when it
        ends the block (the block's STRING has been emitted; the line is then read as usual).

        The block is every line indented deeper than the property line; the first one sets how
        much indentation is stripped, and deeper lines keep the rest. Blank lines inside are kept,
        blank lines at the end are not; the value ends with one newline (YAML's `|`, "clip")."""
        block = self.block
        assert block is not None
        n = _leading_spaces(text)
        if text[n:].strip(" \t") == "":
            if block.lines:
                block.pending_blank += 1
            return True
        if block.base is None:
            if n <= block.owner_indent:
                self.close_block()
                return False
            block.base = n
            block.first_line = lineno
        if n < block.base:
            self.close_block()
            return False
        block.lines.extend([""] * block.pending_blank)
        block.pending_blank = 0
        block.lines.append(text[block.base :])
        return True

    def close_block(self) -> None:
        block = self.block
        assert block is not None
        self.block = None
        value = "\n".join(block.lines) + "\n" if block.lines else ""
        self.emit_string(value, block.line, block.column, False, "|")
        if block.base is not None:
            self.block_bodies[(block.line, block.column)] = (block.first_line, block.base + 1)
        self.tokens.append(Token(NEWLINE, "", block.line, block.column + 1))

    # -- one physical line ---------------------------------------------------------------------
    def line(self, lineno: int, text: str) -> None:
        if self.raw is not None:
            self.continue_raw(lineno, text)
            return
        if self.block is not None and self.continue_block(lineno, text):
            return
        n = _leading_spaces(text)
        rest = text[n:]
        blank = rest.strip(" \t") == ""

        if self.prompt_level is not None:
            if blank:
                self.pending_blank.append(lineno)
                return
            if n >= self.prompt_level:
                self.flush_blank_prompt_lines()
                self.tokens.append(Token(PROMPTLINE, text[self.prompt_level :], lineno, self.prompt_level + 1, True))
                return
            self.end_prompt()

        if blank:
            return

        if self.paren_depth > 0:
            if n == 0 and _DECL_START.match(rest):
                self.paren_depth = 0  # recover from an unclosed bracket; the parser reports it
            else:
                if not rest.startswith("##"):
                    self.scan(lineno, n, rest)
                else:
                    self.comments.append(Comment(rest[2:].strip(), Pos(lineno, n + 1)))
                return

        if self.prompt_header_indent is not None and rest.startswith("##") and n <= self.prompt_header_indent:
            self.comments.append(Comment(rest[2:].strip(), Pos(lineno, n + 1)))
            return  # a comment between `prompt NAME:` and its body keeps the body

        if self.prompt_header_indent is not None:
            header_indent, self.prompt_header_indent = self.prompt_header_indent, None
            if n > header_indent and not rest.startswith("\t"):
                self.push_indent(n, lineno)
                self.prompt_level = n
                self.tokens.append(Token(PROMPTLINE, text[n:], lineno, n + 1, True))
                return

        if rest.startswith("##"):
            self.comments.append(Comment(rest[2:].strip(), Pos(lineno, n + 1)))
            return

        if rest.startswith("\t"):
            if not self.tab_reported:  # once per file: a tab-indented file would repeat it per line
                self.tab_reported = True
                self.error(
                    "E003",
                    "tab character in indentation; .iter files indent with spaces",
                    lineno,
                    n + 1,
                    hint="Replace tabs with spaces (2 per level); `iterloop fmt` cannot fix a file it cannot parse.",
                )
            # recover: read a tab as two spaces so a consistently tab-indented file still parses
            lead = len(rest) - len(rest.lstrip(" \t"))
            n += rest[:lead].count(" ") + 2 * rest[:lead].count("\t")
            rest = rest[lead:]

        self.indent_to(n, lineno)
        self.scan(lineno, n, rest)

    def push_indent(self, n: int, lineno: int) -> None:
        if len(self.stack) >= MAX_NESTING:
            self.error("E003", f"nesting deeper than {MAX_NESTING} levels", lineno, 1)
            return
        self.stack.append(n)
        self.tokens.append(Token(INDENT, "", lineno, 1))

    def indent_to(self, n: int, lineno: int) -> None:
        top = self.stack[-1]
        if n > top:
            self.push_indent(n, lineno)
        elif n < top:
            levels = ", ".join(str(level) for level in self.stack)
            # Pop the levels the line is clearly out of; a line between two levels stays in the
            # deeper block (the one the user was writing), which is the most useful recovery.
            while len(self.stack) > 1 and self.stack[-2] >= n:
                self.stack.pop()
                self.tokens.append(Token(DEDENT, "", lineno, 1))
            if self.stack[-1] != n:
                self.error(
                    "E003",
                    f"indentation of {n} spaces matches no enclosing block (open levels: {levels} spaces)",
                    lineno,
                    1,
                    length=max(1, n),
                    hint="Indent the line exactly like the lines of the block it belongs to.",
                )

    def flush_blank_prompt_lines(self) -> None:
        for blank_line in self.pending_blank:
            self.tokens.append(Token(PROMPTLINE, "", blank_line, (self.prompt_level or 0) + 1, True))
        self.pending_blank.clear()

    def end_prompt(self) -> None:
        assert self.prompt_level is not None
        if self.stack[-1] >= self.prompt_level and len(self.stack) > 1:
            self.stack.pop()
            self.tokens.append(Token(DEDENT, "", self.tokens[-1].line, 1))
        self.prompt_level = None
        self.pending_blank.clear()

    # -- tokens of one line --------------------------------------------------------------------
    def scan(self, lineno: int, offset: int, rest: str, *, continued: bool = False) -> None:
        """Tokens of one line (``continued``: the rest of a line a backtick string ended on, whose
        string token is already out, so the line still ends with a NEWLINE)."""
        emitted_start = len(self.tokens)
        first = True
        for m in _TOKEN_RE.finditer(rest):
            kind = m.lastgroup
            col = offset + m.start() + 1
            value = m.group()
            if kind == "ws":
                continue
            if kind == "comment":
                self.comments.append(Comment(value[2:].strip(), Pos(lineno, col), inline=True))
                break
            if kind == "ident":
                tok = Token(IDENT, value, lineno, col, first)
            elif kind == "str":
                tok = Token(STRING, value[1:-1], lineno, col, first)
            elif kind == "raw":
                self.emit_string(value[1:-1], lineno, col, first, "`")
                first = False
                continue
            elif kind == "rawopen":
                self.raw = _OpenRaw([value[1:]], lineno, col, first)
                return  # the string goes on: this line ends when the string does
            elif kind == "block":
                line_tokens = self.tokens[emitted_start:]
                after_colon = bool(line_tokens) and line_tokens[-1].kind == PUNCT and line_tokens[-1].value == ":"
                if not after_colon or self.paren_depth > 0:
                    self.error("E001", "'|' opens a block string only at the end of a line, right after a "
                               "property's ':'", lineno, col,
                               hint="Write `command: |` and the text indented on the lines below it.")
                    continue
                comment = value.find("##")
                if comment >= 0:
                    self.comments.append(Comment(value[comment + 2 :].strip(), Pos(lineno, col + comment), inline=True))
                self.block = _OpenBlock(lineno, col, self.stack[-1])
                return  # the STRING and the NEWLINE come when the block ends
            elif kind == "num":
                tok = Token(FLOAT if "." in value else INT, value, lineno, col, first)
            elif kind in ("punct", "arrow"):
                tok = Token(PUNCT, value, lineno, col, first)
                if value in "[{(":
                    self.paren_depth += 1
                elif value in "]})" and self.paren_depth > 0:
                    self.paren_depth -= 1
            elif kind == "dashed":
                fixed = value.replace("-", "_")
                self.diags.append(make("E001", f"'{value}' is not a valid name: names cannot contain '-'", lineno,
                                       col, length=len(value), hint=f"Use '_' instead: {fixed}."))
                tok = Token(IDENT, fixed, lineno, col, first)
            elif kind == "strlist":
                tok = Token(IDENT, "string[]", lineno, col, first)
            elif kind == "unterminated":
                self.error("E004", "unterminated string literal", lineno, col, len(value))
                tok = Token(STRING, value[1:], lineno, col, first)
            else:  # bad character
                self.report_bad_char(value, lineno, col)
                continue
            self.tokens.append(tok)
            first = False
        line_tokens = self.tokens[emitted_start:]
        if (line_tokens or continued) and self.paren_depth == 0:
            self.tokens.append(Token(NEWLINE, "", lineno, offset + len(rest) + 1))
            if (
                offset == 0
                and len(line_tokens) == 3
                and line_tokens[0].value == "prompt"
                and line_tokens[0].kind == IDENT
                and line_tokens[1].kind == IDENT
                and line_tokens[2].value == ":"
            ):
                self.prompt_header_indent = offset

    def report_bad_char(self, ch: str, lineno: int, col: int) -> None:
        if ch == "#":
            msg, hint = "a single '#' is not a comment", "Comments start with '##'."
        elif ch == "'":
            msg, hint = "single quotes are not strings", 'Use double quotes: "text".'
        elif ch == "-":
            msg, hint = "unexpected '-'", "Names use letters, digits and '_' (no '-'); edges use '->'."
        elif ch == "|":
            msg = "unexpected '|'"
            hint = "A '|' opens a block string only at the end of a line, after a property's ':'."
        elif ch == "\r":
            msg, hint = "stray carriage return", "Save the file with LF or CRLF line endings."
        else:
            msg, hint = f"unexpected character {ch!r}", None
        self.diags.append(make("E001", msg, lineno, col, hint=hint))


def lex(source: str) -> LexResult:
    """Tokenise ``source``. Never raises; problems come back as diagnostics."""
    if len(source.encode("utf-8", "surrogatepass")) > MAX_SOURCE_BYTES:
        return LexResult(
            [Token(EOF, "", 1, 1)],
            [],
            [
                make(
                    "E001",
                    f"source is larger than the {MAX_SOURCE_BYTES // (1024 * 1024)} MiB limit",
                    1,
                    1,
                    hint="Split the workflow into smaller files.",
                )
            ],
        )
    return _Lexer(source).run()

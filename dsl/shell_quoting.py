"""Where each `{{…}}` of a shell `command:` sits, as `sh` would read the command.

Why this exists: a template value reaches the command as a shell parameter expansion (see
`workflows/inputs.py::render_command`), which the shell never re-reads as code. That holds for the
shell that runs the command, but not for a program *inside* a quoted string: in
`sh -c 'echo {{vars.x}}'`, `awk '{print "{{vars.x}}"}'` or `python -c "…{{vars.x}}…"` the quoted
text is a program for another interpreter, and a value spliced into it becomes code there. The
compiler therefore refuses a template inside quotes, an escape, or a here-document (**C116**),
and the renderer uses the same reading to decide how to write each reference.

The lexer follows POSIX `sh` (dash, `/bin/sh` on the worker images): `'…'` ends at the next `'`
with no escapes; inside `"…"` a backslash escapes only `$`, `` ` ``, `"`, `\\` and newline, and
`$(…)` and backquotes open a nested command whose quotes are its own; an unquoted `#` at the start
of a word begins a comment; `<<WORD` / `<<-WORD` bodies start after the next newline and end at a
line equal to WORD. It is a reader of quoting, not a full parser: `case` patterns with an unmatched
`)` inside `$(…)` can end the substitution early (the result is then more cautious, not less).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .templates import extract_refs, ref_offsets

#: Where a template sits. Only `unquoted` (a word, or part of one, of the command or of a `$(…)`
#: or backquoted command inside it) and `comment` are accepted in a `command:`.
Place = Literal["unquoted", "comment", "single", "double", "escaped", "heredoc"]
SAFE_PLACES: frozenset[str] = frozenset({"unquoted", "comment"})

_WORD_BREAK = frozenset(" \t\n;&|()<>")
_DOUBLE_ESCAPES = frozenset('$`"\\\n')


@dataclass(frozen=True, slots=True)
class TemplatePlace:
    """One `{{…}}` of a command: its offset, its length, and where it sits."""

    offset: int
    length: int
    place: Place


def template_places(command: str) -> list[TemplatePlace]:
    """Each template of ``command``, left to right, with the quoting context it is in.

    Returns [] when the command has a malformed template (C004 reports that).
    """
    try:
        raws = [ref.raw for ref in extract_refs(command)]
    except ValueError:
        return []
    starts = ref_offsets(command)
    places = _Lexer(command, dict(zip(starts, raws, strict=True))).run()
    # A template the lexer stepped over is part of a here-document's delimiter (`<<{{…}}`).
    return [TemplatePlace(offset, len(raw), places.get(offset, "heredoc"))
            for offset, raw in zip(starts, raws, strict=True)]


#: Programs whose next argument (after the flag) is code: a template there is run as code.
_CODE_FLAGS: dict[str, frozenset[str]] = {
    "-c": frozenset({"sh", "bash", "dash", "zsh", "ksh", "python", "python3"}),
    "-e": frozenset({"node", "perl", "ruby"}),
}


def program_taking_code(command: str, place: TemplatePlace) -> str | None:
    """The interpreter an unquoted template is the *program* of (`eval {{…}}`, `sh -c {{…}}`,
    `python3 -c {{…}}`, `node -e {{…}}`), or None. A value there is code by design: C117 warns."""
    if place.place != "unquoted" or (place.offset and not command[place.offset - 1].isspace()):
        return None
    words = command[: place.offset].split()
    if words and words[-1] == "eval":
        return "eval"
    if len(words) >= 2:
        program = words[-2].rsplit("/", 1)[-1]
        if program in _CODE_FLAGS.get(words[-1], frozenset()):
            return f"{program} {words[-1]}"
    return None


@dataclass(slots=True)
class _Frame:
    kind: Literal["top", "subst", "bq", "single", "double"]
    depth: int = 0  # open parentheses of a `$(…)`


class _Lexer:
    """A single left-to-right pass over the command with a stack of nested contexts.

    Frames: `top` and `subst` (`$(…)`, counting parentheses) and `bq` (backquotes) read unquoted
    text; `double` and `single` are quoted strings. A template inside any `double` frame counts as
    double-quoted, even inside a `$(…)` nested in it: refusing that rare form is the cautious side.
    """

    def __init__(self, text: str, templates: dict[int, str]) -> None:
        self.text = text
        self.templates = templates
        self.places: dict[int, Place] = {}
        self.stack: list[_Frame] = [_Frame("top")]
        self.heredocs: list[tuple[str, bool]] = []  # (delimiter, strip leading tabs), waiting for a newline

    def run(self) -> dict[int, Place]:
        text, i = self.text, 0
        while i < len(text):
            if i in self.templates:
                self.places[i] = self._place()
                i += len(self.templates[i])
                continue
            i = self._step(i)
        return self.places

    def _place(self) -> Place:
        kinds = [frame.kind for frame in self.stack]
        if "double" in kinds:
            return "double"
        if kinds[-1] == "single":
            return "single"
        return "unquoted"

    def _step(self, i: int) -> int:
        text, frame = self.text, self.stack[-1]
        kind, c = frame.kind, self.text[i]
        if kind == "single":
            if c == "'":
                self.stack.pop()
            return i + 1
        if kind == "double":
            if c == "\\":
                return self._escape(i, i + 2 if text[i + 1 : i + 2] in _DOUBLE_ESCAPES else i + 1)
            if c == '"':
                self.stack.pop()
                return i + 1
            return self._dollar_or_backquote(i)
        # unquoted frames: top, subst, bq
        if c == "\\":
            return self._escape(i, i + 2)
        if c == "'":
            self.stack.append(_Frame("single"))
            return i + 1
        if c == '"':
            self.stack.append(_Frame("double"))
            return i + 1
        if c == "`" and kind == "bq":
            self.stack.pop()
            return i + 1
        if c == "#" and (i == 0 or text[i - 1] in _WORD_BREAK):
            return self._comment(i)
        if text.startswith("<<<", i):
            return i + 3  # a here-string: an ordinary word follows
        if text.startswith("<<", i):
            return self._heredoc_operator(i)
        if c == "\n" and self.heredocs:
            return self._heredoc_bodies(i + 1)
        if kind == "subst":
            if c == "(":
                frame.depth += 1
            elif c == ")":
                frame.depth -= 1
                if frame.depth == 0:
                    self.stack.pop()
                return i + 1
        return self._dollar_or_backquote(i)

    def _dollar_or_backquote(self, i: int) -> int:
        text = self.text
        if text.startswith("$(", i):
            self.stack.append(_Frame("subst", 1))
            return i + 2
        if text[i] == "`":
            self.stack.append(_Frame("bq"))
        return i + 1

    def _escape(self, i: int, end: int) -> int:
        """A backslash: a template right after it is `escaped` (its first brace is literal)."""
        if i + 1 in self.templates:
            self.places[i + 1] = "double" if self._place() == "double" else "escaped"
            return i + 1 + len(self.templates[i + 1])
        return end

    def _comment(self, i: int) -> int:
        end = self.text.find("\n", i)
        end = len(self.text) if end < 0 else end
        for offset in self.templates:
            if i <= offset < end:
                self.places[offset] = "comment"
        return end

    def _heredoc_operator(self, i: int) -> int:
        text, j = self.text, i + 2
        strip_tabs = text.startswith("-", j)
        j += strip_tabs
        while j < len(text) and text[j] in " \t":
            j += 1
        word: list[str] = []
        quote = ""
        while j < len(text) and (quote or text[j] not in _WORD_BREAK):
            c = text[j]
            if quote and c == quote:
                quote = ""
            elif not quote and c in "'\"":
                quote = c
            elif c == "\\" and quote != "'" and j + 1 < len(text):
                j += 1
                word.append(text[j])
            else:
                word.append(c)
            j += 1
        if word:
            self.heredocs.append(("".join(word), strip_tabs))
        return j

    def _heredoc_bodies(self, i: int) -> int:
        """Skip the bodies of the pending here-documents, marking templates in them."""
        text = self.text
        for delimiter, strip_tabs in self.heredocs:
            while i < len(text):
                end = text.find("\n", i)
                end = len(text) if end < 0 else end
                line = text[i:end].lstrip("\t") if strip_tabs else text[i:end]
                if line == delimiter:
                    i = end + 1
                    break
                for offset in self.templates:
                    if i <= offset < end:
                        self.places[offset] = "heredoc"
                i = end + 1
        self.heredocs = []
        return i

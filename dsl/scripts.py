"""Inline tool scripts (`script:` + `language:`, current Iterion): interpreters and rendering.

A script is the workflow author's code, trusted like a `command:`. Template values are not: in
Iterion they are spliced into the script text (`{{ref}}` as a JSON literal, `{{!ref}}` raw), so a
value holding `"; process.exit(1); "` would run. Here no value is ever part of the script text:
each template becomes an expression of the script's own language that reads the value from an
environment variable (`ITERLOOP_VALUE_n`, the same channel as a command's values, see
docs/security.md):

- outside a string literal, `{{ref}}` and `{{!ref}}` read the value with its JSON type
  (`const pkgs = {{!input.packages}};` gets the list; a string stays a string);
- inside a `"…"` or `'…'` literal (or a JS `` `…` `` template), they read the value as text (a
  string as it is, anything else as JSON), joined to the literal around it;
- in `sh` and `bash` scripts, as in a command: `"${ITERLOOP_VALUE_n}"`, and the quoting check
  (C116) applies.

The quote tracking is a small lexer (quotes, backslash escapes, `//`/`#` comments), not a
parser. Pure module: the compiler checks with it and the workflow renders with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .templates import MISSING, Lookup, extract_refs, ref_offsets

#: `language:` → the program that runs the script (Iterion's spellings; empty means `sh`).
INTERPRETERS: dict[str, str] = {
    "sh": "sh", "bash": "bash",
    "js": "node", "node": "node",
    "py": "python3", "python": "python3", "python3": "python3",
}
#: The environment variable holding the script text itself (the value prefix keeps `${ENV}`
#: expansion on the worker away from it).
SCRIPT_ENV = "ITERLOOP_VALUE_0"


def interpreter(language: str) -> str | None:
    """The program for ``language`` (`sh` when empty), or None for a language iterloop does not run."""
    return INTERPRETERS.get(language or "sh")


def command_for(language: str) -> str:
    """The shell command that runs the script held in `SCRIPT_ENV` in the run's directory.

    The text goes as the interpreter's code argument (`-c`/`-e`), never through the command line's
    own parsing, so a script needs no escaping and the process's stdin stays free.
    """
    program = interpreter(language) or "sh"
    flag = "-e" if program == "node" else "-c"
    return f'{program} {flag} "${{{SCRIPT_ENV}}}"'


@dataclass(frozen=True, slots=True)
class ScriptPlace:
    """One template in a script: where it is, and the string quote around it ("" when none)."""

    offset: int
    length: int
    quote: str


def script_places(script: str, language: str) -> list[ScriptPlace]:
    """Each template of a js/py script, left to right, with the quote it sits in.

    Raises `templates.TemplateError` on a malformed template (as `extract_refs`)."""
    refs = extract_refs(script)
    starts = ref_offsets(script)
    program = interpreter(language)
    places: list[ScriptPlace] = []
    quote = ""
    i = 0
    k = 0
    n = len(script)
    while i < n and k < len(starts):
        if i == starts[k]:
            places.append(ScriptPlace(i, len(refs[k].raw), quote))
            i += len(refs[k].raw)
            k += 1
            continue
        c = script[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if script.startswith(quote, i):
                i += len(quote)
                quote = ""
                continue
        elif program == "python3" and script.startswith(('"""', "'''"), i):
            quote = script[i : i + 3]
            i += 3
            continue
        elif c in "\"'" or (c == "`" and program == "node"):
            quote = c
        elif (c == "#" and program == "python3") or (program == "node" and script.startswith("//", i)):
            end = script.find("\n", i)
            # a template in a comment is left as written (it is not code), so skip it
            while k < len(starts) and starts[k] < (end if end >= 0 else n):
                k += 1
            i = end if end >= 0 else n
            continue
        i += 1
    return places


def _typed(program: str, name: str) -> str:
    if program == "node":
        return f"JSON.parse(process.env.{name})[0]"
    return f'__import__("json").loads(__import__("os").environ["{name}"])[0]'


def _text(program: str, name: str, quote: str) -> str:
    if program == "node":
        read = f"process.env.{name}"
        return f"${{{read}}}" if quote == "`" else f"{quote} + {read} + {quote}"
    return f'{quote} + __import__("os").environ["{name}"] + {quote}'


@dataclass(frozen=True, slots=True)
class RenderedScript:
    """A script ready to run: the text (no values in it) and each value's variable → (ref, value)."""

    text: str
    values: list[tuple[str, str, Any]]


def render_script(script: str, language: str, lookup: Lookup, first: int = 1) -> RenderedScript:
    """Replace each template of ``script`` by code that reads its value from `ITERLOOP_VALUE_n`
    (n from ``first``). A value read with its type travels wrapped in a one-element list, so its
    JSON text keeps strings strings; a template with no value stays as written."""
    program = interpreter(language) or "sh"
    refs = extract_refs(script)
    by_offset = dict(zip(ref_offsets(script), refs, strict=True))
    out: list[str] = []
    values: list[tuple[str, str, Any]] = []
    pos = 0
    for place in script_places(script, language):
        ref = by_offset[place.offset]
        value = lookup(ref)
        out.append(script[pos : place.offset])
        pos = place.offset + place.length
        if value is MISSING or (value is None and place.quote):
            out.append(ref.raw)
            continue
        name = f"ITERLOOP_VALUE_{first + len(values)}"
        if place.quote:
            values.append((name, ref.raw, value))
            out.append(_text(program, name, place.quote))
        else:
            values.append((name, ref.raw, [value]))
            out.append(_typed(program, name))
    out.append(script[pos:])
    return RenderedScript("".join(out), values)

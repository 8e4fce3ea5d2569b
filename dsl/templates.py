"""`{{namespace.path}}` templates: extraction (compile time) and rendering (run time).

Both live here so the compiler and the interpreter can never disagree on what a reference is.
Rendering is pure: the caller supplies a lookup function, so workflow code can use it without I/O.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .ir import Ref

NAMESPACES = ("vars", "input", "outputs", "artifacts", "loop", "run")
#: What `{{loop.NAME.FIELD}}` and `{{run.FIELD}}` may read (the workflow fills them in as it runs).
LOOP_FIELDS = ("iteration", "max", "previous_output")
RUN_FIELDS = ("id", "elapsed_seconds", "cost_usd", "tokens")
#: Upstream Iterion namespaces iterloop has no values for: `{{attachments.NAME}}` (vision uploads,
#: an ignored `attachments:` block, C118) is not a reference here, so it stays as written.
UNSUPPORTED_NAMESPACES = ("attachments",)


class TemplateError(ValueError):
    """A malformed template; ``offset`` is where the bad `{{` starts in the text."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


def _scan(text: str) -> list[tuple[int, int, Ref]]:
    """(start, end, ref) for each `{{…}}`; raises TemplateError on the first malformed one."""
    found: list[tuple[int, int, Ref]] = []
    pos = 0
    while True:
        start = text.find("{{", pos)
        if start < 0:
            return found
        end = text.find("}}", start + 2)
        if end < 0:
            raise TemplateError("unterminated template expression: '{{' without '}}'", start)
        raw = text[start : end + 2]
        expr = text[start + 2 : end].strip()
        # Iterion's raw form `{{!ref}}` (unescaped splice) is the same reference here: a value is
        # never spliced into code in iterloop (commands and scripts read it from the environment),
        # so there is nothing to escape or not (docs/language.md, "Iterion compatibility").
        expr = expr[1:].lstrip() if expr.startswith("!") else expr
        parts = expr.split(".")
        if len(parts) < 2:
            raise TemplateError(
                f"template reference {raw!r} lacks the namespace.path form "
                f"(expected one of {', '.join(n + '.…' for n in NAMESPACES)})",
                start,
            )
        if parts[0] in UNSUPPORTED_NAMESPACES and len(parts) >= 2:
            pos = end + 2
            continue
        if parts[0] not in NAMESPACES:
            raise TemplateError(
                f"unknown template namespace {parts[0]!r} in {raw!r}; expected {', '.join(NAMESPACES)}",
                start,
            )
        if parts[0] == "loop" and (len(parts) < 3 or parts[2] not in LOOP_FIELDS):
            raise TemplateError(f"{raw!r} reads a loop as loop.NAME.FIELD with FIELD one of {', '.join(LOOP_FIELDS)}",
                                start)
        if parts[0] == "run" and (len(parts) != 2 or parts[1] not in RUN_FIELDS):
            raise TemplateError(f"{raw!r}: a run reference is run.FIELD with FIELD one of {', '.join(RUN_FIELDS)}",
                                start)
        found.append((start, end + 2, Ref(kind=parts[0], path=parts[1:], raw=raw)))  # type: ignore[arg-type]
        pos = end + 2


def extract_refs(text: str) -> list[Ref]:
    """All references in ``text``, left to right. Raises TemplateError if any is malformed."""
    return [ref for _, _, ref in _scan(text)]


def ref_offsets(text: str) -> list[int]:
    """Start offset of each reference, parallel to extract_refs (for diagnostics)."""
    try:
        return [start for start, _, _ in _scan(text)]
    except TemplateError:
        return []


Lookup = Callable[[Ref], Any]
MISSING: Any = object()


def to_text(value: Any) -> str:
    """How a value appears inside text: strings as they are, everything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def render(text: str, lookup: Lookup, *, as_text: Callable[[Any], str] = to_text) -> str:
    """Interpolate every reference; a reference the lookup cannot resolve stays as written.

    ``as_text`` turns a value into text (the runtime passes one that knows artifact references).
    """
    out: list[str] = []
    pos = 0
    for start, end, ref in _scan(text):
        value = lookup(ref)
        out.append(text[pos:start])
        out.append(ref.raw if value is MISSING else as_text(value))
        pos = end
    out.append(text[pos:])
    return "".join(out)


def evaluate_mapping(raw: str, lookup: Lookup, *, as_text: Callable[[Any], str] = to_text) -> Any:
    """A `with` value: one reference and nothing else keeps its type; anything else is text."""
    spans = _scan(raw)
    if len(spans) == 1:
        start, end, ref = spans[0]
        if raw[:start].strip() == "" and raw[end:].strip() == "":
            value = lookup(ref)
            return ref.raw if value is MISSING else value
    return render(raw, lookup, as_text=as_text)

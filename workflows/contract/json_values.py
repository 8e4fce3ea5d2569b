"""The one way run data given as JSON is read: bounded in size and depth, finite numbers only.

Run data enters in many places: `--var` and `--input`, answers files and presets (YAML, a
superset of JSON), the REST API's bodies, Slack's interaction payloads, the dashboard's gate
forms. Python's `json` accepts things a run cannot use: `NaN` and `Infinity` (and `1e999`, which
becomes infinity) are not JSON and turn into `null` once the run's state is serialised, and a
deeply nested value (`[[[[…`) overflows the parser's recursion (`RecursionError`, a traceback) or
every later walk over the state. So every entry point reads through `load_json` (text) or checks
with `check_json_value` (data another parser built: YAML, FastAPI's body), and a problem is one
`JsonValueError` whose message names the input and says what to give instead.

The limits (docs/security.md, "Bad input"): `MAX_JSON_BYTES` of text and `MAX_JSON_DEPTH` levels
of nesting per value.
"""

from __future__ import annotations

import math
import re
from typing import Any

from workflows.contract.artifact_refs import RESERVED_KEYS

#: The largest JSON text accepted for one value (a `--var`, `--input`, a Slack payload); the REST
#: API's whole body has its own limit (ITERLOOP_API_MAX_BODY_BYTES, 1 MiB by default).
MAX_JSON_BYTES = 1024 * 1024

#: The deepest nesting of arrays and objects accepted; real run data nests a handful of levels.
MAX_JSON_DEPTH = 64

#: What the depth scan looks at: strings (skipped whole, brackets inside them do not count) and brackets.
_DEPTH_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


class JsonValueError(ValueError):
    """A JSON value iterloop refuses; the message names the input and the fix."""


class JsonSyntaxError(JsonValueError):
    """The text is not JSON at all (as opposed to JSON iterloop refuses: too large, too deep, NaN)."""


def _reject_constant(name: str) -> Any:
    raise JsonValueError(f"{name} is not a JSON number; give a finite number (or null)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonValueError(f"{text} is too large for a number; give a finite number")
    return value


def text_depth(text: str) -> int:
    """How deeply the arrays and objects of JSON ``text`` nest (brackets inside strings do not count)."""
    depth = deepest = 0
    for match in _DEPTH_TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth -= 1
    return deepest


def load_json(text: str | bytes, *, what: str, fix: str = "", max_bytes: int = MAX_JSON_BYTES) -> Any:
    """The value of JSON ``text`` given as ``what`` (e.g. `--var x`); `JsonValueError` when it is not
    JSON, larger than ``max_bytes``, too deep, or holds NaN/Infinity. ``fix`` ends the message (an
    example to give)."""
    tail = f"; {fix}" if fix else ""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise JsonValueError(f"{what} is not UTF-8 text{tail}") from None
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise JsonValueError(f"{what} is {size:,} bytes of JSON, more than the limit of {max_bytes:,}{tail}")
    depth = text_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise JsonValueError(f"{what} nests {depth} levels deep, more than the limit of {MAX_JSON_DEPTH}{tail}")
    import json

    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except JsonValueError as exc:
        raise JsonValueError(f"{what}: {exc}{tail}") from None
    except ValueError as exc:  # json.JSONDecodeError, or an integer with too many digits
        raise JsonSyntaxError(f"{what} is not valid JSON ({_first_line(exc)}){tail}") from None
    except RecursionError:  # not reachable under the depth limit; kept so no traceback escapes
        raise JsonValueError(f"{what} nests too deeply (limit {MAX_JSON_DEPTH} levels){tail}") from None
    problem = value_problem(value)
    if problem is not None:
        raise JsonValueError(f"{what}: {problem}{tail}")
    return value


def value_problem(value: Any, *, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """Why ``value`` (built by another parser: YAML, a request body) is not usable run data, or None:
    a NaN or infinite number, nesting deeper than ``max_depth``, or a key iterloop reserves for stored
    outputs (`$artifact`, `$artifact_ref`: data shaped like a reference must never make an activity
    read a stored output the run did not record). Iterative, so a deep value cannot overflow the
    stack here."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return f"{item!r} is not a finite number; JSON has no NaN or Infinity, give a number or null"
        if isinstance(item, dict) and RESERVED_KEYS.intersection(item):
            key = min(RESERVED_KEYS.intersection(item))
            return (f"it holds the key {key!r}, which iterloop reserves for the references to outputs it stored "
                    "itself; rename the key")
        if isinstance(item, (dict, list, tuple)):
            if depth + 1 > max_depth:
                return f"it nests more than {max_depth} levels deep (the limit)"
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return None


def check_json_value(value: Any, *, what: str, fix: str = "") -> Any:
    """``value`` unchanged if `value_problem` finds nothing; `JsonValueError` naming ``what`` otherwise."""
    problem = value_problem(value)
    if problem is not None:
        raise JsonValueError(f"{what}: {problem}" + (f"; {fix}" if fix else ""))
    return value


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]

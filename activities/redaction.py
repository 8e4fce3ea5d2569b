"""Take the worker's secrets out of text before it leaves an activity.

Everything an activity returns, raises or heartbeats is written to Temporal's history, and from
there reaches events, reports, `inspect`, the Web UI and the worker's log. Secrets live in the
worker's environment and must stay there, so this module removes them from that text:

- **Values of secret variables**: every environment variable whose name ends in `_KEY`, `_TOKEN`,
  `_TOKENS`, `_SECRET` or `_PASSWORD` (or is `KEY`, `TOKEN`, `SECRET`, `PASSWORD`), or contains
  `PASSWORD`, `PASSWD` or `SECRET`, and every name listed in `ITERLOOP_SECRET_VARS` (comma- or
  space-separated), becomes `[redacted:NAME]` wherever its value appears (also percent-encoded,
  and each line of a multi-line value such as a PEM key).
- **Secret-shaped text**, whatever variable (if any) it came from: a URL's userinfo password
  (`postgresql://bi:[redacted]@db/x`) or a long user name standing for a token
  (`https://[redacted]@github.com/o/r.git`), a parameter such as `password=`, `token=`, `api_key=`,
  `access_token=`, `sig=`, `signature=` or `*_secret=` in a query string, a DSN, a `NAME=value`
  line or a JSON object (`"password": "[redacted]"`), and an `Authorization:` header's credentials.

**Short values are not redacted as free text.** A value shorter than `MIN_SECRET_LENGTH` (6)
characters (`KEY=1`, `X_TOKEN=abc`) would turn every `1` or `abc` of ordinary output into a
marker; such a value is no real credential anyway. The secret-shaped forms above still hide it
where it sits in a URL or a parameter.

The environment is read at each call, not once: a variable set after the worker started (by a
test, or by code that embeds the worker) is covered too. Only the compiled pattern is
cached, keyed by the secret values themselves. `redact` is idempotent: markers are never
redacted again.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, Final
from urllib.parse import quote

from pydantic import BaseModel

#: The setting naming more variables whose values are secret (e.g. `DUCKDB_PATH,WAREHOUSE_URL`).
SECRET_VARS_SETTING: Final = "ITERLOOP_SECRET_VARS"
#: Variable names ending like these hold secrets (compared case-insensitively)...
SECRET_NAME_SUFFIXES: Final = ("_KEY", "_TOKEN", "_TOKENS", "_SECRET", "_PASSWORD")
#: ... and so do names containing these anywhere (`PGPASSWORD`, `AWS_SECRET_ACCESS_KEY`).
SECRET_NAME_PARTS: Final = ("PASSWORD", "PASSWD", "SECRET")
#: Shorter values are not searched for in free text (see the module docstring).
MIN_SECRET_LENGTH: Final = 6
#: What a URL password, a secret parameter or an Authorization header's credentials become.
MARKER: Final = "[redacted]"

_MARKERS = r"\[redacted(?::[^\]\s]*)?\]"
# `scheme://user:password@`: greedy up to the last `@` before the path, so an unencoded `@` in the
# password does not leave its tail behind.
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^:/?#@\s]*):(?P<password>[^\s/?#]*)@")
# `scheme://TOKEN@host`: a user name alone (GitHub and GitLab take a token there). User names of 20
# characters or more are rare, tokens are longer, so a long one is taken for a credential.
_TOKEN_AS_USER = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^:/?#@\s\[]{20,})@")
# `name=value` where the name is not the tail of a longer word (`?`, `&`, `;`, a space, a quote or
# the start precede it): query strings, DSNs (`host=db password=x`), env dumps (`API_TOKEN=x`).
_ASSIGNMENT = re.compile(r"(?<![\w.\-])(?P<name>[A-Za-z][\w.\-]*)=(?P<value>[^\s&#;,'\"]+)")
_JSON_MEMBER = re.compile(r"\"(?P<name>[A-Za-z][\w.\-]*)\"\s*:\s*\"(?P<value>(?:[^\"\\]|\\.)*)\"")
_AUTHORIZATION = re.compile(r"(?i)\b(?P<head>(?:proxy-)?authorization\s*[:=]\s*(?:(?:bearer|basic|token)\s+)?)"
                            r"(?P<value>[^\s,;\"']+)")
# Parameter names that carry a secret. Not a bare `*_key` (`experiment_key`, `flag_key` are data)
# nor `pwd` (the shell's working directory).
_SECRET_PARAM = re.compile(
    r"(?i)^(?:key|sig|pass|[\w.\-]*?(?:password|passwd|token|secret|signature|credentials?|"
    r"api[_\-]?key|access[_\-]?key|secret[_\-]?key|private[_\-]?key|security[_\-]?token))$")


def is_secret_name(name: str, extra: frozenset[str] = frozenset()) -> bool:
    """Whether environment variable ``name`` holds a secret: its name says so, or ``extra`` (the
    names of `ITERLOOP_SECRET_VARS`) lists it."""
    upper = name.upper()
    if upper == SECRET_VARS_SETTING:  # names, not secrets: redacting them would hide every mention
        return False
    return (name in extra or upper.endswith(SECRET_NAME_SUFFIXES)
            or any(upper == suffix[1:] for suffix in SECRET_NAME_SUFFIXES)
            or any(part in upper for part in SECRET_NAME_PARTS))


def listed_secret_vars(env: Mapping[str, str]) -> frozenset[str]:
    """The names `ITERLOOP_SECRET_VARS` lists in ``env``."""
    return frozenset(n for n in re.split(r"[\s,]+", env.get(SECRET_VARS_SETTING, "")) if n)


def secret_values(env: Mapping[str, str] | None = None) -> tuple[tuple[str, str], ...]:
    """``(value, name)`` for every secret variable of ``env`` (default: the worker's environment,
    read now) long enough to look for, with its percent-encoded form and the lines of a
    multi-line value; longest first, so a value containing another is replaced whole."""
    env = os.environ if env is None else env
    extra = listed_secret_vars(env)
    found: dict[str, str] = {}
    for name in sorted(env):
        if not is_secret_name(name, extra):
            continue
        value = env[name]
        forms = {value.strip(), quote(value.strip(), safe="")}
        forms.update(line.strip() for line in value.splitlines())
        for form in forms:
            if len(form) >= MIN_SECRET_LENGTH:
                found.setdefault(form, name)
    return tuple(sorted(found.items(), key=lambda item: (-len(item[0]), item[0])))


@lru_cache(maxsize=16)
def _values_pattern(values: tuple[tuple[str, str], ...]) -> re.Pattern[str] | None:
    if not values:
        return None
    # Markers come first in the alternation, so text already redacted is matched (and kept) whole.
    return re.compile("|".join([_MARKERS, *(re.escape(v) for v, _ in values)]))


def redact(text: str, env: Mapping[str, str] | None = None) -> str:
    """``text`` without the secrets of ``env`` (default: the worker's environment) and without
    secret-shaped URL credentials, parameters and headers (see the module docstring)."""
    if not text:
        return text
    return _redactor(env)(text)


def _redactor(env: Mapping[str, str] | None) -> Callable[[str], str]:
    """One text → text function for the secrets of ``env`` as they are now: reading the environment
    costs more than redacting a string, so `redact_data` reads it once per value, not per string."""
    values = secret_values(env)
    pattern = _values_pattern(values)
    if pattern is None:
        return redact_shapes
    names = dict(values)

    def replace(m: re.Match[str]) -> str:
        found = m.group(0)
        return f"[redacted:{names[found]}]" if found in names else found

    return lambda text: redact_shapes(pattern.sub(replace, text)) if text else text


def redact_shapes(text: str) -> str:
    """``text`` without URL passwords, secret parameters and Authorization credentials (no
    environment needed: these are secrets by their form)."""
    if "://" in text:
        text = _USERINFO.sub(lambda m: f"{m.group('head')}:{MARKER}@", text)
        text = _TOKEN_AS_USER.sub(lambda m: f"{m.group('head')}{MARKER}@", text)
    if "=" in text:
        text = _ASSIGNMENT.sub(_assignment, text)
    if '"' in text:
        text = _JSON_MEMBER.sub(_json_member, text)
    return _AUTHORIZATION.sub(lambda m: f"{m.group('head')}{MARKER}", text)


def _assignment(m: re.Match[str]) -> str:
    if not _SECRET_PARAM.match(m.group("name")) or re.fullmatch(_MARKERS, m.group("value")):
        return m.group(0)
    return f"{m.group('name')}={MARKER}"


def _json_member(m: re.Match[str]) -> str:
    if not _SECRET_PARAM.match(m.group("name")) or not m.group("value"):
        return m.group(0)
    return f"\"{m.group('name')}\": \"{MARKER}\""


def redact_data(value: Any, env: Mapping[str, str] | None = None) -> Any:
    """``value`` (strings, mappings, lists and tuples at any depth, pydantic models) with every
    string redacted; keys too. The same object is returned when nothing changed, so a clean
    result is passed on untouched."""
    return _clean(value, _redactor(env))


def _clean(value: Any, text_of: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        cleaned_text = text_of(value)
        return value if cleaned_text == value else cleaned_text
    if isinstance(value, BaseModel):
        dumped = value.model_dump(mode="json", by_alias=True)
        cleaned = _clean(dumped, text_of)
        return value if cleaned is dumped else type(value).model_validate(cleaned)
    if isinstance(value, Mapping):
        items = [(_clean(k, text_of), _clean(v, text_of)) for k, v in value.items()]
        if all(k is k0 and v is v0 for (k, v), (k0, v0) in zip(items, value.items(), strict=True)):
            return value
        return dict(items)
    if isinstance(value, list | tuple):
        cleaned_items = [_clean(v, text_of) for v in value]
        if all(c is v for c, v in zip(cleaned_items, value, strict=True)):
            return value
        return type(value)(cleaned_items) if isinstance(value, tuple) else cleaned_items
    return value


class RedactingLogFilter(logging.Filter):
    """A log handler's filter that redacts each record's message and exception text (the worker
    installs it on its one handler, so activity failures the SDK logs carry no secret)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        safe = redact(message)
        if safe != message:
            record.msg, record.args = safe, None
        if record.exc_info:
            # Formatters print `exc_text` when it is set, and only then format `exc_info`.
            record.exc_text = redact(record.exc_text or _FORMATTER.formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FORMATTER = logging.Formatter()

"""Resolve `$VAR` / `${VAR}` references against the worker's environment.

Requests built by the workflow carry the *unexpanded* text (a model name such as
`${ITERLOOP_MODEL}`, a shell command such as `curl -H "Authorization: $API_TOKEN" …`), and the
activity expands it here, on the worker. Secrets and deployment choices therefore stay on the
worker and never enter workflow history. This is the one place deep in the code that reads the
environment on purpose.

Two functions, because a shell command is not plain text:

- `expand_env` follows Go's `os.ExpandEnv` (what Iterion uses), plus Iterion's `${VAR:-default}`, for plain text.
- `expand_env_in_command` is the same syntax made safe for a `sh -c` command; see its docstring.

`truthy` reads an on/off environment value (`ITERLOOP_OFFLINE=1`) the same way for the worker's
settings here and the CLI's in `runtime/settings.py` (which may import activities; activities
never import runtime).
"""

from __future__ import annotations

import os
import string
from collections.abc import Mapping

#: Template values of a shell command reach it as the variables ITERLOOP_VALUE_1, _2, …
#: (`workflows/inputs.py::render_command`). They are never expanded into the command text.
VALUE_ENV_PREFIX = "ITERLOOP_VALUE_"

_NAME_CHARS = frozenset(string.ascii_letters + string.digits + "_")
# Shell special parameters: `$1`, `$?`, `$$`, `$#`, `$@`, `$*`, `$!`, `$-`, `$0`…
_SPECIAL = frozenset("*#$@!?-0123456789")


def expand_env(text: str, env: Mapping[str, str] | None = None) -> str:
    """Replace `${VAR}` and `$VAR` in ``text`` with values from ``env`` (default: ``os.environ``).

    The semantics are those of Go's ``os.ExpandEnv``, so `.iter` files written for Iterion keep
    their meaning:

    - a name is ASCII letters, digits and `_` (`$VAR`), or anything up to the next `}` (`${…}`);
    - an undefined variable becomes the empty string (so do other shell forms: `${VAR:=x}` looks
      up the name `VAR:=x`);
    - one addition, from current Iterion: `${VAR:-default}` is VAR's value, or ``default`` when
      VAR is unset or empty (as in `sh`); the default is plain text, except that a default holding
      a `${…}` reference is expanded in turn, so defaults nest (`${A:-${B:-high}}` is A, else B,
      else `high`: upstream Iterion's brace-counting rule);
    - a single special character is a name too: `$1`, `$$`, `$?` look up `1`, `$`, `?`;
    - a `$` followed by anything else (`$ `, `$(`, a trailing `$`) is kept as written;
    - malformed `${}` and an unclosed `${` are dropped;
    - there is no escape: `$$` is a lookup of the variable named `$`, not a literal dollar.
    """
    env = os.environ if env is None else env
    out: list[str] = []
    i = j = 0
    while j < len(text):
        if text[j] == "$" and j + 1 < len(text):
            out.append(text[i:j])
            name, width = _reference_name(text, j + 1)
            if name:
                out.append(_lookup(name, env))
            elif width == 0:
                out.append("$")  # `$` not followed by a name: keep it
            # else: malformed `${}` / unclosed `${`: dropped, like Go
            j += width
            i = j + 1
        j += 1
    out.append(text[i:])
    return "".join(out)


def expand_env_in_command(command: str, env: Mapping[str, str] | None = None) -> str:
    """Expand environment references in a shell command before it is given to `sh -c`.

    Same `$VAR` / `${VAR}` syntax as `expand_env`, with these differences, which keep the command
    meaning what the shell would make it mean:

    - **Nothing inside single quotes is expanded** (nor a backslash-escaped `\\$`), as in `sh`.
      (Template values are not in the command text at all: they arrive as environment variables,
      so a value holding `$ANTHROPIC_API_KEY` stays literal and cannot read the worker's secrets
      into stdout and from there into history. Iterion expands inside substituted values; its
      runtime spec marks that as a quirk.)
    - **Only variables defined in ``env`` are replaced.** Anything else is left for the shell:
      variables the command sets itself (`for f in *; do echo "$f"; done`), special parameters
      (`$1`, `$?`, `$$`, `$!`), `${VAR:-default}` forms, malformed references. For an undefined
      environment variable the result is the same as Go's (the shell expands it to nothing).
    - **Template values are never expanded here**: `$ITERLOOP_VALUE_n` is left for the shell,
      which reads it as data (see `VALUE_ENV_PREFIX`), even if the worker's own environment
      happens to define such a name.
    - Defined variables are spliced in as raw text, outside and inside double quotes alike, so a
      variable may hold a whole command (`command: "${CI_COMMAND}"`), as in Iterion. Environment
      values are the operator's, never a run's input.

    The quote tracking is a small lexer (unquoted / 'single' / "double" and backslash), not a
    shell parser: comments and here-documents are not recognised. Anything it does not expand,
    the shell still expands from the same inherited environment.
    """
    env = os.environ if env is None else env
    out: list[str] = []
    quote = ""  # "", "'" or '"'
    j = 0
    n = len(command)
    while j < n:
        c = command[j]
        if quote == "'":
            if c == "'":
                quote = ""
        elif c == "\\":
            out.append(command[j : j + 2])
            j += 2
            continue
        elif c == "'" and not quote:
            quote = "'"
        elif c == '"':
            quote = "" if quote else '"'
        elif c == "$" and j + 1 < n:
            name, width = _reference_name(command, j + 1)
            if (name and name in env and not (len(name) == 1 and name in _SPECIAL)
                    and not name.startswith(VALUE_ENV_PREFIX)):
                out.append(env[name])
            else:
                out.append(command[j : j + 1 + width])
            j += 1 + width
            continue
        out.append(c)
        j += 1
    return "".join(out)


def referenced_names(text: str) -> list[str]:
    """The variable names ``text`` refers to, in order, as `expand_env` would look them up
    (`$1` refers to `1`; malformed `${` references refer to nothing)."""
    names: list[str] = []
    j = 0
    while j < len(text) - 1:
        if text[j] == "$":
            name, width = _reference_name(text, j + 1)
            if name:
                var, sep, default = name.partition(":-")
                names.append(var if sep and var else name)
                if sep and var and "${" in default:  # a nested default refers to its own variables
                    names.extend(referenced_names(default))
            j += 1 + width
            continue
        j += 1
    return names


def _lookup(name: str, env: Mapping[str, str]) -> str:
    """A `${…}` reference's value: `VAR:-default` falls back to ``default`` when VAR is unset or
    empty; any other name is looked up as written (Go's rule)."""
    var, sep, default = name.partition(":-")
    if sep and var and all(c in _NAME_CHARS for c in var) and not var[0].isdigit():
        if env.get(var):
            return env[var]
        return expand_env(default, env) if "${" in default else default
    return env.get(name, "")


def truthy(value: str | None) -> bool:
    """Whether an environment value turns a setting on: `1`, `true`, `yes` or `on` in any case and
    with any surrounding spaces; unset, empty and anything else is off."""
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _reference_name(text: str, start: int) -> tuple[str, int]:
    """The variable name after a `$` at ``start - 1`` and how many characters it spans.

    Mirrors Go's ``os.getShellName``: ``("", 0)`` means no name (keep the `$`), ``("", w>0)``
    means malformed syntax spanning ``w`` characters.
    """
    if text[start] == "{":
        if len(text) - start > 2 and text[start + 1] in _SPECIAL and text[start + 2] == "}":
            return text[start + 1], 3
        close = _closing_brace(text, start)
        if close == start + 1:
            return "", 2  # `${}`
        if close < 0:
            return "", 1  # unclosed `${`
        return text[start + 1 : close], close - start + 1
    if text[start] in _SPECIAL:
        return text[start], 1
    end = start
    while end < len(text) and text[end] in _NAME_CHARS:
        end += 1
    return text[start:end], end - start


def _closing_brace(text: str, start: int) -> int:
    """Where the `${…}` opened at ``start`` (its `{`) closes, or -1 when it does not.

    Go's rule is the first `}`. The one exception is a `:-` default holding `${…}` references of
    its own (`${A:-${B:-x}}`, current Iterion): there braces are counted, so the default nests.
    """
    close = text.find("}", start + 1)
    default_at = text.find(":-", start + 1, close if close >= 0 else len(text))
    nested_at = text.find("${", start + 1, close if close >= 0 else len(text))
    if close < 0 or default_at < 0 or nested_at < default_at:
        return close
    depth, j = 1, default_at + 2
    while j < len(text):
        if text.startswith("${", j):
            depth, j = depth + 1, j + 2
            continue
        if text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
        j += 1
    return -1

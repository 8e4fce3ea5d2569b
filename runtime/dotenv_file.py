"""The `.env` file of the directory a command runs in: more environment for the CLI and its workers.

`iterloop` reads `./.env` (lines `NAME=VALUE`, optionally `export NAME=VALUE`, values optionally
in single or double quotes, `#` comments and blank lines ignored) and puts it *under* the process
environment: a variable set in the environment wins over the file. The result is what the command's
settings are read from, what `${NAME}` in var defaults resolves against and what a background worker
it starts is given. Values are never printed; a line that is not `NAME=VALUE` is skipped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from dsl.source_files import read_limited

DOTENV_FILE = ".env"
_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


def parse_dotenv(text: str) -> dict[str, str]:
    """The variables of a `.env` text (see the module doc)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            continue
        name, raw = match.groups()
        if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
            value = raw[1:-1]
            if raw[0] == '"':
                value = value.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
        else:
            value = re.sub(r"\s+#.*$", "", raw)  # an unquoted value ends at a ` #` comment
        values[name] = value
    return values


def read_dotenv(directory: Path | None = None) -> dict[str, str]:
    """The `.env` of ``directory`` (default: the current directory); {} when there is none."""
    path = (directory or Path.cwd()) / DOTENV_FILE
    try:  # a regular file only: a FIFO named .env must not hang every command (dsl.source_files)
        return parse_dotenv(read_limited(path).decode("utf-8"))
    except (OSError, UnicodeDecodeError):
        return {}


def command_environment(environ: Mapping[str, str], directory: Path | None = None) -> dict[str, str]:
    """The environment a command uses: ``environ`` over the `.env` file (the process environment wins)."""
    return {**read_dotenv(directory), **environ}

"""Reading a YAML or JSON file a user points iterloop at: a price file, a model script, a preset.

Each of those files fails the same three ways (it is not there, it cannot be read, it is not valid
YAML/JSON), and the user needs the same three facts: which file, what went wrong, where in it.
`read_data_file` reads and parses; the caller names the file (``what``), says how to point at the
right one (``missing_hint``) and gives its own error class, so a price file fails as a
`PriceFileError` and a script as a `ScriptLoadError`, each with its own words. Checking the
parsed shape stays with the caller.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from dsl.source_files import read_limited
from workflows.contract.json_values import MAX_JSON_DEPTH, text_depth, value_problem


def read_data_file(path: str | Path, *, what: str, missing_hint: str, error: Callable[[str], Exception]) -> Any:
    """The parsed content of ``path``: JSON when it ends in `.json`, else YAML (None for an empty
    YAML file). Failures raise ``error(message)``, the message naming ``what`` and the file, and
    for a syntax error the line and column:

    - `<what> '<path>' does not exist; <missing_hint>`
    - `cannot read <what> '<path>': <reason>`
    - `<what> '<path>:<line>:<column>' is not valid YAML: <problem>` (or JSON)
    - `<what> '<path>': <problem>` for NaN/Infinity or nesting deeper than `MAX_JSON_DEPTH`

    The file must be a regular file no larger than `dsl.source_files.MAX_FILE_BYTES` (a FIFO or a
    device is refused before it is read).
    """
    p = Path(path)
    try:
        text = read_limited(p).decode("utf-8")
    except FileNotFoundError:
        raise error(f"{what} '{p}' does not exist; {missing_hint}") from None
    except OSError as exc:
        raise error(f"cannot read {what} '{p}': {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise error(f"cannot read {what} '{p}': {exc}") from None
    if p.suffix.lower() == ".json":
        if text_depth(text) > MAX_JSON_DEPTH:
            raise error(f"{what} '{p}': it nests more than {MAX_JSON_DEPTH} levels deep (the limit)")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise error(f"{what} '{p}:{exc.lineno}:{exc.colno}' is not valid JSON: {exc.msg}") from None
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise error(f"{what} '{p}{where}' is not valid YAML: {problem}") from None
        except RecursionError:
            raise error(f"{what} '{p}': it nests too deeply (the limit is {MAX_JSON_DEPTH} levels)") from None
    problem = value_problem(data)
    if problem is not None:
        raise error(f"{what} '{p}': {problem}")
    return data

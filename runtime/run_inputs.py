"""What the command line gives a run or a gate: `--var`, `--input`, `${ENV}` defaults, answers, `--script`
(or, offline, the script beside the file).

Pure parsing and checking (no Temporal): each problem is a `UsageError` that names the option,
what was expected and what was found.
"""

from __future__ import annotations

import getpass
import json
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from dsl.ir import SchemaField, Var, Workflow
from dsl.source_files import read_limited
from runtime.command_errors import UsageError
from workflows.contract.json_values import (
    MAX_JSON_DEPTH,
    JsonSyntaxError,
    JsonValueError,
    check_json_value,
    load_json,
    value_problem,
)

_JSON_TYPED = ("int", "float", "bool", "json", "string[]")
_ENV_REF = re.compile(r"\$\{([^}]+)\}")


def var_type_problem(var: Var, value: Any) -> str | None:
    """Why ``value`` is not a ``var.type``, or None."""
    t = var.type
    if t == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        return "an integer, e.g. 28"
    if t == "float" and (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)):
        return "a finite number, e.g. 0.05"
    if t == "bool" and not isinstance(value, bool):
        return "true or false"
    if t == "string[]" and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        return 'a JSON array of strings, e.g. ["a","b"]'
    if t == "string" and not isinstance(value, str):
        return "a string"
    if t == "json":
        problem = value_problem(value)
        return f"a JSON value without NaN or Infinity, nested at most {MAX_JSON_DEPTH} levels" if problem else None
    return None


def utf8_text(text: str, *, label: str) -> str:
    """``text`` if it is valid UTF-8; a `UsageError` naming ``label`` otherwise.

    Python reads a command line that is not UTF-8 with lone surrogates in place of the bad bytes;
    such text cannot be stored in a run (its JSON encoding fails later, as a traceback)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(f"{label} is not valid UTF-8 text; give it in UTF-8 "
                         f"(got {text.encode('utf-8', 'surrogateescape')[:60]!r})") from None
    return text


def parse_var_assignments(assignments: list[str], wf: Workflow) -> dict[str, Any]:
    """`--var NAME=VALUE` values, typed by the var's declaration.

    int, float, bool, json and string[] vars take a JSON value (`--var days=28`,
    `--var metrics='["a","b"]'`); string vars take the text as it is.
    """
    values: dict[str, Any] = {}
    for item in assignments:
        name, sep, text = utf8_text(item, label="--var").partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"--var '{item}' is not NAME=VALUE (e.g. --var topic=checkout)")
        values[name] = var_from_text(_declared_var(wf, name, f"--var {name}"), text, label=f"--var {name}")
    return values


def check_var_values(given: Mapping[str, Any], wf: Workflow, *, label: str = "vars") -> dict[str, Any]:
    """Var values from JSON (the REST API): typed values are checked against the declaration,
    and a string given for an int/float/bool/json/string[] var is read as `--var` reads it."""
    values: dict[str, Any] = {}
    for name, value in given.items():
        where = f"{label}.{name}"
        var = _declared_var(wf, name, where)
        if isinstance(value, str):
            values[name] = var_from_text(var, utf8_text(value, label=where), label=where)
            continue
        problem = var_type_problem(var, value)
        if problem:
            raise UsageError(f"{where}: var '{name}' is {var.type}, so give {problem}; "
                             f"got {json.dumps(value, ensure_ascii=False)}")
        values[name] = float(value) if var.type == "float" else value
    return values


def check_run_inputs(given: Mapping[str, Any], wf: Workflow, *, label: str) -> dict[str, Any]:
    """Run inputs (`--input`, the API's `inputs`): an input that names a declared var sets that var,
    so it is checked against the var's type exactly as `vars` are (`check_var_values`); any other
    input is free JSON, checked only for NaN/Infinity and depth."""
    values: dict[str, Any] = {}
    for name, value in given.items():
        if name in wf.vars:
            values.update(check_var_values({name: value}, wf, label=label))
            continue
        try:
            values[name] = check_json_value(value, what=f"{label}.{name}")
        except JsonValueError as exc:
            raise UsageError(str(exc)) from None
    return values


def missing_vars(wf: Workflow, given: Mapping[str, Any]) -> list[str]:
    """Declared vars without a default that ``given`` does not set."""
    return [n for n, v in wf.vars.items() if not v.has_default and n not in given]


def _declared_var(wf: Workflow, name: str, where: str) -> Var:
    var = wf.vars.get(name)
    if var is None:
        declared = ", ".join(wf.vars) or "(none)"
        raise UsageError(f"{where}: workflow '{wf.name}' declares no var '{name}'; declared vars: {declared}")
    return var


def var_from_text(var: Var, text: str, *, label: str) -> Any:
    """A var's value from text: as it is for a string var, else JSON checked against the type."""
    if var.type not in _JSON_TYPED:
        return text
    expected = var_type_problem(var, object()) or "a JSON value"
    try:
        value = load_json(text, what=label, fix=f"var '{var.name}' is {var.type}, so give {expected}")
    except JsonSyntaxError:
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise UsageError(f"{label}: '{shown}' is not valid JSON; var '{var.name}' is {var.type}, so give "
                         f"{expected}") from None
    except JsonValueError as exc:
        raise UsageError(str(exc)) from None
    problem = var_type_problem(var, value)
    if problem:
        raise UsageError(f"{label}: var '{var.name}' is {var.type}, so give {problem}; got {text}")
    return float(value) if var.type == "float" else value


def parse_input_json(text: str | None) -> dict[str, Any]:
    """`--input '{...}'`: a JSON object of run inputs (read by the shared, bounded JSON loader)."""
    if not text:
        return {}
    try:
        value = load_json(utf8_text(text, label="--input"), what="--input",
                          fix='give an object, e.g. --input \'{"plan": "v2"}\'')
    except JsonValueError as exc:
        raise UsageError(str(exc)) from None
    if not isinstance(value, dict):
        raise UsageError(f"--input must be a JSON object of run inputs, got {type(value).__name__}")
    return value


def resolve_env_defaults(wf: Workflow, given: Mapping[str, Any], env: Mapping[str, str], *,
                         withheld: Callable[[str], bool] | None = None) -> tuple[dict[str, str], list[str]]:
    """`${NAME}` in string var defaults, resolved now, by the client (so visible in history).

    Returns the resolved values of vars not given on the command line, and warnings for
    references to environment variables that are not set (they resolve to ""). ``withheld`` names
    the variables ``env`` leaves out on purpose (the API's secrets), so the warning says why.
    """
    from workflows.contract.env_refs import expand_env  # pure: the same expansion the worker uses

    resolved: dict[str, str] = {}
    warnings: list[str] = []
    for name, var in wf.vars.items():
        if name in given or not var.has_default or not isinstance(var.default, str) or "${" not in var.default:
            continue
        for ref in _ENV_REF.findall(var.default):
            if ref in env:
                continue
            if withheld is not None and withheld(ref):
                warnings.append(f"var {name}: ${{{ref}}} is not resolved here (a secret's name: it would be "
                                f"stored in the run's history); it becomes \"\"; give var {name} a value instead")
            else:
                warnings.append(f"var {name}: environment variable {ref} is not set; ${{{ref}}} becomes \"\"")
        resolved[name] = expand_env(var.default, env)
    return resolved, warnings


def parse_answer_assignments(assignments: list[str]) -> dict[str, str]:
    """`--answer FIELD=VALUE` pairs; values stay text (the gate converts them to the field's type)."""
    answers: dict[str, str] = {}
    for item in assignments:
        name, sep, value = utf8_text(item, label="--answer").partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"--answer '{item}' is not FIELD=VALUE (e.g. --answer approved=true)")
        if name in answers:
            raise UsageError(f"--answer {name} is given twice")
        answers[name] = value
    return answers


def load_answers_file(path: Path) -> dict[str, Any]:
    """A JSON or YAML mapping of field → value: a regular, size-capped UTF-8 file (`read_limited`),
    its values checked as every run value is (no NaN/Infinity, bounded nesting)."""
    data = load_yaml_file(path, what="--answers-file")
    if not isinstance(data, dict):
        raise UsageError(f"--answers-file '{path}' must hold a mapping of field → value, e.g. {{\"approved\": true}}")
    return {str(k): v for k, v in data.items()}


def load_yaml_file(path: Path, *, what: str) -> Any:
    """The JSON or YAML document of the file given as ``what``; every problem is one `UsageError`:
    not a regular file, too large, not UTF-8, not YAML, too deep, NaN or Infinity in it."""
    import yaml

    try:
        text = read_limited(path).decode("utf-8")
    except OSError as exc:
        raise UsageError(f"{what}: cannot read '{path}': {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{what}: '{path}' is not UTF-8 text (byte {exc.start}); give a JSON or YAML text file") from None
    try:
        data = yaml.safe_load(text)  # YAML is a superset of JSON
    except yaml.YAMLError as exc:
        raise UsageError(f"{what}: '{path}' is neither JSON nor YAML: {_one_line(str(exc))}") from None
    except RecursionError:
        raise UsageError(f"{what}: '{path}' nests too deeply; give a flat mapping of field → value") from None
    try:
        return check_json_value(data, what=f"{what} '{path}'")
    except JsonValueError as exc:
        raise UsageError(str(exc)) from None


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]


def field_hint(field: SchemaField) -> str:
    """What a gate field expects, as the prompt and the inspect output show it."""
    if field.enum_values:
        return f"{field.type}, one of {', '.join(field.enum_values)}"
    return {"bool": "bool: true/false", "int": "int", "float": "number", "string": "text",
            "string[]": "list: comma-separated", "json": "JSON value"}.get(field.type, field.type)


def default_answerer() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in containers without /etc/passwd entries
        return "cli"


#: What an offline run without `--script` looks for beside its file: `review.iter` → `review.script.yaml`.
SCRIPT_SUFFIX = ".script.yaml"


def script_beside(file: Path) -> Path | None:
    """The `<stem>.script.yaml` next to ``file``, if there is one (offline runs use it by default)."""
    candidate = file.with_name(file.stem + SCRIPT_SUFFIX)
    return candidate if candidate.is_file() else None


def load_script_option(path: Path | None) -> dict[str, Any] | None:
    """The `--script` file of scripted model outputs, loaded; None without the option."""
    if path is None:
        return None
    from workflows.contract.scripts import ScriptLoadError, load_script

    try:
        return load_script(path)
    except ScriptLoadError as exc:
        raise UsageError(str(exc)) from None

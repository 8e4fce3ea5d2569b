"""What a `POST /api/runs` may start: a registered workflow, a file on the API's host, or text, with
a preset from the presets directory; `start_request` turns the body into the run service's
`StartRequest` (runtime/run_start.py), the same request `iterloop run` builds.

Registered workflows are the `*.iter` (and `*.bot`) files of one directory (`ITERLOOP_WORKFLOWS_DIR`, or
`--workflows DIR`), named by their file stem: `growth_loop.iter` is `growth_loop`. Every source
is compiled exactly as `iterloop run` compiles a file (`runtime.language_commands.compile_options`);
errors become a 422 carrying the diagnostics.

A request may not read just any file of the API's host: a `file` must resolve (symlinks
followed) inside the workflows directory or `ITERLOOP_API_FILE_DIRS`, a preset (`config`) inside
the presets directory (`confined_path`), and `.iter` text (`source`), whose tool nodes run shell
commands on the workers, is refused unless `ITERLOOP_API_ALLOW_SOURCE=1`. A path outside is a
403 that says nothing about whether the file exists.
"""

from __future__ import annotations

import re
from pathlib import Path

import dsl
from api.errors import Forbidden, Unprocessable
from api.models import StartRun, VarInfo, WorkflowInfo
from api.settings import ApiSettings, withheld_from_runs
from dsl import CheckResult, CompileOptions
from dsl.ir import HumanNode
from dsl.source_files import WORKFLOW_SUFFIXES, is_workflow_path, name_problem, workflow_file, workflow_files
from runtime.language_commands import compile_options as run_compile_options
from runtime.run_start import CompiledWorkflow, StartRequest

_REGISTERED_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def start_request(settings: ApiSettings, body: StartRun, *, started_by: str) -> StartRequest:
    """The run service's request for a `POST /api/runs` body: its workflow compiled, its preset
    confined, `${NAME}` in var defaults read from the API's environment without its secrets."""
    return StartRequest(
        compiled=compile_request(settings, body), origin=f"started through the iterloop REST API by {started_by}",
        given_by="request", run_id=body.run_id, inputs=body.inputs, vars=body.vars,
        config=preset_path(settings, body.config), preset_root=settings.preset_root, skip_gates=body.skip_gates,
        stop_after=body.stop_after, offline=body.offline, script=body.script, notify=body.notify,
        workdir=body.workdir, env=dict(settings.client_env), withheld=withheld_from_runs)


def compile_request(settings: ApiSettings, body: StartRun) -> CompiledWorkflow:
    if body.workflow is not None:
        return compile_registered(settings, body.workflow)
    if body.file is not None:
        return compile_file(settings, body.file)
    assert body.source is not None
    return compile_text(settings, body.source)


def preset_path(settings: ApiSettings, config: str | None) -> Path | None:
    """The request's preset, confined to the presets directory (`Forbidden` outside it)."""
    if config is None:
        return None
    root = settings.preset_root
    return confined_path(config, (root,) if root is not None else (), what="preset",
                         setting="ITERLOOP_API_PRESETS_DIR or ITERLOOP_WORKFLOWS_DIR")


def compile_options(settings: ApiSettings) -> CompileOptions:
    return run_compile_options(settings.default_model)


def _registered_path(settings: ApiSettings, name: str) -> Path:
    if settings.workflows_dir is None:
        raise Unprocessable("no registered workflows: the API runs without ITERLOOP_WORKFLOWS_DIR "
                            "(or `iterloop api --workflows DIR`); give 'file' or 'source' instead",
                            code="workflow_not_found")
    path = workflow_file(settings.workflows_dir, name)  # name.iter, else name.bot
    if not _REGISTERED_NAME.match(name) or not path.is_file():
        known = ", ".join(p.stem for p in registered_files(settings)) or "(none)"
        raise Unprocessable(f"no registered workflow '{name}' in {settings.workflows_dir}; registered: {known}",
                            code="workflow_not_found")
    if not _inside(path, settings.workflows_dir):
        raise Forbidden(f"registered workflow '{name}' is a link to a file outside {settings.workflows_dir}; the API "
                        "runs only files inside its workflows directory: copy the file there instead of linking it",
                        code="path_not_allowed")
    return path


def _inside(path: Path, root: Path) -> bool:
    """Whether ``path`` resolves (symlinks followed) inside ``root``: a link in the workflows directory
    to a file elsewhere must not make that file runnable."""
    return path.resolve().is_relative_to(root.resolve())


def registered_files(settings: ApiSettings) -> list[Path]:
    """The registered workflows: the `*.iter` files of the workflows directory, links out of it left out."""
    root = settings.workflows_dir
    if root is None or not root.is_dir():
        return []
    return [p for p in workflow_files(root) if _REGISTERED_NAME.match(p.stem) and _inside(p, root)]


def describe_registered(settings: ApiSettings) -> list[WorkflowInfo]:
    """Each registered workflow: does it compile, its vars and gates."""
    infos = []
    for path in registered_files(settings):
        try:
            result = dsl.check_file(path, options=compile_options(settings))
        except OSError as exc:
            infos.append(WorkflowInfo(name=path.stem, file=str(path), ok=False, problems=[str(exc)]))
            continue
        wf = result.workflow
        infos.append(WorkflowInfo(
            name=path.stem, file=str(path), workflow=wf.name if wf else "", ok=result.ok,
            problems=[d.render() for d in result.errors],
            vars=[VarInfo(name=v.name, type=v.type, required=not v.has_default, default=v.default)
                  for v in (wf.vars.values() if wf else [])],
            gates=[n for n, node in (wf.nodes.items() if wf else []) if isinstance(node, HumanNode)]))
    return infos


def compile_registered(settings: ApiSettings, name: str) -> CompiledWorkflow:
    path = _registered_path(settings, name)
    return _checked(_check_path(settings, path), str(path), str(path.resolve()))


def confined_path(given: str, roots: tuple[Path, ...], *, what: str, setting: str) -> Path:
    """``given`` resolved (symlinks followed) if it lies inside one of ``roots``; `Forbidden` otherwise.

    A relative path starts at the first root that has it (else the first root). The check comes
    before any look at the file, so a refusal never says whether something exists out there.
    """
    if not roots:
        raise Forbidden(f"this API reads no {what} files: set {setting} to the directory they may come from",
                        code="path_not_allowed")
    problem = name_problem(given)
    if problem is not None:  # the OS would answer ENAMETOOLONG to any look at it
        raise Unprocessable(f"{what} '{given[:60]}…': {problem}", code="invalid_path")
    path = Path(given)
    try:
        if not path.is_absolute():
            path = next((root / path for root in roots if (root / path).exists()), roots[0] / path)
        resolved = path.resolve()
    except (OSError, RuntimeError) as exc:  # a path too long in total, a loop of links
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise Unprocessable(f"{what} '{given[:60]}': cannot be resolved ({reason}); give a shorter, plain path",
                            code="invalid_path") from None
    if not any(resolved.is_relative_to(root.resolve()) for root in roots):
        allowed = ", ".join(str(r) for r in roots)
        raise Forbidden(f"{what} '{given}' is outside the directories the API may read {what} files from "
                        f"({allowed}; {setting}); put the file there", code="path_not_allowed")
    return resolved


def compile_file(settings: ApiSettings, file: str) -> CompiledWorkflow:
    if not is_workflow_path(file):
        raise Unprocessable(f"file '{file}' is not a workflow file ({' or '.join(WORKFLOW_SUFFIXES)})",
                            code="file_not_found")
    path = confined_path(file, settings.file_roots, what="workflow",
                         setting="ITERLOOP_WORKFLOWS_DIR or ITERLOOP_API_FILE_DIRS")
    if not path.is_file():
        raise Unprocessable(f"no file '{file}' in {', '.join(str(r) for r in settings.file_roots)}",
                            code="file_not_found")
    return _checked(_check_path(settings, path), str(path), str(path)).model_copy(
        update={"project_dir": str(path.parent)})


def compile_text(settings: ApiSettings, text: str) -> CompiledWorkflow:
    if not settings.allow_source:
        raise Forbidden("starting runs from .iter text ('source') is off on this API: its tool nodes would run "
                        "shell commands on the workers. Register the workflow (ITERLOOP_WORKFLOWS_DIR) and start "
                        "it by name, or set ITERLOOP_API_ALLOW_SOURCE=1 if every token holder may run commands "
                        "there", code="source_not_allowed")
    result = dsl.check_source(text, file="<api>", options=compile_options(settings))
    return _checked(result, "<api>", "the request body of POST /api/runs")


def _check_path(settings: ApiSettings, path: Path) -> CheckResult:
    try:
        return dsl.check_file(path, options=compile_options(settings))
    except OSError as exc:
        raise Unprocessable(f"cannot read '{path}': {exc.strerror or exc}", code="file_not_found") from None


def _checked(result: CheckResult, source: str, location: str) -> CompiledWorkflow:
    if not result.ok or result.workflow is None:
        errors = result.errors
        problems = [d.model_dump(mode="json") for d in errors]
        first = errors[0].render() if errors else f"{source}: no workflow declared (add 'workflow NAME:')"
        raise Unprocessable(f"the workflow does not compile: {first}"
                            + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""),
                            code="compile_errors", details=problems)
    return CompiledWorkflow(workflow=result.workflow, source=source, location=location,
                            warnings=[d.render() for d in result.warnings])

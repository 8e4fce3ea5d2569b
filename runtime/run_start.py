"""Starting a run, in two steps: `prepare_start` (pure) and `start_graph_run` (the Temporal call).

`iterloop run` and `POST /api/runs` both describe the run they want as a `StartRequest`: the
compiled workflow and what the caller was given (vars as the command line's `NAME=VALUE` or as a
request body's JSON, a `--config` preset, `--skip-gates`, `--stop-after`, a script, notify places).
`prepare_start` turns it into a `PreparedStart` without touching Temporal, so every usage problem
(an unknown var, a bad preset, a script that is not one) is a `UsageError` before anything starts,
and the caller can show the warnings and the preset's notes first. `RunService.start` then starts
it (`start_graph_run`).

Compiling is not part of the request: each caller reports compile errors its own way (diagnostics
on a terminal, a 422 listing them) and the API confines which files a request may name; both
compile with `runtime.language_commands.compile_options`, and hand over a `CompiledWorkflow`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from dsl.ir import Workflow
from runtime.command_errors import CommandError, InvalidScript, RunAlreadyExists, UsageError, short_error
from runtime.mcp_project import check_mcp_servers, project_servers
from runtime.notify_options import NotifySection
from runtime.run_inputs import (
    check_run_inputs,
    check_var_values,
    load_script_option,
    missing_vars,
    parse_input_json,
    parse_var_assignments,
    resolve_env_defaults,
)
from runtime.settings import Settings
from runtime.temporal_runs import RPC_TIMEOUT, temporal_errors

if TYPE_CHECKING:
    from temporalio.client import Client
    from temporalio.common import TypedSearchAttributes

    from workflows.contract.state import RunInput

#: What a run id may be (`--run-id`, the API's `run_id`): it is a Temporal workflow id, shown in
#: commands and URLs, so plain characters and at most `MAX_RUN_ID_LENGTH` of them.
MAX_RUN_ID_LENGTH = 200
RUN_ID_PATTERN = rf"^[A-Za-z0-9][A-Za-z0-9_.:@-]{{0,{MAX_RUN_ID_LENGTH - 1}}}$"


def check_run_id(run_id: str | None, *, label: str) -> str | None:
    """``run_id`` if it is a usable run id (or None); a `UsageError` naming ``label`` otherwise."""
    if run_id is None or re.fullmatch(RUN_ID_PATTERN, run_id):
        return run_id
    if len(run_id) > MAX_RUN_ID_LENGTH:
        found = f"is {len(run_id)} characters long"
    else:
        found = f"is {run_id[:60]!r}"
    raise UsageError(f"{label} {found}; a run id has 1 to {MAX_RUN_ID_LENGTH} characters: letters, digits and "
                     f"_ . : @ -, starting with a letter or digit (e.g. {label} review-1)")


class CompiledWorkflow(BaseModel):
    """A workflow compiled without errors, and where it came from."""

    model_config = ConfigDict(extra="forbid")

    workflow: Workflow
    source: str = Field(description="What the run input records and inspect shows: the path given, or `<api>`.")
    location: str = Field(description="Where the workflow is, for the run's details in the Web UI.")
    warnings: list[str] = Field(default_factory=list, description="Compile warnings, rendered.")
    project_dir: str = Field(default="", description=(
        "The `.iter` file's directory, whose `.mcp.json` lists the project's MCP servers; empty for text."))


class StartRequest(BaseModel):
    """The run a caller asks for, in the caller's own terms (checked by `prepare_start`)."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    compiled: CompiledWorkflow
    origin: str = Field(description="How the run was started, for the Web UI's run details.")
    #: Whose words the vars are in: the command line's (`--var NAME=VALUE`) or a request body's
    #: (`"vars": {...}`). Error messages name the caller's syntax.
    given_by: Literal["command_line", "request"]
    run_id: str | None = None
    inputs: dict[str, Any] = Field(default_factory=dict, description="Run inputs (`{{input.…}}`).")
    input_json: str | None = Field(default=None, description="Run inputs as JSON text (`--input`).")
    vars: dict[str, Any] = Field(default_factory=dict, description="Vars as JSON values, or text as --var takes it.")
    var_assignments: list[str] = Field(default_factory=list, description="Vars as `NAME=VALUE` (`--var`).")
    config: Path | None = Field(default=None, description="A YAML preset (`--config`).")
    preset_root: Path | None = Field(default=None, description="The directory the preset must be in (the API's).")
    skip_gates: bool = False
    stop_after: list[str] = Field(default_factory=list)
    offline: bool = Field(default=False, description="The scripted model for every model call.")
    script: dict[str, Any] | None = Field(default=None, description="Scripted model outputs, given inline.")
    script_file: Path | None = Field(default=None, description="Scripted model outputs, in a YAML file.")
    notify: NotifySection | None = Field(default=None, description="Where the run reports, over the preset's.")
    workdir: str | None = Field(default=None, description=(
        "The directory the run's shell commands run in, on the worker (`RunOptions.shell_cwd`): the CLI's "
        "current directory or `--workdir`; none: the worker's own directory."))
    #: The environment `${NAME}` in var defaults is read from (the client's, so it is in history).
    env: dict[str, str] = Field(default_factory=dict)
    #: Names ``env`` leaves out on purpose (the API's secrets), so the warning says why.
    withheld: Callable[[str], bool] | None = None


class PreparedStart(BaseModel):
    """A `StartRequest` checked and resolved: the workflow after the preset, typed inputs, options."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    request: StartRequest
    workflow: Workflow
    inputs: dict[str, Any]
    script: dict[str, Any] | None
    #: More `RunOptions` fields: `stop_after`, `gate_answers` (--stop-after, --skip-gates, --config),
    #: `shell_cwd` (the CLI's directory, --workdir, the API's `workdir`).
    run_options: dict[str, Any] = Field(default_factory=dict)
    #: `${NAME}` references in var defaults that resolved to "" (unset, or withheld).
    warnings: list[str] = Field(default_factory=list)
    #: What the preset, --skip-gates and --stop-after changed: shown to the caller and in the Web UI.
    notes: list[str] = Field(default_factory=list)
    #: Template lines printed when the run ends (a preset's `summary:`), see `runtime.presets`.
    summary: list[str] = Field(default_factory=list)
    #: The preset's `notify:`; the request's goes over it, the deployment's defaults under it.
    notify_preset: NotifySection | None = None


def prepare_start(request: StartRequest, settings: Settings) -> PreparedStart:
    """Apply the preset, --skip-gates and --stop-after; type the vars; resolve `${NAME}` defaults; load
    the script. Later sources win for the same input: preset < inputs < vars. No Temporal."""
    from runtime.presets import prepare_run

    from_cli = request.given_by == "command_line"
    check_run_id(request.run_id, label="--run-id" if from_cli else "run_id")
    preset = prepare_run(request.config, request.compiled.workflow, skip_gates=request.skip_gates,
                         stop_after=request.stop_after, preset_root=request.preset_root)
    wf = preset.workflow
    check_sub_workflows(wf, request.compiled.source)
    # Run inputs that name a var set it, so they are typed like vars (`check_run_inputs`).
    inputs = {**preset.inputs, **check_run_inputs(request.inputs, wf, label="inputs"),
              **check_run_inputs(parse_input_json(request.input_json), wf, label="--input"),
              **parse_var_assignments(request.var_assignments, wf), **check_var_values(request.vars, wf)}
    env_values, warnings = resolve_env_defaults(wf, inputs, request.env, withheld=request.withheld)
    missing = missing_vars(wf, inputs)
    if missing:
        hint = (" ".join(f"--var {n}=…" for n in missing) if request.given_by == "command_line"
                else "give " + ", ".join(f'"{n}"' for n in missing) + ' in "vars"')
        raise UsageError(f"workflow '{wf.name}' needs a value for var(s) {', '.join(missing)}; {hint}")
    script = load_script_option(request.script_file) if request.script_file is not None else None
    if request.script is not None:
        from workflows.contract.scripts import script_shape_problem

        problem = script_shape_problem(request.script)
        if problem is not None:
            raise InvalidScript(f"script: {problem}")
        script = request.script
    if script is None and (request.offline or settings.offline):
        script = {}  # offline without a script: the scripted model answers from the output schemas
    run_options = {**preset.run_options, **({"shell_cwd": request.workdir} if request.workdir else {})}
    project = project_servers(request.compiled.project_dir, autoload=settings.mcp_autoload)
    check_mcp_servers(wf, project, file=request.compiled.source)
    if project:
        run_options["mcp_project_servers"] = project
    if not settings.local_tools:  # ITERLOOP_LOCAL_TOOLS=0: every tool call an ordinary activity
        run_options["local_tools"] = False
    return PreparedStart(request=request, workflow=wf, inputs={**env_values, **inputs}, script=script,
                         run_options=run_options, warnings=warnings, notes=preset.notes,
                         summary=preset.summary, notify_preset=preset.notify)


def check_sub_workflows(wf: Workflow, source: str) -> None:
    """Every `subbot` node carries its child's IR, compiled with the file (`dsl.subbots`): the run
    input holds every workflow the run may start, and workflow code never reads a file. A workflow
    sent as text has no directory to find the files in."""
    from dsl.ir import SubbotNode

    missing = [n for n in wf.nodes.values() if isinstance(n, SubbotNode) and n.workflow is None]
    if missing:
        names = ", ".join(f"'{n.id}' (bot {n.bot!r})" for n in missing)
        raise UsageError(f"workflow '{wf.name}' from {source}: subbot node(s) {names} name files relative to the "
                         "workflow's file, and this workflow was not read from a file; start it from its .iter file "
                         "(iterloop run FILE, or a file the API may read)")


def new_run_id(wf: Workflow) -> str:
    """`<workflow>-<8 hex digits>`: the id of a run started without one."""
    return f"{wf.name}-{uuid.uuid4().hex[:8]}"


@dataclass
class GraphRunStart:
    """Everything a new GraphRun execution is started with, but its id and task queue: the one
    description both `start_graph_run` (a run now) and a schedule's start action
    (`runtime.schedules`, a run at each firing) hand to Temporal, so a scheduled run is an
    ordinary run (same workflow type, input, search attributes and Web UI details)."""

    run_input: RunInput
    search_attributes: TypedSearchAttributes
    static_summary: str
    static_details: str


def graph_run_start(prepared: PreparedStart, notify: dict[str, Any] | None, *, origin: str | None = None) -> GraphRunStart:
    """The run input, search attributes and Web UI details of a run of ``prepared`` (``origin``
    overrides the request's own, e.g. to name the schedule that starts it)."""
    from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

    from workflows.contract.state import SA_STATUS, SA_WORKFLOW, RunInput, RunOptions

    request, wf, script = prepared.request, prepared.workflow, prepared.script
    compiled = request.compiled
    # A run started here parks on a spent budget until `iterloop budget` raises it (`on_budget`),
    # unless its caller chose otherwise (`iterloop bench` ends its runs there).
    options = {"on_budget": "park", **prepared.run_options, **({"notify": notify} if notify else {}),
               **({"summary": prepared.summary} if prepared.summary else {})}
    run_input = RunInput(workflow=wf, run_inputs=prepared.inputs, source=compiled.source,
                         options=RunOptions(script=script, **options))
    attributes = TypedSearchAttributes([SearchAttributePair(SearchAttributeKey.for_keyword(SA_WORKFLOW), wf.name),
                                        SearchAttributePair(SearchAttributeKey.for_keyword(SA_STATUS), "running")])
    details = (f"{origin or request.origin}\n\nworkflow **{wf.name}** from `{compiled.location}`"
               + (f"\n\ncontent hash `{wf.content_hash}`" if wf.content_hash else "")
               + ("\n\nscripted model (offline run)" if script is not None else "")
               + "".join(f"\n\n{line}" for line in prepared.notes))
    return GraphRunStart(run_input=run_input, search_attributes=attributes,
                         static_summary=f"{wf.name} · {Path(compiled.source).name}", static_details=details)


def missing_search_attributes(settings: Settings, exc: BaseException) -> CommandError | None:
    """The error that says how to register iterloop's search attributes, when Temporal refused a
    start (or a schedule) because the namespace lacks them; None for any other refusal."""
    if "search attribute" not in str(exc).lower():
        return None
    return CommandError(
        f"namespace '{settings.namespace}' lacks iterloop's search attributes ({short_error(exc)}); "
        "`iterloop server start` registers them on the dev server; on a cluster run "
        "`temporal operator search-attribute create --name IterloopWorkflow --type Keyword` "
        "(and IterloopStatus Keyword, IterloopOpenGates KeywordList, IterloopCostUsd Double)")


async def start_graph_run(client: Client, settings: Settings, prepared: PreparedStart,
                          notify: dict[str, Any] | None) -> str:
    """Start a GraphRun for the prepared run and return its id.

    The source is kept in the run input (inspect shows it); the origin (how it was started) and the
    location (where the workflow file is) go into the Web UI's run details, with what the preset
    changed. An existing id is `RunAlreadyExists`; a namespace without iterloop's search attributes
    says how to add them.
    """
    from temporalio.common import WorkflowIDReusePolicy
    from temporalio.exceptions import WorkflowAlreadyStartedError

    from workflows.contract.state import WORKFLOW_TYPE, RunResult

    run_id = prepared.request.run_id or new_run_id(prepared.workflow)
    start = graph_run_start(prepared, notify)
    async with temporal_errors(settings):
        try:
            await client.start_workflow(
                WORKFLOW_TYPE, start.run_input, id=run_id, task_queue=settings.task_queue, result_type=RunResult,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE, search_attributes=start.search_attributes,
                static_summary=start.static_summary, static_details=start.static_details, rpc_timeout=RPC_TIMEOUT)
        except WorkflowAlreadyStartedError:
            raise RunAlreadyExists(f"a run with id '{run_id}' already exists; choose another --run-id "
                                   f"(or look at it: `iterloop inspect {run_id}`)") from None
        except Exception as exc:
            refused = missing_search_attributes(settings, exc)
            if refused is not None:
                raise refused from None
            raise
    return run_id

"""The `iterloop` command: check, draw, format, compile and run `.iter` workflows.

Only the command line lives here: each command reads its options, builds its settings (the
environment is read once, here), calls a runtime function or the run service
(`runtime.run_service.RunService`, which the REST API calls too) and turns the outcome into output
and an exit code. What the commands do is in `runtime/`:

    language_commands.py   validate, diagram, fmt, compile (diagnostics_text.py renders diagnostics)
    scaffold.py            init
    skill.py               skill install | generate (the agent skill in skills/iterloop/)
    server_commands.py     server start | stop | status
    worker_commands.py     worker status | stop (background_workers.py: starting, restarting them)
    run_service.py         run, answer, inspect, list, events, report, retry, cancel, rewind, fork
    run_follow.py          what `run` shows while it follows a run; console.py, the other run output
    schedules.py           schedule create | list | describe | pause | unpause | trigger | delete

Exit codes, for every command (runtime/command_errors.py; docs/runtime.md for users):
    0  success (warnings alone do not fail)
    1  the input has problems: diagnostics with errors, files that `fmt --check` would change;
       a run failed; an answer was rejected
    2  usage or I/O error: unknown option, missing or unreadable file, unknown run id; bad input
       (not a regular file, over a size or depth limit, not UTF-8, NaN; docs/security.md, Bad input)
    3  the run waits for a human answer (non-interactive `run`)
    4  the run is parked as failed_resumable (fix the cause, then `iterloop retry`)
    5  the run stopped because a budget was exceeded
  130  the run was cancelled

Start-up time matters (`iterloop validate` runs in editors and pre-commit hooks), so the imports
at module level are limited to the standard library, typer and the pure language side
(`runtime.language_commands`, which loads `dsl`). Commands that need anything heavier import it
inside their function: the run service, the Temporal client, the worker, the API. Keep it that
way: tests/test_cli.py asserts that `import cli` loads neither temporalio nor anthropic nor openai.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn, TypeVar

import typer

from runtime.command_errors import EXIT_CANCELLED, EXIT_OK, EXIT_USAGE, CommandError
from runtime.language_commands import EXIT_PROBLEMS, LanguageSettings
from workflows.contract.vocabulary import RUN_STATUSES

if TYPE_CHECKING:  # the runtime's Temporal side is imported lazily, inside the commands that use it
    from dsl.ir import Workflow
    from runtime.run_models import EventList
    from runtime.run_service import RunService
    from runtime.schedules import ScheduleService
    from runtime.settings import Settings

T = TypeVar("T")

#: How long `iterloop cancel` waits for the run to end (a person watches; the API waits less).
CANCEL_WAIT_SECONDS = 10.0

#: End the process with `os._exit` once a command that used Temporal is done. The SDK's Rust threads
#: can abort interpreter shutdown ("Fatal Python error: PyGILState_Release ... finalizing",
#: temporalio/sdk-python#300; seen here when a worker stops), which would turn the command's exit
#: code into 134. Code that calls the commands in-process (a test harness) sets this to False.
HARD_EXIT = True

#: `-h` is `--help`, for every command.
HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}

app = typer.Typer(
    name="iterloop",
    help="Durable AI workflows declared in .iter files, run on Temporal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold API keys read from the environment
    context_settings=HELP_OPTIONS,
)
server_app = typer.Typer(
    help="Run the local Temporal dev server (data in .iterloop/temporal.db, Web UI on port 8233), or set up "
         "your own Temporal cluster for iterloop (`iterloop server setup --address HOST:PORT`).",
    no_args_is_help=True,
    context_settings=HELP_OPTIONS,
)
app.add_typer(server_app, name="server")


def _print_version(wanted: bool) -> None:
    """`iterloop --version`: the version line, then exit 0."""
    if wanted:
        print(f"iterloop {package_version()}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def root(ctx: typer.Context, version: Annotated[bool, typer.Option(
        "--version", help="Print iterloop's version and exit.", is_eager=True,
        callback=_print_version)] = False) -> None:
    """Durable AI workflows declared in .iter files, run on Temporal."""
    ctx.obj = LanguageSettings.from_env(os.environ)


# -- from options to an exit code ----------------------------------------------------------------


def _language(ctx: typer.Context) -> LanguageSettings:
    """The settings the root callback stored; read from the environment if a command runs alone."""
    root = ctx.find_root()
    if not isinstance(root.obj, LanguageSettings):
        root.obj = LanguageSettings.from_env(os.environ)
    return root.obj


def _report(exc: CommandError, *, as_json: bool = False) -> int:
    """`iterloop: message` on stderr (and the error as JSON on stdout for --json); the exit code."""
    if as_json:
        print(json.dumps({"error": str(exc), "exit_code": exc.exit_code}))
    print(f"iterloop: {exc}", file=sys.stderr)
    return exc.exit_code


def _finish(command: Callable[[], int], *, as_json: bool = False) -> NoReturn:
    """Run a command that needs no Temporal and exit with its code."""
    try:
        code = command()
    except CommandError as exc:
        code = _report(exc, as_json=as_json)
    raise typer.Exit(code)


def _exit(code: int) -> NoReturn:
    """Exit with ``code``; with `os._exit` once temporalio is loaded (see `HARD_EXIT`)."""
    if HARD_EXIT and "temporalio" in sys.modules:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise typer.Exit(code)


def _execute(command: Coroutine[Any, Any, int], *, as_json: bool,
             on_interrupt: Callable[[], str] | None = None) -> NoReturn:
    """Run a command's coroutine and exit with its code; errors become `iterloop: message`."""
    try:
        code = asyncio.run(command)
    except CommandError as exc:
        code = _report(exc, as_json=as_json)
    except KeyboardInterrupt:
        message = on_interrupt() if on_interrupt else "interrupted"
        print(f"\niterloop: {message}", file=sys.stderr)
        code = EXIT_CANCELLED
    _exit(code)


def _serve(call: Callable[[], Awaitable[T]], show: Callable[[T], None], *, as_json: bool) -> NoReturn:
    """Make one run-service call, show its result, exit 0; its errors become `iterloop: message`."""

    async def body() -> int:
        show(await call())
        return EXIT_OK

    _execute(body(), as_json=as_json)


def _runtime_settings(address: str | None = None, namespace: str | None = None, task_queue: str | None = None,
                      *, offline: bool | None = None, as_json: bool = False) -> Settings:
    """The environment (read once, here) with the command line's overrides on top; a value
    iterloop cannot use ends the command: `iterloop: <what is wrong>`, exit 2."""
    from runtime.settings import Settings, SettingsError

    try:
        settings = Settings.from_env(_environment())
    except SettingsError as exc:
        raise typer.Exit(_report(CommandError(str(exc), EXIT_USAGE), as_json=as_json)) from None
    return settings.with_overrides(address=address, namespace=namespace, task_queue=task_queue, offline=offline)


def _environment() -> dict[str, str]:
    """The command's environment: the process environment over `./.env` (the process wins;
    runtime/dotenv_file.py). Settings, `${NAME}` var defaults and background workers use it."""
    from runtime.dotenv_file import command_environment

    return command_environment(os.environ)


def _run_service(address: str | None, namespace: str | None, task_queue: str | None,
                 *, offline: bool | None = None, as_json: bool = False) -> RunService:
    """The run service of a command on this machine: it may use (and start) the local dev server
    and background workers, and says so on stderr."""
    from runtime.run_service import RunService

    return RunService(_runtime_settings(address, namespace, task_queue, offline=offline, as_json=as_json),
                      manage_local=True, environment=_environment(),
                      notice=lambda message: print(f"iterloop: {message}", file=sys.stderr))


def _checked_workflow(ctx: typer.Context, file: Path, *, as_json: bool = False) -> Workflow:
    """The compiled workflow of ``file``; its diagnostics on stderr (and in a JSON document on stdout
    with ``as_json``), exit 1 on errors, 2 if unreadable."""
    from runtime.language_commands import checked_workflow

    try:
        wf = checked_workflow(file, _language(ctx), as_json=as_json)
    except CommandError as exc:
        raise typer.Exit(_report(exc, as_json=as_json)) from None
    if wf is None:
        raise typer.Exit(EXIT_PROBLEMS)
    return wf


# -- the language: validate, diagram, fmt, compile, init -----------------------------------------

FilesArg = Annotated[list[Path], typer.Argument(help=".iter files", show_default=False)]
FileArg = Annotated[Path, typer.Argument(help="an .iter file", show_default=False)]
JsonDoc = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


@app.command()
def validate(ctx: typer.Context, files: FilesArg, as_json: JsonDoc = False) -> None:
    """Parse, compile and validate workflows without running them."""
    from runtime.language_commands import validate as validate_files

    _finish(lambda: validate_files(files, _language(ctx), as_json=as_json), as_json=as_json)


@app.command()
def diagram(
    ctx: typer.Context,
    file: FileArg,
    view: Annotated[str, typer.Option(help="compact, detailed or full.")] = "compact",
    detailed: Annotated[bool, typer.Option("--detailed", help="Same as --view detailed.")] = False,
    full: Annotated[bool, typer.Option("--full", help="Same as --view full.")] = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the diagram here instead of stdout.")
    ] = None,
    as_json: JsonDoc = False,
) -> None:
    """Draw a workflow as a Mermaid flowchart (paste it in GitHub Markdown or mermaid.live)."""
    from runtime.language_commands import diagram as draw

    _finish(lambda: draw(file, _language(ctx), view=view, detailed=detailed, full=full, output=output,
                         as_json=as_json), as_json=as_json)


@app.command()
def fmt(
    ctx: typer.Context,
    files: FilesArg,
    check: Annotated[bool, typer.Option("--check", help="List files that would change; write nothing.")] = False,
    as_json: JsonDoc = False,
) -> None:
    """Rewrite files in the canonical layout (only files that change; never files with parse errors)."""
    from runtime.language_commands import fmt as format_files

    _finish(lambda: format_files(files, _language(ctx), check=check, as_json=as_json), as_json=as_json)


@app.command("compile")
def compile_(ctx: typer.Context, file: FileArg, as_json: Annotated[bool, typer.Option(
        "--json", help="Wrap the IR in one document with the diagnostics and the exit code.")] = False) -> None:
    """Print the compiled IR as JSON (what a run executes; diagnostics go to stderr)."""
    from runtime.language_commands import compile_ir

    _finish(lambda: compile_ir(file, _language(ctx), as_json=as_json), as_json=as_json)


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Where to create the project.")] = Path("."),
    as_json: JsonDoc = False,
) -> None:
    """Scaffold an example project (a workflow with a human gate, its offline script, a README);
    existing files are never overwritten."""
    from runtime.scaffold import init_project

    _finish(lambda: init_project(directory, as_json=as_json), as_json=as_json)


# -- skill: the agent skill that teaches coding agents the language ---------------------------------

skill_app = typer.Typer(
    help="The agent skill for coding agents (Claude Code, Codex, Cursor, Copilot): install it into a project, "
         "or regenerate its generated references (docs/skill.md).",
    no_args_is_help=True,
    context_settings=HELP_OPTIONS,
)
app.add_typer(skill_app, name="skill")


@skill_app.command("install")
def skill_install(
    directory: Annotated[Path, typer.Option(
        "--dir", help="The project to install into: the skill goes to DIR/.claude/skills/iterloop.")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Replace a different copy that is already there.")] = False,
    as_json: JsonDoc = False,
) -> None:
    """Copy the iterloop skill where Claude Code finds a project's skills (.claude/skills/iterloop)."""
    from runtime.skill import install_skill

    _finish(lambda: install_skill(directory, force=force, as_json=as_json), as_json=as_json)


@skill_app.command("generate")
def skill_generate(
    check: Annotated[bool, typer.Option("--check", help="Write nothing; exit 1 if a generated file is out of date.")]
    = False,
    as_json: JsonDoc = False,
) -> None:
    """Regenerate the skill's references from the code (diagnostics, properties, builtin tools), in a checkout."""
    from activities.tools.registry import tool_schemas  # the tools' models: loads the activities, on purpose
    from runtime.skill import generate_skill

    _finish(lambda: generate_skill(tool_schemas(), check=check, as_json=as_json), as_json=as_json)


# -- server: the local Temporal dev server ---------------------------------------------------------


@server_app.command("start")
def server_start(
    headless: Annotated[bool, typer.Option("--headless", help="Do not serve the Web UI.")] = False,
    as_json: JsonDoc = False,
) -> None:
    """Start the dev server in the background, or report the one already running.

    The address comes from TEMPORAL_ADDRESS (default localhost:7233), the UI port from
    ITERLOOP_UI_PORT (default 8233), the state directory from ITERLOOP_HOME (default .iterloop).
    """
    from runtime.server_commands import start_server

    settings = _runtime_settings(as_json=as_json)
    _finish(lambda: start_server(settings, headless=headless, as_json=as_json), as_json=as_json)


@server_app.command("stop")
def server_stop(as_json: JsonDoc = False) -> None:
    """Stop the dev server started from this directory (its data stays in .iterloop/temporal.db)."""
    from runtime.server_commands import stop_server

    settings = _runtime_settings(as_json=as_json)
    _finish(lambda: stop_server(settings, as_json=as_json), as_json=as_json)


@server_app.command("status")
def server_status(as_json: JsonDoc = False) -> None:
    """Say whether the dev server is running, where, and for how long (exit 1 when stopped)."""
    from runtime.server_commands import server_status as status

    settings = _runtime_settings(as_json=as_json)
    _finish(lambda: status(settings, as_json=as_json), as_json=as_json)


@server_app.command("setup")
def server_setup(
    address: Annotated[str | None, typer.Option(
        "--address", help="Temporal host:port of the cluster (env TEMPORAL_ADDRESS; default: the local dev server).",
        show_default=False)] = None,
    namespace: Annotated[str | None, typer.Option(
        "--namespace", help="Namespace to create or check (env TEMPORAL_NAMESPACE; default: default).",
        show_default=False)] = None,
    retention: Annotated[str | None, typer.Option(
        "--retention", help="How long closed runs are kept, e.g. 30d or 720h: a new namespace's (default 30d), "
                            "or changed on an existing one.", show_default=False)] = None,
    as_json: JsonDoc = False,
) -> None:
    """Make a Temporal cluster ready for iterloop: create the namespace when missing and register
    iterloop's search attributes (idempotent; says what it created and what already existed)."""
    from runtime.cluster_setup import parse_retention, print_setup, set_up_cluster
    from runtime.server_address import settings_for_existing_runs

    settings = settings_for_existing_runs(_runtime_settings(address, namespace, as_json=as_json))

    async def body() -> int:
        report = await set_up_cluster(settings, retention=parse_retention(retention) if retention else None)
        return print_setup(report, as_json=as_json)

    _execute(body(), as_json=as_json)


# -- version and api -------------------------------------------------------------------------------


def package_version() -> str:
    """The installed distribution's version; a source checkout that is not installed says so."""
    from importlib.metadata import PackageNotFoundError, version  # lazy: costs start-up time

    try:
        return version("iterloop")
    except PackageNotFoundError:
        return "0+unknown (not installed: run `make setup`)"


@app.command("version")
def version_(as_json: JsonDoc = False) -> None:
    """Print iterloop's version, the Python version and the IR format version."""
    import platform

    from dsl import IR_FORMAT_VERSION

    python = platform.python_version()
    if as_json:
        print(json.dumps({"iterloop": package_version(), "python": python, "ir_format_version": IR_FORMAT_VERSION,
                          "exit_code": EXIT_OK}))
        return
    print(f"iterloop {package_version()}")
    print(f"Python {python} ({sys.executable})")
    print(f"IR format {IR_FORMAT_VERSION}")


@app.command("api")
def api_command(
    host: Annotated[str | None, typer.Option(
        "--host", help="Address to listen on (env ITERLOOP_API_HOST; default: 127.0.0.1).", show_default=False)] = None,
    port: Annotated[int | None, typer.Option(
        "--port", help="Port to listen on (env ITERLOOP_API_PORT; default: 8080).", show_default=False)] = None,
    workflows: Annotated[Path | None, typer.Option(
        "--workflows", help="Directory of registered .iter workflows (env ITERLOOP_WORKFLOWS_DIR).",
        show_default=False)] = None,
    no_auth: Annotated[bool, typer.Option(
        "--no-auth", help="No authentication at all (only on a loopback --host, for local use).")] = False,
    address: Annotated[str | None, typer.Option(
        "--address", help="Temporal host:port (env TEMPORAL_ADDRESS; default: the local dev server).",
        show_default=False)] = None,
    namespace: Annotated[str | None, typer.Option(
        "--namespace", help="Temporal namespace (env TEMPORAL_NAMESPACE; default: default).", show_default=False)] = None,
    task_queue: Annotated[str | None, typer.Option(
        "--task-queue", help="Task queue runs are started on (env ITERLOOP_TASK_QUEUE; default: iterloop).",
        show_default=False)] = None,
) -> None:
    """Serve the REST API and the dashboard (bearer tokens from ITERLOOP_API_TOKENS); see docs/api.md."""
    from api.settings import ApiConfigError, ApiSettings
    from runtime.settings import SettingsError

    try:
        settings = ApiSettings.from_env().with_overrides(
            host=host, port=port, auth_disabled=True if no_auth else None, address=address, namespace=namespace,
            task_queue=task_queue, workflows_dir=workflows)
        settings.check()
    except (ApiConfigError, SettingsError) as exc:
        print(f"iterloop: {exc}", file=sys.stderr)
        raise typer.Exit(EXIT_USAGE) from None
    from api.app import serve

    print(f"iterloop: API and dashboard on http://{settings.host}:{settings.port}/ "
          f"(Temporal {settings.runtime.address if settings.runtime.address_configured else 'local dev server'}, "
          f"task queue {settings.runtime.task_queue}"
          + (", NO AUTHENTICATION" if settings.auth_disabled else "") + ")", file=sys.stderr)
    serve(settings)


@app.command("editor")
def editor_command(
    port: Annotated[int, typer.Option("--port", help="Port to listen on (0: a free one).")] = 4891,
    directory: Annotated[Path, typer.Option("--dir", help="The directory of .iter/.bot files to edit.")] = Path("."),
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Do not open the browser.")] = False,
    host: Annotated[str, typer.Option("--host", help="Address to listen on (loopback unless --allow-remote).")]
    = "127.0.0.1",
    allow_remote: Annotated[bool, typer.Option(
        "--allow-remote", help="Allow a non-loopback --host: whoever reaches it can run commands here.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the URL as one JSON line.")] = False,
) -> None:
    """Edit workflows in the browser (canvas, inspector, source, diagnostics) and run them; docs/editor.md."""
    from api.editor_server import EditorStartError, editor_settings, serve_editor
    from api.settings import ApiConfigError
    from runtime.settings import SettingsError

    try:
        settings = editor_settings(_environment(), directory=directory, host=host, port=port,
                                   allow_remote=allow_remote)
        serve_editor(settings, open_browser=not no_browser, as_json=as_json)
    except (EditorStartError, ApiConfigError, SettingsError) as exc:
        raise typer.Exit(_report(CommandError(str(exc), EXIT_USAGE), as_json=as_json)) from None


# -- runs: run, answer, inspect, list, events, report, retry, cancel, worker -------------------------

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
AddressOpt = Annotated[str | None, typer.Option(
    "--address", help="Temporal host:port [env TEMPORAL_ADDRESS; default: the local dev server].",
    show_default=False)]
NamespaceOpt = Annotated[str | None, typer.Option(
    "--namespace", help="Temporal namespace [env TEMPORAL_NAMESPACE; default: default].", show_default=False)]
TaskQueueOpt = Annotated[str | None, typer.Option(
    "--task-queue", help="Task queue of the workers [env ITERLOOP_TASK_QUEUE; default: iterloop].",
    show_default=False)]
RunArg = Annotated[str, typer.Argument(help="The run id (its Temporal workflow id).", metavar="RUN",
                                       show_default=False)]


@app.command("run")
def run_command(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The .iter file to run.", show_default=False)],
    var: Annotated[list[str] | None, typer.Option(
        "--var", help="Set a var: NAME=VALUE (repeatable). int/float/bool/json/string[] vars take JSON.",
        show_default=False)] = None,
    input_json: Annotated[str | None, typer.Option(
        "--input", help="Run inputs as a JSON object (--var wins for the same name).", show_default=False)] = None,
    run_id: Annotated[str | None, typer.Option(
        "--run-id", help="Workflow id of the run [default: <workflow>-<8 hex>].", show_default=False)] = None,
    detach: Annotated[bool, typer.Option("--detach", help="Start the run and return; do not follow it.")] = False,
    as_json: JsonOpt = False,
    script: Annotated[Path | None, typer.Option(
        "--script", help="YAML script of model outputs (offline scripted model) [default with --offline: "
                         "FILE's stem + .script.yaml beside it, if present].", show_default=False)] = None,
    offline: Annotated[bool, typer.Option(
        "--offline", help="Use the scripted model for every model call (no API key needed).")] = False,
    by: Annotated[str | None, typer.Option(
        "--by", help="Who answers gates at the prompt [default: your user name].", show_default=False)] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", help="A YAML preset: vars, wait durations, loop bounds, models, gates, budget "
                         "(docs/growth-loop.md).", show_default=False)] = None,
    skip_gates: Annotated[bool, typer.Option(
        "--skip-gates", help="Answer every human gate automatically (approve; the preset's answer if it "
                             "gives one).")] = False,
    stop_after: Annotated[list[str] | None, typer.Option(
        "--stop-after", help="End the run (finished) right after this node completes (repeatable).",
        show_default=False)] = None,
    notify_slack: Annotated[str | None, typer.Option(
        "--notify-slack", help="Post gates and the result to this Slack channel (docs/notifications.md).",
        show_default=False)] = None,
    notify_webhook: Annotated[list[str] | None, typer.Option(
        "--notify-webhook", help="POST signed JSON events to this URL (repeatable; `${ITERLOOP_WEBHOOK_…}` allowed).",
        show_default=False)] = None,
    no_notify: Annotated[bool, typer.Option(
        "--no-notify", help="Report nowhere, whatever the defaults and the preset say.")] = False,
    workdir: Annotated[Path | None, typer.Option(
        "--workdir", help="The directory the run's shell commands run in, on the worker [default: the current "
                          "directory].", show_default=False)] = None,
    recipe: Annotated[Path | None, typer.Option(
        "--recipe", help="An Iterion recipe (JSON): preset vars, prompt pack, budget, tool policy "
                         "(docs/runtime.md, Recipes and bench).", show_default=False)] = None,
    address: AddressOpt = None,
    namespace: NamespaceOpt = None,
    task_queue: TaskQueueOpt = None,
) -> None:
    """Run a workflow on Temporal and follow it: events as they happen, prompts at human gates.

    Exit codes: 0 finished, 1 failed or compile errors, 2 usage error, 3 waiting for a human,
    4 parked (failed_resumable: fix, then `iterloop retry`), 5 budget exceeded, 130 cancelled.
    """
    from runtime.notify_options import NotifySection
    from runtime.recipes import recipe_workflow, with_recipe_noted
    from runtime.run_follow import print_prepared, start_and_follow
    from runtime.run_inputs import default_answerer, script_beside
    from runtime.run_start import CompiledWorkflow, StartRequest

    wf = _checked_workflow(ctx, file, as_json=as_json)  # compiled as `iterloop validate` compiles it
    try:
        wf, applied_recipe = recipe_workflow(recipe, wf)  # the IR the run executes, with the recipe's changes
    except CommandError as exc:
        raise typer.Exit(_report(exc, as_json=as_json)) from None
    service = _run_service(address, namespace, task_queue, offline=True if offline else None, as_json=as_json)
    found_script = script_beside(file) if script is None and service.configured.offline else None
    request = StartRequest(
        compiled=CompiledWorkflow(workflow=wf, source=str(file), location=str(file.resolve()),
                                  project_dir=str(file.resolve().parent)),
        origin=f"`iterloop run {file}`", given_by="command_line", run_id=run_id, input_json=input_json,
        var_assignments=var or [], config=config, skip_gates=skip_gates, stop_after=stop_after or [],
        offline=offline, script_file=script or found_script, env=service.environment or dict(os.environ),
        workdir=str((workdir or Path.cwd()).absolute()),
        notify=NotifySection(slack_channel=notify_slack, webhooks=notify_webhook or None, enabled=not no_notify))
    try:
        prepared = with_recipe_noted(service.prepare(request), applied_recipe)
    except CommandError as exc:
        raise typer.Exit(_report(exc, as_json=as_json)) from None
    print_prepared(prepared, found_script=found_script)
    started: list[str] = []
    _execute(start_and_follow(service, prepared, detach=detach, as_json=as_json, by=by or default_answerer(),
                              started=started), as_json=as_json, on_interrupt=lambda: (
        f"stopped following; run {started[0]} goes on. Follow it again with `iterloop events {started[0]} "
        f"--follow`, stop it with `iterloop cancel {started[0]}`" if started else "interrupted"))


@app.command("bench")
def bench_command(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The .iter file to run under each recipe.", show_default=False)],
    recipe: Annotated[list[Path], typer.Option(
        "--recipe", help="An Iterion recipe (JSON) to compare; give two or more.", show_default=False)],
    runs: Annotated[int, typer.Option("-n", "--runs", help="Runs per recipe.", min=1)] = 3,
    parallel: Annotated[int, typer.Option("--parallel", help="Runs in flight at once.", min=1)] = 4,
    var: Annotated[list[str] | None, typer.Option(
        "--var", help="Set a var for every run: NAME=VALUE (repeatable; wins over the recipes' preset_vars).",
        show_default=False)] = None,
    input_json: Annotated[str | None, typer.Option(
        "--input", help="Run inputs as a JSON object, for every run.", show_default=False)] = None,
    skip_gates: Annotated[bool, typer.Option(
        "--skip-gates", help="Answer every human gate automatically (a bench answers none otherwise).")] = False,
    script: Annotated[Path | None, typer.Option(
        "--script", help="YAML script of model outputs (offline scripted model) [default with --offline: "
                         "FILE's stem + .script.yaml beside it, if present].", show_default=False)] = None,
    offline: Annotated[bool, typer.Option(
        "--offline", help="Use the scripted model for every model call (no API key needed).")] = False,
    workdir: Annotated[Path | None, typer.Option(
        "--workdir", help="The directory the runs' shell commands run in, on the worker [default: the current "
                          "directory].", show_default=False)] = None,
    as_json: JsonOpt = False,
    address: AddressOpt = None,
    namespace: NamespaceOpt = None,
    task_queue: TaskQueueOpt = None,
) -> None:
    """Run one workflow under several recipes, N times each, and compare them.

    Per recipe: success rate, mean and median cost, tokens and duration, and the mean of the
    recipe's evaluation_policy.primary_metric. Every run is a real run (inspect, report it).
    Exit codes: 0 the bench completed (whatever its runs did), 1 compile errors, 2 usage error.
    """
    from runtime.bench import BenchProgress, check_recipe_names, plan_for, print_bench, run_bench
    from runtime.console import is_tty
    from runtime.notify_options import NotifySection
    from runtime.recipes import apply_recipe, load_recipe
    from runtime.run_inputs import script_beside
    from runtime.run_start import CompiledWorkflow, StartRequest

    wf = _checked_workflow(ctx, file, as_json=as_json)
    service = _run_service(address, namespace, task_queue, offline=True if offline else None, as_json=as_json)
    found_script = script_beside(file) if script is None and service.configured.offline else None
    try:
        applied = [apply_recipe(load_recipe(path), wf) for path in recipe]
        check_recipe_names(applied)
        plans = [plan_for(a, service.prepare(StartRequest(
            compiled=CompiledWorkflow(workflow=a.workflow, source=str(file), location=str(file.resolve()),
                                      project_dir=str(file.resolve().parent)),
            origin=f"`iterloop bench {file}` (recipe {a.recipe.name})", given_by="command_line",
            input_json=input_json, var_assignments=var or [], skip_gates=skip_gates, offline=offline,
            script_file=script or found_script, env=service.environment or dict(os.environ),
            workdir=str((workdir or Path.cwd()).absolute()), notify=NotifySection(enabled=False))))
            for a in applied]
    except CommandError as exc:
        raise typer.Exit(_report(exc, as_json=as_json)) from None
    if found_script is not None:
        print(f"iterloop: offline: model outputs from {found_script} (found beside the file; --script chooses "
              "another)", file=sys.stderr)

    async def body() -> int:
        with BenchProgress([a.recipe.name for a in applied], runs, live=not as_json and is_tty(sys.stderr)) as shown:
            report = await run_bench(service, plans, workflow=wf.name, file=str(file), runs=runs, parallel=parallel,
                                     on_settled=shown.settled)
        print_bench(report, as_json=as_json)
        return EXIT_OK

    _execute(body(), as_json=as_json, on_interrupt=lambda: (
        "bench stopped; its runs go on (`iterloop list` shows them, `iterloop cancel RUN` stops one)"))


@app.command("answer")
def answer_command(
    run_id: RunArg,
    gate: Annotated[str, typer.Option("--gate", help="The human node to answer.", show_default=False)],
    answer: Annotated[list[str] | None, typer.Option(
        "--answer", help="FIELD=VALUE (repeatable); values are converted to the field's type.",
        show_default=False)] = None,
    answers_file: Annotated[Path | None, typer.Option(
        "--answers-file", help="A JSON or YAML mapping of field → value.", show_default=False)] = None,
    by: Annotated[str | None, typer.Option(
        "--by", help="Who answers (recorded with the answer) [default: your user name].", show_default=False)] = None,
    use_signal: Annotated[bool, typer.Option(
        "--signal", help="Send a signal (fire and forget, idempotent) instead of a validated update.")] = False,
    in_advance: Annotated[bool, typer.Option(
        "--in-advance", help="Answer the gate's next opening while it is closed (kept until it opens).")] = False,
    as_json: JsonOpt = False,
    address: AddressOpt = None,
    namespace: NamespaceOpt = None,
    task_queue: TaskQueueOpt = None,
) -> None:
    """Answer a human gate's open opening (a validated update; --signal for fire and forget).

    The update is checked before anything is recorded: a wrong field, type or gate is refused at
    once with the reason (exit 1). Each opening takes one answer: one already answered is refused
    with who answered it and when. A closed gate is refused too, unless --in-advance answers its
    next opening on purpose.
    """
    from runtime.command_errors import UsageError
    from runtime.console import print_answer
    from runtime.run_inputs import default_answerer, load_answers_file, parse_answer_assignments

    try:
        if answer and answers_file is not None:
            raise UsageError("give the answers with --answer or with --answers-file, not both")
        values: dict[str, Any] = (load_answers_file(answers_file) if answers_file is not None
                                  else parse_answer_assignments(answer or []))
    except CommandError as exc:
        raise typer.Exit(_report(exc, as_json=as_json)) from None
    service = _run_service(address, namespace, task_queue, as_json=as_json)
    answered_by = by or default_answerer()
    _serve(lambda: (service.signal_answer(run_id, gate, values, by=answered_by, in_advance=in_advance) if use_signal
                    else service.answer(run_id, gate, values, by=answered_by, in_advance=in_advance)),
           lambda answered: print_answer(answered, as_json=as_json), as_json=as_json)


@app.command("inspect")
def inspect_command(run_id: RunArg, as_json: JsonOpt = False, address: AddressOpt = None,
                    namespace: NamespaceOpt = None, task_queue: TaskQueueOpt = None) -> None:
    """Show a run: status, nodes, open gates, failures, budget and its Web UI link.

    The node table has each node's visits, status, tokens and cost; open gates show their
    instructions and expected fields; failures show the retry command.
    """
    from runtime.console import print_inspection

    service = _run_service(address, namespace, task_queue, as_json=as_json)
    _serve(lambda: service.inspect(run_id), lambda run: print_inspection(run.detail, as_json=as_json),
           as_json=as_json)


@app.command("list")
def list_command(
    status: Annotated[str | None, typer.Option(
        "--status", help=f"Only runs with this status: {', '.join(RUN_STATUSES)}.", show_default=False)] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many runs.", min=1)] = 20,
    schedule: Annotated[str | None, typer.Option(
        "--schedule", help="Only runs this schedule started (`iterloop schedule list`).", show_default=False)] = None,
    as_json: JsonOpt = False,
    address: AddressOpt = None,
    namespace: NamespaceOpt = None,
    task_queue: TaskQueueOpt = None,
) -> None:
    """List runs (id, workflow, status, start time, cost) from Temporal's visibility store."""
    from runtime.command_errors import UsageError
    from runtime.console import print_run_list

    if status is not None and status not in RUN_STATUSES:
        raise typer.Exit(_report(UsageError(f"unknown status '{status}'; choose one of: {', '.join(RUN_STATUSES)}"),
                                 as_json=as_json))
    service = _run_service(address, namespace, task_queue, as_json=as_json)
    _serve(lambda: service.list_runs(status=status, limit=limit, schedule=schedule),
           lambda listing: print_run_list(listing.runs, status=status, as_json=as_json), as_json=as_json)


@app.command("events")
def events_command(
    run_id: RunArg,
    follow: Annotated[bool, typer.Option(
        "--follow", "-f", help="Keep printing new events until the run ends.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line (JSON Lines).")] = False,
    address: AddressOpt = None,
    namespace: NamespaceOpt = None,
    task_queue: TaskQueueOpt = None,
) -> None:
    """Print a run's events: time, node, branch and what happened.

    With --follow it stops when the run reaches a state it cannot leave by itself (finished,
    failed, cancelled, budget_exceeded, parked as failed_resumable, waiting for a human answer)
    and exits with that state's code (0, 1, 130, 5, 4, 3; see `iterloop run --help`).
    """
    from runtime.command_errors import STATUS_EXIT_CODES
    from runtime.console import event_text
    from runtime.run_service import SETTLED_STATUSES

    service = _run_service(address, namespace, task_queue, as_json=as_json)

    async def body() -> int:
        batches = service.follow(run_id, until=SETTLED_STATUSES) if follow else _once(service.events(run_id))
        code = EXIT_OK
        async for batch in batches:
            for event in batch.events:
                print(event_text(event, as_json=as_json), flush=True)
            end = getattr(batch, "end", None)  # only a followed run's last batch has one
            if end is not None:
                code = STATUS_EXIT_CODES.get(end.status, EXIT_OK)
                print(f"iterloop: run {run_id} is {end.status}" + (f": {end.reason}" if end.reason else "")
                      + f" (exit code {code})", file=sys.stderr)
        return code

    _execute(body(), as_json=as_json, on_interrupt=lambda: "stopped following (the run goes on)")


async def _once(listing: Awaitable[EventList]) -> AsyncIterator[EventList]:
    """The events of one `RunService.events` call, shaped like one look of `RunService.follow`."""
    yield await listing


@app.command("report")
def report_command(
    run_id: RunArg,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write the Markdown here instead of stdout.", show_default=False)] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print one JSON document: the Markdown, the summary block, the outputs, usage.")] = False,
    address: AddressOpt = None,
    namespace: NamespaceOpt = None,
    task_queue: TaskQueueOpt = None,
) -> None:
    """Write a Markdown report of a run: summary, the preset's summary block, each node's final
    output, timeline, artifacts, tokens and cost per node."""
    from runtime.console import print_report

    service = _run_service(address, namespace, task_queue, as_json=as_json)
    _serve(lambda: service.report_document(run_id),
           lambda report: print_report(report.markdown, output, document={**report.model_dump(mode="json"),
                                                                          "exit_code": EXIT_OK} if as_json else None),
           as_json=as_json)


@app.command("retry")
def retry_command(
    run_id: RunArg,
    node: Annotated[str | None, typer.Option(
        "--node", help="The parked node to re-run [default: every parked node].", show_default=False)] = None,
    as_json: JsonOpt = False,
    address: AddressOpt = None,
    namespace: NamespaceOpt = None,
    task_queue: TaskQueueOpt = None,
) -> None:
    """Re-run the node(s) a run parked on (status failed_resumable), after you fixed the cause."""
    from runtime.console import print_retried

    service = _run_service(address, namespace, task_queue, as_json=as_json)
    _serve(lambda: service.retry(run_id, node), lambda retried: print_retried(retried, as_json=as_json),
           as_json=as_json)


@app.command("cancel")
def cancel_command(run_id: RunArg, as_json: JsonOpt = False, address: AddressOpt = None,
                   namespace: NamespaceOpt = None, task_queue: TaskQueueOpt = None) -> None:
    """Cancel a run: it stops where it is and ends with status cancelled."""
    from runtime.console import print_cancelled

    service = _run_service(address, namespace, task_queue, as_json=as_json)
    _serve(lambda: service.cancel(run_id, wait_seconds=CANCEL_WAIT_SECONDS),
           lambda cancelled: print_cancelled(cancelled, as_json=as_json), as_json=as_json)


VarsOpt = Annotated[list[str] | None, typer.Option(
    "--var", help="Change a var from there on: NAME=VALUE (repeatable).", show_default=False)]
ScriptOpt = Annotated[Path | None, typer.Option(
    "--script", help="A new YAML script of model outputs (offline scripted model) from there on.", show_default=False)]
ByOpt = Annotated[str | None, typer.Option(
    "--by", help="Who asks (recorded in the run's events) [default: your user name].", show_default=False)]


@app.command("rewind")
def rewind_command(
    run_id: RunArg,
    to: Annotated[str, typer.Option("--to", help="The node to resume from (its latest visit).", show_default=False)],
    var: VarsOpt = None,
    script: ScriptOpt = None,
    by: ByOpt = None,
    as_json: JsonOpt = False,
    address: AddressOpt = None,
    namespace: NamespaceOpt = None,
    task_queue: TaskQueueOpt = None,
) -> None:
    """Resume a run from an earlier node, with the outputs recorded before it (same run id).

    The current execution ends; the node and everything after it run again, and human gates after
    it open again (answers given before the rewind are not reused).
    """
    from runtime.console import print_rewound
    from runtime.run_inputs import default_answerer, load_script_option

    try:
        loaded = load_script_option(script)
    except CommandError as exc:
        raise typer.Exit(_report(exc, as_json=as_json)) from None
    service = _run_service(address, namespace, task_queue)
    _serve(lambda: service.rewind(run_id, to, by=by or default_answerer(), var_assignments=var or [], script=loaded),
           lambda rewound: print_rewound(rewound, as_json=as_json), as_json=as_json)


@app.command("fork")
def fork_command(
    run_id: RunArg,
    at: Annotated[str, typer.Option("--at", help="The node the new run starts at.", show_default=False)],
    var: VarsOpt = None,
    new_run_id: Annotated[str | None, typer.Option(
        "--run-id", help="Workflow id of the new run [default: <workflow>-<8 hex>].", show_default=False)] = None,
    script: ScriptOpt = None,
    by: ByOpt = None,
    as_json: JsonOpt = False,
    address: AddressOpt = None,
    namespace: NamespaceOpt = None,
    task_queue: TaskQueueOpt = None,
) -> None:
    """Start a new run at a node of another run, with the outputs that run recorded before it."""
    from runtime.console import print_forked
    from runtime.run_inputs import default_answerer, load_script_option

    try:
        loaded = load_script_option(script)
    except CommandError as exc:
        raise typer.Exit(_report(exc, as_json=as_json)) from None
    service = _run_service(address, namespace, task_queue)
    _serve(lambda: service.fork(run_id, at, by=by or default_answerer(), new_run_id=new_run_id,
                                var_assignments=var or [], script=loaded),
           lambda forked: print_forked(forked, as_json=as_json), as_json=as_json)


# -- live control: budget, pause, resume (runtime/live_control.py; GraphRun's validated updates) ----

ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (recorded in the run's events).")]


@app.command("budget")
def budget_command(
    run_id: RunArg,
    max_cost_usd: Annotated[float | None, typer.Option(
        "--max-cost-usd", help="The new cost limit in US dollars (above the one in force).", show_default=False)] = None,
    max_tokens: Annotated[int | None, typer.Option(
        "--max-tokens", help="The new token limit (above the one in force).", show_default=False)] = None,
    max_iterations: Annotated[int | None, typer.Option(
        "--max-iterations", help="The new iteration limit (above the one in force).", show_default=False)] = None,
    max_duration: Annotated[str | None, typer.Option(
        "--max-duration", help="The new duration limit, e.g. 2h (above the one in force).", show_default=False)] = None,
    grant: Annotated[list[str] | None, typer.Option(
        "--grant", help="LOOP=N: let a loop go round N more times than its bound (repeatable).",
        show_default=False)] = None,
    reason: ReasonOpt = "",
    by: ByOpt = None,
    as_json: JsonOpt = False,
    address: AddressOpt = None,
    namespace: NamespaceOpt = None,
    task_queue: TaskQueueOpt = None,
) -> None:
    """Raise a running run's limits (only upwards) or grant a loop more rounds, without starting over.

    A run that stopped on its budget waits (status waiting_budget); once the raise covers what it has
    spent it goes on where it stopped, without running its finished nodes again. The run refuses a
    limit that is not above the one in force, or an unknown loop, and changes nothing then (exit 1).
    """
    from runtime.live_control import budget_request, print_control
    from runtime.run_inputs import default_answerer

    try:
        raised, grants = budget_request(max_cost_usd=max_cost_usd, max_tokens=max_tokens, max_iterations=max_iterations,
                                        max_duration=max_duration, grants=grant, by=by or default_answerer(),
                                        reason=reason)
    except CommandError as exc:
        raise typer.Exit(_report(exc, as_json=as_json)) from None
    service = _run_service(address, namespace, task_queue, as_json=as_json)
    _serve(lambda: service.raise_budget(run_id, raised, grants), lambda done: print_control(done, as_json=as_json),
           as_json=as_json)


@app.command("pause")
def pause_command(run_id: RunArg, reason: ReasonOpt = "", by: ByOpt = None, as_json: JsonOpt = False,
                  address: AddressOpt = None, namespace: NamespaceOpt = None, task_queue: TaskQueueOpt = None) -> None:
    """Hold a run at its next node boundary (status paused) until `iterloop resume`; nothing is lost."""
    _pause_or_resume("pause", run_id, reason, by, as_json, address, namespace, task_queue)


@app.command("resume")
def resume_command(run_id: RunArg, reason: ReasonOpt = "", by: ByOpt = None, as_json: JsonOpt = False,
                   address: AddressOpt = None, namespace: NamespaceOpt = None, task_queue: TaskQueueOpt = None) -> None:
    """Let a paused run go on from the node boundary it holds at."""
    _pause_or_resume("resume", run_id, reason, by, as_json, address, namespace, task_queue)


def _pause_or_resume(action: Literal["pause", "resume"], run_id: str, reason: str, by: str | None, as_json: bool,
                     address: str | None, namespace: str | None, task_queue: str | None) -> None:
    from runtime.live_control import print_control
    from runtime.run_inputs import default_answerer
    from workflows.contract.state import PauseRequest

    service = _run_service(address, namespace, task_queue, as_json=as_json)
    request = PauseRequest(by=by or default_answerer(), reason=reason)
    control = service.pause if action == "pause" else service.resume
    _serve(lambda: control(run_id, request), lambda done: print_control(done, as_json=as_json), as_json=as_json)


# -- schedule: recurring runs as Temporal Schedules (runtime/schedules.py) --------------------------

schedule_app = typer.Typer(
    help="Recurring runs of a workflow as Temporal Schedules: create, list, describe, pause, unpause, trigger, "
         "delete (docs/runtime.md, Schedules).",
    no_args_is_help=True,
    context_settings=HELP_OPTIONS,
)
app.add_typer(schedule_app, name="schedule")

ScheduleArg = Annotated[str, typer.Argument(help="The schedule id.", metavar="SCHEDULE", show_default=False)]
NoteOpt = Annotated[str | None, typer.Option("--note", help="Why (shown by describe).", show_default=False)]


def _schedules(address: str | None, namespace: str | None, task_queue: str | None, *, offline: bool | None = None,
               as_json: bool = False) -> ScheduleService:
    """The schedule service over the run service of a command on this machine."""
    from runtime.schedules import ScheduleService

    return ScheduleService(_run_service(address, namespace, task_queue, offline=offline, as_json=as_json))


@schedule_app.command("create")
def schedule_create(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The .iter file each firing runs.", show_default=False)],
    every: Annotated[str | None, typer.Option(
        "--every", help="Fire every this long: 7d, 1h, 30s, 1h30m.", show_default=False)] = None,
    cron: Annotated[str | None, typer.Option(
        "--cron", help='Fire at these times: a cron expression, e.g. "0 9 * * MON", or @daily.',
        show_default=False)] = None,
    timezone: Annotated[str | None, typer.Option(
        "--timezone", help="IANA time zone of --cron, e.g. Europe/Paris [default: UTC].", show_default=False)] = None,
    overlap: Annotated[str, typer.Option(
        "--overlap", help="When a firing comes while the previous run is still going: skip, buffer_one, buffer_all, "
                          "cancel_other, terminate_other or allow_all.")] = "skip",
    schedule_id: Annotated[str | None, typer.Option(
        "--id", help="The schedule id [default: the workflow's name]; runs are <id>-<firing time>.",
        show_default=False)] = None,
    note: NoteOpt = None,
    paused: Annotated[bool, typer.Option("--paused", help="Create it paused (unpause or trigger it later).")] = False,
    replace: Annotated[bool, typer.Option(
        "--replace", help="Replace the workflow, vars and times of the schedule with this id (its history and "
                          "paused state stay): how a schedule picks up an edited .iter file.")] = False,
    var: Annotated[list[str] | None, typer.Option(
        "--var", help="Set a var: NAME=VALUE (repeatable), as `iterloop run` takes it.", show_default=False)] = None,
    input_json: Annotated[str | None, typer.Option(
        "--input", help="Run inputs as a JSON object (--var wins for the same name).", show_default=False)] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", "--preset", help="A YAML preset, as `iterloop run --config`.", show_default=False)] = None,
    recipe: Annotated[Path | None, typer.Option(
        "--recipe", help="An Iterion recipe (JSON), as `iterloop run --recipe`.", show_default=False)] = None,
    script: Annotated[Path | None, typer.Option(
        "--script", help="YAML script of model outputs (offline scripted model) [default with --offline: "
                         "FILE's stem + .script.yaml beside it, if present].", show_default=False)] = None,
    offline: Annotated[bool, typer.Option(
        "--offline", help="Each run uses the scripted model for every model call.")] = False,
    skip_gates: Annotated[bool, typer.Option(
        "--skip-gates", help="Answer every human gate automatically, as `iterloop run --skip-gates`.")] = False,
    stop_after: Annotated[list[str] | None, typer.Option(
        "--stop-after", help="End each run right after this node completes (repeatable).", show_default=False)] = None,
    notify_slack: Annotated[str | None, typer.Option(
        "--notify-slack", help="Post each run's gates and result to this Slack channel.", show_default=False)] = None,
    notify_webhook: Annotated[list[str] | None, typer.Option(
        "--notify-webhook", help="POST each run's signed JSON events to this URL (repeatable).",
        show_default=False)] = None,
    no_notify: Annotated[bool, typer.Option("--no-notify", help="Report nowhere.")] = False,
    workdir: Annotated[Path | None, typer.Option(
        "--workdir", help="The directory the runs' shell commands run in, on the worker [default: the current "
                          "directory].", show_default=False)] = None,
    as_json: JsonOpt = False,
    address: AddressOpt = None,
    namespace: NamespaceOpt = None,
    task_queue: TaskQueueOpt = None,
) -> None:
    """Create a schedule that starts a run of FILE at each firing (--every and/or --cron).

    The workflow is compiled now (diagnostics as for `iterloop run`) and each firing runs it as it is
    now: after editing FILE, `iterloop schedule create FILE --id ID --replace` picks up the change.
    The runs are ordinary runs named <id>-<firing time>: `iterloop list --schedule ID` lists them.
    A worker must poll the task queue when it fires (on a local server one is started in the
    background, as for `iterloop run`).
    """
    from pydantic import ValidationError

    from runtime.command_errors import UsageError
    from runtime.notify_options import NotifySection
    from runtime.recipes import recipe_workflow, with_recipe_noted
    from runtime.run_inputs import script_beside
    from runtime.run_start import CompiledWorkflow, StartRequest
    from runtime.schedule_console import print_schedule_created
    from runtime.schedule_models import OVERLAP_POLICIES, ScheduleRequest
    from runtime.schedules import check_schedule_request

    try:
        if overlap not in OVERLAP_POLICIES:
            raise UsageError(f"--overlap {overlap!r} is not a policy; choose one of {', '.join(OVERLAP_POLICIES)}")
        try:
            times = ScheduleRequest(schedule_id=schedule_id, every=every, cron=cron, time_zone=timezone,
                                    overlap=overlap, note=note, paused=paused, replace=replace)  # type: ignore[arg-type]
        except ValidationError as exc:  # only --note can be too long here
            raise UsageError(f"--note: {exc.errors()[0]['msg']}") from None
        check_schedule_request(times, from_cli=True)
    except CommandError as exc:
        raise typer.Exit(_report(exc, as_json=as_json)) from None
    wf = _checked_workflow(ctx, file, as_json=as_json)  # compiled now, once: each firing runs this IR
    try:
        wf, applied_recipe = recipe_workflow(recipe, wf)
    except CommandError as exc:
        raise typer.Exit(_report(exc, as_json=as_json)) from None
    service = _schedules(address, namespace, task_queue, offline=True if offline else None, as_json=as_json)
    found_script = script_beside(file) if script is None and service.runs.configured.offline else None
    request = StartRequest(
        compiled=CompiledWorkflow(workflow=wf, source=str(file), location=str(file.resolve()),
                                  project_dir=str(file.resolve().parent)),
        origin=f"`iterloop schedule create {file}`", given_by="command_line", input_json=input_json,
        var_assignments=var or [], config=config, skip_gates=skip_gates, stop_after=stop_after or [],
        offline=offline, script_file=script or found_script, env=service.runs.environment or dict(os.environ),
        workdir=str((workdir or Path.cwd()).absolute()),
        notify=NotifySection(slack_channel=notify_slack, webhooks=notify_webhook or None, enabled=not no_notify))
    try:
        prepared = with_recipe_noted(service.runs.prepare(request), applied_recipe)
    except CommandError as exc:
        raise typer.Exit(_report(exc, as_json=as_json)) from None
    _serve(lambda: service.create(prepared, times), lambda created: print_schedule_created(created, as_json=as_json),
           as_json=as_json)


@schedule_app.command("list")
def schedule_list(
    limit: Annotated[int, typer.Option("--limit", help="At most this many schedules.", min=1)] = 100,
    as_json: JsonOpt = False, address: AddressOpt = None, namespace: NamespaceOpt = None,
    task_queue: TaskQueueOpt = None,
) -> None:
    """List the schedules (id, workflow, times, state, next and last run)."""
    from runtime.schedule_console import print_schedule_list

    service = _schedules(address, namespace, task_queue, as_json=as_json)
    _serve(lambda: service.list(limit=limit), lambda listing: print_schedule_list(listing, as_json=as_json),
           as_json=as_json)


@schedule_app.command("describe")
def schedule_describe(schedule_id: ScheduleArg, as_json: JsonOpt = False, address: AddressOpt = None,
                      namespace: NamespaceOpt = None, task_queue: TaskQueueOpt = None) -> None:
    """Show a schedule: its workflow and vars, times, overlap policy, state, recent and next runs."""
    from runtime.schedule_console import print_schedule_detail

    service = _schedules(address, namespace, task_queue, as_json=as_json)
    _serve(lambda: service.describe(schedule_id), lambda detail: print_schedule_detail(detail, as_json=as_json),
           as_json=as_json)


@schedule_app.command("pause")
def schedule_pause(schedule_id: ScheduleArg, note: NoteOpt = None, as_json: JsonOpt = False,
                   address: AddressOpt = None, namespace: NamespaceOpt = None, task_queue: TaskQueueOpt = None) -> None:
    """Stop a schedule's firings (a run already going goes on)."""
    _change_schedule(lambda service: service.pause(schedule_id, note), as_json, address, namespace, task_queue)


@schedule_app.command("unpause")
def schedule_unpause(schedule_id: ScheduleArg, note: NoteOpt = None, as_json: JsonOpt = False,
                     address: AddressOpt = None, namespace: NamespaceOpt = None,
                     task_queue: TaskQueueOpt = None) -> None:
    """Let a paused schedule fire again from its next time on."""
    _change_schedule(lambda service: service.unpause(schedule_id, note), as_json, address, namespace, task_queue)


@schedule_app.command("trigger")
def schedule_trigger(
    schedule_id: ScheduleArg,
    overlap: Annotated[str | None, typer.Option(
        "--overlap", help="Overlap policy for this firing [default: the schedule's].", show_default=False)] = None,
    as_json: JsonOpt = False, address: AddressOpt = None, namespace: NamespaceOpt = None,
    task_queue: TaskQueueOpt = None,
) -> None:
    """Fire a schedule once now (even while paused)."""
    _change_schedule(lambda service: service.trigger(schedule_id, overlap),  # type: ignore[arg-type]
                     as_json, address, namespace, task_queue)


@schedule_app.command("delete")
def schedule_delete(schedule_id: ScheduleArg, as_json: JsonOpt = False, address: AddressOpt = None,
                    namespace: NamespaceOpt = None, task_queue: TaskQueueOpt = None) -> None:
    """Delete a schedule (the runs it started are left alone)."""
    _change_schedule(lambda service: service.delete(schedule_id), as_json, address, namespace, task_queue)


def _change_schedule(change: Any, as_json: bool, address: str | None, namespace: str | None,
                     task_queue: str | None) -> None:
    """One schedule command that changes a schedule: ``change(service)`` and its printed result."""
    from runtime.schedule_console import print_schedule_changed

    service = _schedules(address, namespace, task_queue, as_json=as_json)
    _serve(lambda: change(service), lambda done: print_schedule_changed(done, as_json=as_json), as_json=as_json)


worker_app = typer.Typer(
    help="Run a worker in the foreground (no subcommand), or see and stop the background ones `iterloop run` "
         "starts (docs/runtime.md, Workers).")
app.add_typer(worker_app, name="worker")


@worker_app.callback(invoke_without_command=True)
def worker_command(
    ctx: typer.Context,
    offline: Annotated[bool, typer.Option(
        "--offline", help="Use the scripted model for every model call [env ITERLOOP_OFFLINE].")] = False,
    address: AddressOpt = None,
    namespace: NamespaceOpt = None,
    task_queue: TaskQueueOpt = None,
) -> None:
    """Run a worker in the foreground: the interpreter and every activity (Ctrl-C stops it).

    `iterloop worker status` and `iterloop worker stop` list and stop the background workers.
    """
    if ctx.invoked_subcommand is not None:
        return
    from runtime.server_address import settings_for_existing_runs
    from runtime.worker_fingerprint import is_offline_queue, offline_task_queue

    # The model layer reads the process environment: give it `./.env` under what is set already.
    for name, value in _environment().items():
        os.environ.setdefault(name, value)
    settings = settings_for_existing_runs(
        _runtime_settings(address, namespace, task_queue, offline=True if offline else None))

    async def body() -> int:
        import worker
        from runtime.temporal_runs import connect_or_fail

        worker.check_configuration(settings)  # model settings, price file, log level: `UsageError` first
        await connect_or_fail(settings)  # a clear message when the server is not there
        print(f"iterloop: worker polling task queue '{settings.task_queue}' at {settings.address} "
              f"(namespace {settings.namespace}{', offline: scripted model' if settings.offline else ''}); "
              "Ctrl-C stops it", file=sys.stderr)
        if settings.offline and not is_offline_queue(settings.task_queue):
            print(f"iterloop: note: `iterloop run --offline` starts offline runs on task queue "
                  f"'{offline_task_queue(settings.task_queue)}'; give --task-queue "
                  f"{offline_task_queue(settings.task_queue)} to serve them", file=sys.stderr)
        await worker.run_worker(settings)
        return EXIT_OK

    _execute(body(), as_json=False, on_interrupt=lambda: "worker stopped")


@worker_app.command("status")
def worker_status_command(as_json: JsonDoc = False) -> None:
    """List the background workers started from this directory: pid, task queue, offline or not, start
    time, directory, model settings (key names only), log."""
    from runtime.worker_commands import worker_status

    settings = _runtime_settings(as_json=as_json)
    _finish(lambda: worker_status(settings, as_json=as_json), as_json=as_json)


@worker_app.command("stop")
def worker_stop_command(as_json: JsonDoc = False) -> None:
    """Stop the background workers started from this directory (runs are durable: the next command
    that needs a worker starts one)."""
    from runtime.worker_commands import worker_stop

    settings = _runtime_settings(as_json=as_json)
    _finish(lambda: worker_stop(settings, as_json=as_json), as_json=as_json)


def main() -> None:
    """Console-script entry point (`iterloop = "cli:main"`)."""
    app(prog_name="iterloop")


if __name__ == "__main__":
    main()

"""The runtime commands: `iterloop run`, `answer`, `inspect`, `list`, `events`, `report`, `retry`, `cancel`, `worker`.

cli.py registers them with `register(app)`. This module is the typer layer: each command reads its
options, builds the `Settings` (the environment is read once, here) and hands a coroutine to
`execute`, which turns `CommandError`s into `iterloop: message` and the exit code. What the
commands do lives beside it in `runtime/`:

    command_errors.py      exit codes (listed there for developers; `docs/runtime.md` for users), errors
    run_inputs.py          --var, --input, ${ENV} defaults, --answer / --answers-file, --script
    server_address.py      which Temporal server (the local dev server unless configured), Web UI links
    temporal_runs.py       connect, turn SDK errors into messages, describe and query runs, run statuses
    background_workers.py  reuse a worker polling the task queue, or start one (.iterloop/worker.json)
    console.py             terminal output: tables, event and progress lines, gates, gate prompts
    run_follow.py          `run`: start a run and follow it
    run_views.py           `inspect`, `list`, `events`, `report`
    run_control.py         `answer`, `retry`, `cancel`

`iterloop validate` must start fast, so at import time these modules load only the standard
library, typer, `runtime.settings` and the pure `dsl`; the Temporal client, the workflow modules and
the worker are imported inside the functions that use them.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from runtime.command_errors import EXIT_CANCELLED, EXIT_OK, EXIT_USAGE, CommandError, UsageError
from runtime.run_control import cancel_run, retry_run, send_answer
from runtime.run_follow import RunRequest, start_and_follow
from runtime.run_inputs import (
    default_answerer,
    load_answers_file,
    load_script_option,
    missing_vars,
    parse_answer_assignments,
    parse_input_json,
    parse_var_assignments,
    resolve_env_defaults,
    script_beside,
)
from runtime.run_views import inspect_run, list_runs, print_events, write_report
from runtime.server_address import settings_for_existing_runs
from runtime.settings import Settings, SettingsError
from runtime.temporal_runs import RUN_STATUSES, connect_or_fail

# -- running a command ---------------------------------------------------------------------------


def command_settings(address: str | None, namespace: str | None, task_queue: str | None,
                     *, offline: bool | None = None) -> Settings:
    """The environment (read once, here) with the command line's overrides on top.

    A variable iterloop cannot use ends the command: `iterloop: <what is wrong>`, exit 2."""
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"iterloop: {exc}", file=sys.stderr)
        raise typer.Exit(EXIT_USAGE) from None
    return settings.with_overrides(address=address, namespace=namespace, task_queue=task_queue, offline=offline)


#: End the process with `os._exit` once a command that used Temporal is done. The SDK's Rust threads
#: can abort interpreter shutdown ("Fatal Python error: PyGILState_Release ... finalizing",
#: temporalio/sdk-python#300; seen here when a worker stops), which would turn the command's exit
#: code into 134. Code that calls the commands in-process (a test harness) sets this to False.
HARD_EXIT = True


def exit_command(code: int) -> NoReturn:
    if HARD_EXIT and "temporalio" in sys.modules:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise typer.Exit(code)


def execute(main: Coroutine[Any, Any, int], *, as_json: bool,
            on_interrupt: Callable[[], str] | None = None) -> NoReturn:
    """Run a command's coroutine and exit with its code; errors become `iterloop: message`."""
    try:
        code = asyncio.run(main)
    except CommandError as exc:
        if as_json:
            print(json.dumps({"error": str(exc), "exit_code": exc.exit_code}))
        print(f"iterloop: {exc}", file=sys.stderr)
        code = exc.exit_code
    except KeyboardInterrupt:
        message = on_interrupt() if on_interrupt else "interrupted"
        print(f"\niterloop: {message}", file=sys.stderr)
        code = EXIT_CANCELLED
    exit_command(code)


# -- options shared by the commands --------------------------------------------------------------

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


# -- run -----------------------------------------------------------------------------------------


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
    address: AddressOpt = None,
    namespace: NamespaceOpt = None,
    task_queue: TaskQueueOpt = None,
) -> None:
    """Run a workflow on Temporal and follow it: events as they happen, prompts at human gates.

    Exit codes: 0 finished, 1 failed or compile errors, 2 usage error, 3 waiting for a human,
    4 parked (failed_resumable: fix, then `iterloop retry`), 5 budget exceeded, 130 cancelled.
    """
    import cli  # its diagnostics rendering and compile options, the same as `iterloop validate`

    result = cli.check_or_exit(ctx, file)
    wf = result.workflow
    assert wf is not None
    settings = command_settings(address, namespace, task_queue, offline=True if offline else None)
    try:
        from runtime.notify_options import NotifySection
        from runtime.presets import prepare_run

        preset = prepare_run(config, wf, skip_gates=skip_gates, stop_after=stop_after or [])
        wf = preset.workflow
        inputs = {**preset.inputs, **parse_input_json(input_json), **parse_var_assignments(var or [], wf)}
        env_values, warnings = resolve_env_defaults(wf, inputs, os.environ)
        missing = missing_vars(wf, inputs)
        if missing:
            raise UsageError(f"workflow '{wf.name}' needs a value for var(s) {', '.join(missing)}; "
                             + " ".join(f"--var {n}=…" for n in missing))
        found_script = script_beside(file) if script is None and settings.offline else None
        loaded_script = load_script_option(script or found_script)
    except CommandError as exc:
        print(f"iterloop: {exc}", file=sys.stderr)
        raise typer.Exit(exc.exit_code) from None
    for warning in warnings:
        print(f"iterloop: warning: {warning}", file=sys.stderr)
    if found_script is not None:
        print(f"iterloop: offline: model outputs from {found_script} (found beside the file; --script chooses "
              "another)", file=sys.stderr)
    for line in preset.notes:
        print(f"iterloop: {line}", file=sys.stderr)
    cli_notify = NotifySection(slack_channel=notify_slack, webhooks=notify_webhook or None, enabled=not no_notify)
    request = RunRequest(file=file, wf=wf, inputs={**env_values, **inputs}, run_id=run_id,
                         script=loaded_script if loaded_script is not None else ({} if settings.offline else None),
                         detach=detach, as_json=as_json, by=by or default_answerer(),
                         run_options=preset.run_options, details=preset.notes, summary=preset.summary,
                         notify_preset=preset.notify, notify_request=cli_notify)
    started: list[str] = []
    execute(start_and_follow(settings, request, started), as_json=as_json, on_interrupt=lambda: (
        f"stopped following; run {started[0]} goes on. Follow it again with `iterloop events {started[0]} "
        f"--follow`, stop it with `iterloop cancel {started[0]}`" if started else "interrupted"))


# -- answer --------------------------------------------------------------------------------------


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
    as_json: JsonOpt = False,
    address: AddressOpt = None,
    namespace: NamespaceOpt = None,
    task_queue: TaskQueueOpt = None,
) -> None:
    """Answer a human gate (a validated update; --signal for fire and forget).

    The update is checked before anything is recorded: a wrong field, type or gate is refused at
    once with the reason (exit 1).
    """
    if answer and answers_file is not None:
        _usage_exit("give the answers with --answer or with --answers-file, not both", as_json)
    try:
        values: dict[str, Any] = (load_answers_file(answers_file) if answers_file is not None
                                  else parse_answer_assignments(answer or []))
    except CommandError as exc:
        _usage_exit(str(exc), as_json)
    settings = settings_for_existing_runs(command_settings(address, namespace, task_queue))
    execute(send_answer(settings, run_id, gate, values, by=by or default_answerer(), use_signal=use_signal,
                        as_json=as_json), as_json=as_json)


def _usage_exit(message: str, as_json: bool) -> NoReturn:
    if as_json:
        print(json.dumps({"error": message, "exit_code": EXIT_USAGE}))
    print(f"iterloop: {message}", file=sys.stderr)
    raise typer.Exit(EXIT_USAGE)


# -- inspect -------------------------------------------------------------------------------------


def inspect_command(
    run_id: RunArg,
    as_json: JsonOpt = False,
    address: AddressOpt = None,
    namespace: NamespaceOpt = None,
    task_queue: TaskQueueOpt = None,
) -> None:
    """Show a run: status, nodes, open gates, failures, budget and its Web UI link.

    The node table has each node's visits, status, tokens and cost; open gates show their
    instructions and expected fields; failures show the retry command.
    """
    settings = settings_for_existing_runs(command_settings(address, namespace, task_queue))
    execute(inspect_run(settings, run_id, as_json=as_json), as_json=as_json)


# -- list ----------------------------------------------------------------------------------------


def list_command(
    status: Annotated[str | None, typer.Option(
        "--status", help=f"Only runs with this status: {', '.join(RUN_STATUSES)}.", show_default=False)] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many runs.", min=1)] = 20,
    as_json: JsonOpt = False,
    address: AddressOpt = None,
    namespace: NamespaceOpt = None,
    task_queue: TaskQueueOpt = None,
) -> None:
    """List runs (id, workflow, status, start time, cost) from Temporal's visibility store."""
    if status is not None and status not in RUN_STATUSES:
        _usage_exit(f"unknown status '{status}'; choose one of: {', '.join(RUN_STATUSES)}", as_json)
    settings = settings_for_existing_runs(command_settings(address, namespace, task_queue))
    execute(list_runs(settings, status=status, limit=limit, as_json=as_json), as_json=as_json)


# -- events --------------------------------------------------------------------------------------


def events_command(
    run_id: RunArg,
    follow: Annotated[bool, typer.Option(
        "--follow", "-f", help="Keep printing new events until the run ends.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line (JSON Lines).")] = False,
    address: AddressOpt = None,
    namespace: NamespaceOpt = None,
    task_queue: TaskQueueOpt = None,
) -> None:
    """Print a run's events: time, node, branch and what happened."""
    settings = settings_for_existing_runs(command_settings(address, namespace, task_queue))
    execute(print_events(settings, run_id, follow=follow, as_json=as_json), as_json=False,
            on_interrupt=lambda: "stopped following (the run goes on)")


# -- report --------------------------------------------------------------------------------------


def report_command(
    run_id: RunArg,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write the Markdown here instead of stdout.", show_default=False)] = None,
    address: AddressOpt = None,
    namespace: NamespaceOpt = None,
    task_queue: TaskQueueOpt = None,
) -> None:
    """Write a Markdown report of a run: summary, timeline, artifacts, tokens and cost per node."""
    settings = settings_for_existing_runs(command_settings(address, namespace, task_queue))
    execute(write_report(settings, run_id, output), as_json=False)


# -- retry and cancel ----------------------------------------------------------------------------


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
    settings = settings_for_existing_runs(command_settings(address, namespace, task_queue))
    execute(retry_run(settings, run_id, node, as_json=as_json), as_json=as_json)


def cancel_command(
    run_id: RunArg,
    as_json: JsonOpt = False,
    address: AddressOpt = None,
    namespace: NamespaceOpt = None,
    task_queue: TaskQueueOpt = None,
) -> None:
    """Cancel a run: it stops where it is and ends with status cancelled."""
    settings = settings_for_existing_runs(command_settings(address, namespace, task_queue))
    execute(cancel_run(settings, run_id, as_json=as_json), as_json=as_json)


# -- worker --------------------------------------------------------------------------------------


def worker_command(
    offline: Annotated[bool, typer.Option(
        "--offline", help="Use the scripted model for every model call [env ITERLOOP_OFFLINE].")] = False,
    address: AddressOpt = None,
    namespace: NamespaceOpt = None,
    task_queue: TaskQueueOpt = None,
) -> None:
    """Run a worker in the foreground: the interpreter and every activity (Ctrl-C stops it)."""
    settings = settings_for_existing_runs(
        command_settings(address, namespace, task_queue, offline=True if offline else None))
    execute(run_foreground_worker(settings), as_json=False, on_interrupt=lambda: "worker stopped")


async def run_foreground_worker(settings: Settings) -> int:
    from worker import check_configuration, run_worker

    check_configuration(settings)  # model settings, price file, log level: `UsageError` before anything starts
    await connect_or_fail(settings)  # a clear message when the server is not there
    print(f"iterloop: worker polling task queue '{settings.task_queue}' at {settings.address} "
          f"(namespace {settings.namespace}{', offline: scripted model' if settings.offline else ''}); "
          "Ctrl-C stops it", file=sys.stderr)
    await run_worker(settings)
    return EXIT_OK


# -- registration --------------------------------------------------------------------------------


def register(app: typer.Typer) -> None:
    """Add the runtime commands to the `iterloop` app (cli.py calls this once)."""
    app.command("run")(run_command)
    app.command("answer")(answer_command)
    app.command("inspect")(inspect_command)
    app.command("list")(list_command)
    app.command("events")(events_command)
    app.command("report")(report_command)
    app.command("retry")(retry_command)
    app.command("cancel")(cancel_command)
    if not any((c.name or getattr(c.callback, "__name__", "")) == "worker" for c in app.registered_commands):
        app.command("worker")(worker_command)  # unless cli.py already has its own

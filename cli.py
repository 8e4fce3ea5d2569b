"""The `iterloop` command: check, draw, format, compile and run `.iter` workflows.

This module sits on top of `dsl/` and wires it to the terminal. It renders diagnostics (which the
DSL produces as plain data) for humans or as JSON, maps outcomes to exit codes, and reads the
environment once, at the edge, into a `Settings` object.

Exit codes, for every command:
    0  success (warnings alone do not fail)
    1  the input has problems: diagnostics with errors, files that `fmt --check` would change
    2  usage or I/O error: unknown option, missing or unreadable file, unknown run id
Run commands add (see runtime/command_errors.py and docs/runtime.md):
    3  the run waits for a human answer (non-interactive `run`)
    4  the run is parked as failed_resumable (fix the cause, then `iterloop retry`)
    5  the run stopped because a budget was exceeded
  130  the run was cancelled

Start-up time matters (`iterloop validate` runs in editors and pre-commit hooks), so the imports
at module level are limited to the standard library, typer, `dsl` (which is pure and never
imports temporalio or an LLM SDK) and `workflows.contract.tool_catalog` (the builtin tool names as plain
data, for C105). Commands that need anything heavier import it inside their function:
`dsl.mermaid`, `dsl.unparse`, and the Temporal client, worker and LLM providers used by the
runtime commands registered from runtime/run_commands.py. Keep it that way:
tests/test_cli.py asserts that `import cli` loads neither temporalio nor anthropic nor openai.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TextIO

import typer

from dsl import IR_FORMAT_VERSION, CheckResult, CompileOptions, Diagnostic, check_file, parse
from dsl.lexer import decode_source
from workflows.contract.tool_catalog import builtin_tool_names

if TYPE_CHECKING:  # the runtime is imported lazily, inside the commands that use it
    from runtime.devserver import ServerInfo
    from runtime.settings import Settings as RuntimeSettings

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2


# -- settings (read once, here) ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the commands take from the environment, read once when the CLI starts.

    ``default_model`` fills an empty `model:` (ITERLOOP_DEFAULT_MODEL, or Iterion's
    ITERION_DEFAULT_SUPERVISOR_MODEL so existing setups keep working). ``no_color`` follows
    https://no-color.org: any non-empty NO_COLOR disables colour.
    """

    default_model: str = ""
    no_color: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        model = env.get("ITERLOOP_DEFAULT_MODEL") or env.get("ITERION_DEFAULT_SUPERVISOR_MODEL") or ""
        return cls(default_model=model.strip(), no_color=bool(env.get("NO_COLOR")))

    def compile_options(self) -> CompileOptions:
        # The light catalog, not the registry: the registry imports temporalio and the connectors.
        return CompileOptions(default_model=self.default_model, known_tools=builtin_tool_names())

    def use_color(self, stream: TextIO) -> bool:
        """Colour only for a terminal, so pipes, files and CI logs get plain text."""
        return not self.no_color and _is_tty(stream)


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


def _settings(ctx: typer.Context) -> Settings:
    """The settings the root callback stored; read from the environment if a command runs alone."""
    root = ctx.find_root()
    if not isinstance(root.obj, Settings):
        root.obj = Settings.from_env(os.environ)
    return root.obj


# -- rendering diagnostics -----------------------------------------------------------------------


_ANSI = {"error": "\x1b[1;31m", "warning": "\x1b[1;33m", "bold": "\x1b[1m", "hint": "\x1b[36m", "reset": "\x1b[0m"}


class _Painter:
    """Wraps text in ANSI colours, or leaves it alone when colour is off."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, style: str, text: str) -> str:
        return f"{_ANSI[style]}{text}{_ANSI['reset']}" if self.enabled else text


def source_lines(source: str) -> list[str]:
    """Split like the lexer does (on LF, dropping a CR before it) so line numbers agree."""
    return [line[:-1] if line.endswith("\r") else line for line in source.split("\n")]


def caret_line(line: str, column: int, length: int) -> str:
    """Spaces up to ``column`` (tabs copied, so the caret lines up however tabs render), then carets.

    The caret run is clipped to the end of the line but is never empty, so a diagnostic at the
    end of a line (a missing token) still points somewhere.
    """
    before = line[: max(0, column - 1)]
    prefix = "".join("\t" if ch == "\t" else " " for ch in before)
    prefix += " " * max(0, column - 1 - len(before))
    available = max(1, len(line) - (column - 1))
    return prefix + "^" * max(1, min(length, available))


def render_diagnostic(diag: Diagnostic, lines: list[str] | None, paint: _Painter) -> str:
    """`file:line:col: severity [CODE]: message`, the source line, a caret line and the hint."""
    where = f"{diag.file or '<input>'}:{diag.line}:{diag.column}"
    out = [f"{paint('bold', where)}: {paint(diag.severity, diag.severity)} [{diag.code}]: {diag.message}"]
    if lines is not None and 1 <= diag.line <= len(lines):
        text = lines[diag.line - 1]
        out.append(f"    {text}")
        out.append(f"    {paint(diag.severity, caret_line(text, diag.column, diag.length))}")
    if diag.hint:
        out.append(f"  {paint('hint', 'hint:')} {diag.hint}")
    return "\n".join(out)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def summary_line(errors: int, warnings: int, files: int) -> str:
    return f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')} in {_plural(files, 'file')}"


def print_diagnostics(result: CheckResult, stream: TextIO, paint: _Painter) -> None:
    lines = source_lines(result.source) if result.source else None
    for diag in result.diagnostics:
        print(render_diagnostic(diag, lines, paint), file=stream)


def usage_error(message: str) -> NoReturn:
    """Print ``iterloop: message`` on stderr and exit 2 (the user must fix the command line)."""
    print(f"iterloop: {message}", file=sys.stderr)
    raise typer.Exit(EXIT_USAGE)


def describe_os_error(path: Path | str, exc: OSError) -> str:
    """`cannot read 'x.iter': No such file or directory`: names the file and the reason."""
    reason = exc.strerror or exc.__class__.__name__
    return f"cannot read '{path}': {reason}"


# -- checking files ------------------------------------------------------------------------------


@dataclass
class FileReport:
    """The outcome for one file: a check result, or the I/O error that prevented checking it."""

    path: str
    result: CheckResult | None = None
    io_error: str = ""

    @property
    def ok(self) -> bool:
        return self.result is not None and self.result.ok

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "file": self.path,
            "ok": self.ok,
            "diagnostics": [d.model_dump() for d in self.result.diagnostics] if self.result else [],
        }
        if self.result is not None and self.result.workflow is not None:
            data["workflow"] = self.result.workflow.name
        if self.io_error:
            data["error"] = self.io_error
        return data


def check_one(path: Path, options: CompileOptions) -> FileReport:
    try:
        return FileReport(str(path), result=check_file(path, options=options))
    except OSError as exc:
        return FileReport(str(path), io_error=describe_os_error(path, exc))


def check_or_exit(ctx: typer.Context, path: Path) -> CheckResult:
    """Check one file for a command that needs a clean workflow (diagram, compile).

    Those commands write their product on stdout, so diagnostics go to stderr; errors stop the
    command (exit 1), warnings are shown and the command goes on.
    """
    settings = _settings(ctx)
    try:
        result = check_file(path, options=settings.compile_options())
    except OSError as exc:
        usage_error(describe_os_error(path, exc))
    paint = _Painter(settings.use_color(sys.stderr))
    print_diagnostics(result, sys.stderr, paint)
    if not result.ok:
        print(summary_line(len(result.errors), len(result.warnings), 1), file=sys.stderr)
        raise typer.Exit(EXIT_PROBLEMS)
    return result


def _node_summary(result: CheckResult) -> str:
    wf = result.workflow
    if wf is None:
        return ""
    steps = sum(1 for node in wf.nodes.values() if node.kind not in ("done", "fail"))
    return f"workflow '{wf.name}': {_plural(steps, 'node')}, {_plural(len(wf.edges), 'edge')}"


# -- the app -------------------------------------------------------------------------------------

app = typer.Typer(
    name="iterloop",
    help="Durable AI workflows declared in .iter files, run on Temporal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold API keys read from the environment
)


@app.callback()
def root(ctx: typer.Context) -> None:
    """Durable AI workflows declared in .iter files, run on Temporal."""
    ctx.obj = Settings.from_env(os.environ)


FilesArg = Annotated[list[Path], typer.Argument(help=".iter files", show_default=False)]
FileArg = Annotated[Path, typer.Argument(help="an .iter file", show_default=False)]


@app.command()
def validate(
    ctx: typer.Context,
    files: FilesArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Parse, compile and validate workflows without running them."""
    settings = _settings(ctx)
    options = settings.compile_options()
    reports = [check_one(path, options) for path in files]
    errors = sum(len(r.result.errors) for r in reports if r.result)
    warnings = sum(len(r.result.warnings) for r in reports if r.result)

    if as_json:
        doc = {"files": [r.to_json() for r in reports], "errors": errors, "warnings": warnings}
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        for r in reports:
            if r.io_error:
                print(f"iterloop: {r.io_error}", file=sys.stderr)
    else:
        print_validation(reports, settings, errors, warnings)

    raise typer.Exit(validation_exit_code(reports))


def print_validation(reports: list[FileReport], settings: Settings, errors: int, warnings: int) -> None:
    """Diagnostics on stdout (they are this command's product), I/O errors on stderr, a summary."""
    paint = _Painter(settings.use_color(sys.stdout))
    for report in reports:
        if report.io_error:
            print(f"iterloop: {report.io_error}", file=sys.stderr)
            continue
        assert report.result is not None
        print_diagnostics(report.result, sys.stdout, paint)
        if report.ok:
            print(f"{report.path}: ok, {_node_summary(report.result)}")
    checked = sum(1 for r in reports if r.result is not None)
    unreadable = len(reports) - checked
    tail = f" ({_plural(unreadable, 'file')} could not be read)" if unreadable else ""
    print(summary_line(errors, warnings, checked) + tail)


def validation_exit_code(reports: Iterable[FileReport]) -> int:
    reports = list(reports)
    if any(r.io_error for r in reports):
        return EXIT_USAGE
    return EXIT_OK if all(r.ok for r in reports) else EXIT_PROBLEMS


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
) -> None:
    """Draw a workflow as a Mermaid flowchart (paste it in GitHub Markdown or mermaid.live)."""
    from dsl import mermaid  # lazy: only this command needs it

    chosen = diagram_view(view, detailed=detailed, full=full, known=mermaid.VIEWS)
    result = check_or_exit(ctx, file)
    assert result.workflow is not None
    text = mermaid.to_mermaid(result.workflow, view=chosen).rstrip("\n") + "\n"
    if output is None:
        sys.stdout.write(text)
        return
    try:
        write_atomically(output, text)
    except OSError as exc:
        usage_error(f"cannot write '{output}': {exc.strerror or exc}")
    print(f"wrote {output}", file=sys.stderr)


def diagram_view(view: str, *, detailed: bool, full: bool, known: Iterable[str]) -> str:
    """Resolve --view and its Iterion-style shortcuts --detailed / --full into one view name."""
    known = tuple(known)
    shortcuts = [name for name, on in (("detailed", detailed), ("full", full)) if on]
    if len(shortcuts) > 1 or (shortcuts and view not in ("compact", shortcuts[0])):
        usage_error("choose one view: --view, --detailed and --full disagree")
    chosen = shortcuts[0] if shortcuts else view
    if chosen not in known:
        usage_error(f"unknown view '{chosen}'; choose one of: {', '.join(known)}")
    return chosen


@app.command()
def fmt(
    ctx: typer.Context,
    files: FilesArg,
    check: Annotated[bool, typer.Option("--check", help="List files that would change; write nothing.")] = False,
) -> None:
    """Rewrite files in the canonical layout (only files that change; never files with parse errors)."""
    from dsl.unparse import format_source  # lazy: only this command needs it

    paint = _Painter(_settings(ctx).use_color(sys.stdout))
    outcome = FmtOutcome()
    for path in files:
        format_one(path, format_source, check=check, outcome=outcome, paint=paint)
    if check and outcome.would_change:
        print(f"{_plural(len(outcome.would_change), 'file')} would be reformatted")
    raise typer.Exit(outcome.exit_code())


@dataclass
class FmtOutcome:
    """What `fmt` did to each file, to decide the exit code once all files are processed."""

    would_change: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    io_errors: list[str] = field(default_factory=list)

    def exit_code(self) -> int:
        if self.io_errors:
            return EXIT_USAGE
        return EXIT_PROBLEMS if self.failed or self.would_change else EXIT_OK


def format_one(
    path: Path, format_source: Callable[[str], str], *, check: bool, outcome: FmtOutcome, paint: _Painter
) -> None:
    """Format one file, recording the outcome; the file is only touched when its text changes."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        outcome.io_errors.append(str(path))
        print(f"iterloop: {describe_os_error(path, exc)}", file=sys.stderr)
        return
    source, problem = decode_source(data)
    if source is None:
        assert problem is not None
        report_unformattable(path, [problem.model_copy(update={"file": str(path)})], "", outcome, paint)
        return
    try:
        formatted = format_source(source)
    except ValueError as exc:
        report_unformattable(path, parse_errors(source, str(path)), str(exc), outcome, paint, source)
        return
    if formatted == source:
        return
    if check:
        outcome.would_change.append(str(path))
        print(f"would reformat {path}")
        return
    try:
        write_atomically(path, formatted)
    except OSError as exc:
        outcome.io_errors.append(str(path))
        print(f"iterloop: cannot write '{path}': {exc.strerror or exc}", file=sys.stderr)
        return
    print(f"reformatted {path}")


def parse_errors(source: str, file: str) -> list[Diagnostic]:
    _, diags = parse(source)
    return [d.model_copy(update={"file": file}) for d in diags if d.is_error]


def report_unformattable(
    path: Path, diags: list[Diagnostic], reason: str, outcome: FmtOutcome, paint: _Painter, source: str = ""
) -> None:
    """A file that does not parse is left untouched; say why, with the parse errors if known."""
    outcome.failed.append(str(path))
    lines = source_lines(source) if source else None
    for diag in diags:
        print(render_diagnostic(diag, lines, paint))
    detail = f": {reason}" if reason and not diags else ""
    print(f"{path}: not formatted, the file has parse errors{detail}")


def write_atomically(path: Path, text: str) -> None:
    """Write to a temp file in the same directory, then rename over the target.

    A crash or a full disk leaves either the old file or the new one, never half of each; the
    original's permission bits are kept, and a symlink keeps pointing at the file it names.
    """
    path = path.resolve()
    directory = path.parent
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        else:
            os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@app.command("compile")
def compile_(ctx: typer.Context, file: FileArg) -> None:
    """Print the compiled IR as JSON (what a run executes; diagnostics go to stderr)."""
    result = check_or_exit(ctx, file)
    assert result.workflow is not None
    print(result.workflow.to_json())


# -- init ------------------------------------------------------------------------------------------

HELLO_ITER = """\
## hello.iter: the smallest useful loop. A writer drafts a paragraph, a reviewer judges it,
## and the draft goes back for revision (at most 3 times) until it is approved.
## Check it with `iterloop validate hello.iter`, draw it with `iterloop diagram hello.iter`.
vars:
  topic: string = "durable AI workflows"

prompt writer_system:
  You write one short, friendly and accurate paragraph for newcomers.

prompt writer_user:
  Write a short introduction to {{vars.topic}}.
  If a reviewer left feedback on an earlier draft, address it:
  {{outputs.reviewer.history}}

prompt reviewer_system:
  You review a paragraph for accuracy and clarity.
  Approve it only if a newcomer would understand it.

prompt reviewer_user:
  Review this paragraph about {{vars.topic}}:
  {{outputs.writer.text}}

schema draft:
  text: string

schema verdict:
  approved: bool
  feedback: string

agent writer:
  model: "claude-sonnet-4-5"
  output: draft
  system: writer_system
  user: writer_user

judge reviewer:
  model: "claude-sonnet-4-5"
  output: verdict
  system: reviewer_system
  user: reviewer_user

workflow hello:
  entry: writer

  budget:
    max_cost_usd: 1
    max_iterations: 10

  writer -> reviewer
  reviewer -> done when approved
  reviewer -> writer when not approved as revise(3)
"""

GITIGNORE = """\
# iterloop
.env
.iterloop/
__pycache__/
.venv/
"""

ENV_EXAMPLE = """\
# Copy to .env and fill in; never commit .env.
ANTHROPIC_API_KEY=
OPENAI_API_KEY=
# Used for agents, judges and llm routers that leave `model:` empty.
ITERLOOP_DEFAULT_MODEL=
"""

README_SNIPPET = """\
# My iterloop workflows

`hello.iter` is a writer/reviewer loop declared in iterloop's `.iter` language.

```sh
iterloop validate hello.iter                   # check it (exit 1 on errors)
iterloop diagram hello.iter --view detailed    # draw it as a Mermaid flowchart
iterloop fmt hello.iter                        # normalise its layout
iterloop compile hello.iter                    # print the compiled IR (JSON)
```

Copy `.env.example` to `.env` and set an API key before running workflows.
"""

#: What `iterloop init` writes, in order. Keep hello.iter valid: tests/test_cli.py validates it.
SCAFFOLD: tuple[tuple[str, str], ...] = (
    ("hello.iter", HELLO_ITER),
    ("README.md", README_SNIPPET),
    (".env.example", ENV_EXAMPLE),
    (".gitignore", GITIGNORE),
)


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Where to create the project.")] = Path("."),
) -> None:
    """Scaffold an example project; existing files are never overwritten."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        usage_error(f"cannot create directory '{directory}': {exc.strerror or exc}")
    if not directory.is_dir():
        usage_error(f"'{directory}' exists and is not a directory")
    for name, content in SCAFFOLD:
        target = directory / name
        if target.exists():
            print(f"skipped {target} (already exists)")
            continue
        try:
            write_new_file(target, content)
        except FileExistsError:
            print(f"skipped {target} (already exists)")
            continue
        except OSError as exc:
            usage_error(f"cannot write '{target}': {exc.strerror or exc}")
        print(f"created {target}")
    print(f"next: iterloop validate {directory / 'hello.iter'}")


def write_new_file(path: Path, content: str) -> None:
    """Create ``path`` exclusively, so a file appearing meanwhile is not clobbered either."""
    with open(path, "x", encoding="utf-8", newline="") as handle:
        handle.write(content)


# -- server: the local Temporal dev server ---------------------------------------------------------

server_app = typer.Typer(
    help="Run the local Temporal dev server (data in .iterloop/temporal.db, Web UI on port 8233).",
    no_args_is_help=True,
)
app.add_typer(server_app, name="server")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


def _runtime_settings() -> RuntimeSettings:
    """The runtime settings from the environment; a value iterloop cannot use is a usage error (exit 2)."""
    from runtime.settings import Settings as RuntimeSettings
    from runtime.settings import SettingsError

    try:
        return RuntimeSettings.from_env(os.environ)
    except SettingsError as exc:
        usage_error(str(exc))


def _display_path(path: str) -> str:
    """Relative to the working directory when inside it (`.iterloop/temporal.db`), else absolute."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def print_server(info: ServerInfo, *, headline: str) -> None:
    print(headline)
    print(f"  address:  {info.address}  (namespace {info.namespace})")
    print(f"  Web UI:   {info.ui_url or 'off (started with --headless)'}")
    print(f"  data:     {_display_path(info.db_path)}  (closed runs kept 30 days)")
    print(f"  log:      {_display_path(info.log_path)}")
    print(f"Point the worker at it: TEMPORAL_ADDRESS={info.address} iterloop worker")
    print("Stop it with: iterloop server stop")


@server_app.command("start")
def server_start(
    headless: Annotated[bool, typer.Option("--headless", help="Do not serve the Web UI.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Start the dev server in the background, or report the one already running.

    The address comes from TEMPORAL_ADDRESS (default localhost:7233), the UI port from
    ITERLOOP_UI_PORT (default 8233), the state directory from ITERLOOP_HOME (default .iterloop).
    """
    from runtime import devserver

    try:
        info = devserver.start(_runtime_settings(), headless=headless)
    except devserver.DevServerError as exc:
        usage_error(str(exc))
    if as_json:
        print(json.dumps({"state": "running", "reused": info.reused, **info.model_dump(mode="json")}))
        return
    if info.reused:
        uptime = devserver.format_uptime(info.uptime_seconds())
        headline = f"Temporal dev server already running (pid {info.pid}, up {uptime})"
    else:
        headline = f"Temporal dev server started (pid {info.pid})"
    print_server(info, headline=headline)


@server_app.command("stop")
def server_stop(as_json: JsonOpt = False) -> None:
    """Stop the dev server started from this directory (its data stays in .iterloop/temporal.db)."""
    from runtime import devserver
    from runtime.background_workers import stop_background_workers

    settings = _runtime_settings()
    workers = stop_background_workers(settings)
    try:
        info = devserver.stop(settings)
    except devserver.DevServerError as exc:
        usage_error(str(exc))
    if workers and not as_json:
        print(f"stopped {len(workers)} background worker(s): pid {', '.join(map(str, workers))}")
    if as_json:
        print(json.dumps({"stopped": info is not None, "server": info.model_dump(mode="json") if info else None,
                          "workers_stopped": workers}))
    elif info is None:
        print("no dev server was running")
    else:
        print(f"stopped the Temporal dev server (pid {info.pid}); data kept in {_display_path(info.db_path)}")


@server_app.command("status")
def server_status(as_json: JsonOpt = False) -> None:
    """Say whether the dev server is running, where, and for how long (exit 1 when stopped)."""
    from runtime import devserver

    current = devserver.status(_runtime_settings())
    if as_json:
        print(json.dumps(current.model_dump(mode="json")))
    elif current.state == "running" and current.server is not None:
        uptime = devserver.format_uptime(current.uptime_seconds or 0)
        answering = "" if current.reachable else "; its port does not answer yet"
        headline = f"Temporal dev server running (pid {current.server.pid}, up {uptime}{answering})"
        print_server(current.server, headline=headline)
    else:
        print(f"Temporal dev server stopped ({current.detail})")
        print("Start it with: iterloop server start")
    raise typer.Exit(EXIT_OK if current.state == "running" else EXIT_PROBLEMS)


# -- version ---------------------------------------------------------------------------------------


def package_version() -> str:
    """The installed distribution's version; a source checkout that is not installed says so."""
    from importlib.metadata import PackageNotFoundError, version  # lazy: costs start-up time

    try:
        return version("iterloop")
    except PackageNotFoundError:
        return "0+unknown (not installed: run `make setup`)"


@app.command("version")
def version_(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Print iterloop's version, the Python version and the IR format version."""
    import platform

    python = platform.python_version()
    if as_json:
        doc = {"iterloop": package_version(), "python": python, "ir_format_version": IR_FORMAT_VERSION}
        print(json.dumps(doc))
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
        usage_error(str(exc))
    from api.app import serve

    print(f"iterloop: API and dashboard on http://{settings.host}:{settings.port}/ "
          f"(Temporal {settings.runtime.address if settings.runtime.address_configured else 'local dev server'}, "
          f"task queue {settings.runtime.task_queue}"
          + (", NO AUTHENTICATION" if settings.auth_disabled else "") + ")", file=sys.stderr)
    serve(settings)


# The runtime commands (run, answer, inspect, list, events, report, retry, cancel) load temporalio lazily.
from runtime.run_commands import register as _register_run  # noqa: E402

_register_run(app)


def main() -> None:
    """Console-script entry point (`iterloop = "cli:main"`)."""
    app(prog_name="iterloop")


if __name__ == "__main__":
    main()

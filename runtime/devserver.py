"""The local Temporal dev server: find (or obtain) the `temporal` binary, run it in the background,
reuse it, stop it.

`iterloop server start` and `iterloop run` (when no TEMPORAL_ADDRESS is configured) use this module.
The server is `temporal server start-dev` with a SQLite file under ``settings.home`` (`.iterloop/`),
so runs survive restarts; its state lives next to it:

    .iterloop/temporal.db     workflow histories and visibility (SQLite)
    .iterloop/temporal.log    the server's stdout and stderr
    .iterloop/server.json     pid, address, UI URL, db path, start time (see `ServerInfo`)
    .iterloop/server.lock     held while a server is being started or stopped

After start-up the namespace's retention is raised from the dev server's 24 h to 30 days (closed
runs would otherwise disappear overnight) and iterloop's search attributes are checked, and created
when missing, so the Web UI can filter runs (`IterloopStatus="waiting_human"`).

Everything here is synchronous and talks to the server through the `temporal` CLI, so it can be
called from the CLI and, through `asyncio.to_thread`, from async code. temporalio itself is only
imported by the SDK download path.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from runtime.processes import pid_alive
from runtime.settings import TEMPORAL_CLI_VERSION, Settings
from workflows.contract.state import SEARCH_ATTRIBUTES

#: `go install` target and the release tag the SDK download asks for.
TEMPORAL_CLI_TAG = f"v{TEMPORAL_CLI_VERSION}"
GO_PACKAGE = "github.com/temporalio/cli/cmd/temporal"

#: The dev server deletes closed runs after 24 h; keep them for 30 days instead.
RETENTION = "720h"
STARTUP_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0
LOG_TAIL_LINES = 20

LOCAL_HOSTS = ("localhost", "127.0.0.1")


# -- errors ------------------------------------------------------------------------------------------


class DevServerError(Exception):
    """The local dev server could not be found, started, configured or stopped; the message says why."""


class TemporalBinaryNotFound(DevServerError):
    """No usable `temporal` CLI binary."""


class PortInUseError(DevServerError):
    """The port the dev server should listen on is taken by another process."""


class DevServerStartError(DevServerError):
    """The server process exited or did not become ready in time (the message ends with its log)."""


# -- the binary --------------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """Where `make setup` puts the binary (the Makefile's TEMPORAL_BIN lives here too)."""
    return Path.home() / ".cache" / "iterloop" / "bin"


def _is_executable_file(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_temporal_binary(
    settings: Settings, *, cache_dir: Path | None = None, search_path: str | None = None
) -> Path:
    """The `temporal` binary to run: ITERLOOP_TEMPORAL_BIN, else the cache, else `temporal` on PATH.

    An ITERLOOP_TEMPORAL_BIN that names a missing or non-executable file is an error (it is never
    silently skipped: the user asked for that binary). ``search_path`` replaces $PATH (tests).
    """
    if settings.temporal_bin:
        configured = Path(settings.temporal_bin).expanduser()
        if not configured.exists():
            raise TemporalBinaryNotFound(
                f"ITERLOOP_TEMPORAL_BIN is set to '{configured}', which does not exist; "
                "fix the path or unset it to use the binary `make setup` builds"
            )
        if not _is_executable_file(configured):
            raise TemporalBinaryNotFound(
                f"ITERLOOP_TEMPORAL_BIN is set to '{configured}', which is not an executable file; "
                f"run `chmod +x {configured}` or point it at the `temporal` binary"
            )
        return configured
    cached = (cache_dir or default_cache_dir()) / "temporal"
    if _is_executable_file(cached):
        return cached
    on_path = shutil.which("temporal", path=search_path)
    if on_path:
        return Path(on_path)
    raise TemporalBinaryNotFound(
        f"the Temporal CLI (`temporal` {TEMPORAL_CLI_TAG}, which runs the dev server) was not found "
        f"in ITERLOOP_TEMPORAL_BIN, {cached} or PATH. Run `make setup` (builds it with Go into "
        f"{cached.parent}), or set ITERLOOP_TEMPORAL_BIN to an existing `temporal` binary"
    )


def ensure_temporal_binary(settings: Settings, *, download: bool, cache_dir: Path | None = None) -> Path:
    """`find_temporal_binary`, obtaining the binary into the cache when there is none.

    With Go installed it is built (`go install`, a few minutes the first time); without Go it is
    downloaded through the Temporal SDK when ``download`` is true. A broken ITERLOOP_TEMPORAL_BIN
    is reported, not papered over.
    """
    try:
        return find_temporal_binary(settings, cache_dir=cache_dir)
    except TemporalBinaryNotFound:
        if settings.temporal_bin:
            raise
    target_dir = cache_dir or default_cache_dir()
    if shutil.which("go"):
        return build_with_go(target_dir)
    if download:
        return download_with_sdk(target_dir)
    raise TemporalBinaryNotFound(
        "the Temporal CLI is not installed and Go is not available to build it. Install Go "
        "(https://go.dev/dl/) and run `make setup`, allow the download, or set ITERLOOP_TEMPORAL_BIN"
    )


def build_with_go(target_dir: Path, *, version: str = TEMPORAL_CLI_TAG) -> Path:
    """`GOBIN=target_dir go install github.com/temporalio/cli/cmd/temporal@version`."""
    go = shutil.which("go")
    if go is None:
        raise TemporalBinaryNotFound("Go is not installed (https://go.dev/dl/); it is needed to build `temporal`")
    target_dir.mkdir(parents=True, exist_ok=True)
    print(f"iterloop: building the Temporal CLI {version} with Go into {target_dir} "
          "(a few minutes the first time)...", file=sys.stderr, flush=True)
    env = {**os.environ, "GOBIN": str(target_dir.resolve())}
    result = subprocess.run([go, "install", f"{GO_PACKAGE}@{version}"], env=env, check=False)
    binary = target_dir / "temporal"
    if result.returncode != 0 or not _is_executable_file(binary):
        raise TemporalBinaryNotFound(
            f"`go install {GO_PACKAGE}@{version}` failed (exit {result.returncode}); see the output above"
        )
    print(f"iterloop: installed {binary}", file=sys.stderr, flush=True)
    return binary


def download_with_sdk(target_dir: Path, *, version: str = TEMPORAL_CLI_TAG) -> Path:
    """Download the CLI release through the Temporal SDK and copy it to ``target_dir/temporal``.

    The SDK has no download-only call: its Rust core downloads the binary (from temporal.download)
    as the first step of starting an ephemeral dev server. So start one headless with the download
    directory set to a temporary directory, shut it down, and keep the binary, which the core names
    ``temporal-<version>``. Needs network access to temporal.download.
    """
    import asyncio

    import temporalio.bridge.testing
    import temporalio.runtime
    import temporalio.service

    print(f"iterloop: downloading the Temporal CLI {version} (no Go found)...", file=sys.stderr, flush=True)

    async def fetch(dest_dir: str) -> None:
        config = temporalio.bridge.testing.DevServerConfig(
            existing_path=None, sdk_name="sdk-python", sdk_version=temporalio.service.__version__,
            download_version=version, download_dest_dir=dest_dir, download_ttl_ms=None,
            namespace="default", ip="127.0.0.1", port=None, database_filename=None, ui=False, ui_port=None,
            log_format="pretty", log_level="error", extra_args=[], startup_timeout_ms=60_000,
        )
        runtime = temporalio.runtime.Runtime.default()
        server = await temporalio.bridge.testing.EphemeralServer.start_dev_server(runtime._core_runtime, config)
        await server.shutdown()

    with tempfile.TemporaryDirectory(prefix="iterloop-temporal-") as tmp:
        try:
            asyncio.run(fetch(tmp))
        except Exception as exc:  # network errors come back as RuntimeError from the bridge
            raise TemporalBinaryNotFound(
                f"downloading the Temporal CLI {version} failed: {exc}. Install Go and run `make setup`, "
                "or set ITERLOOP_TEMPORAL_BIN to an existing `temporal` binary"
            ) from exc
        downloaded = Path(tmp) / f"temporal-{version}"
        if not downloaded.is_file():
            raise TemporalBinaryNotFound(f"the SDK download did not produce {downloaded.name}")
        target_dir.mkdir(parents=True, exist_ok=True)
        binary = target_dir / "temporal"
        partial = target_dir / ".temporal.partial"
        shutil.copyfile(downloaded, partial)
        partial.chmod(0o755)
        partial.replace(binary)
    print(f"iterloop: installed {binary}", file=sys.stderr, flush=True)
    return binary


# -- state ---------------------------------------------------------------------------------------------


class ServerInfo(BaseModel):
    """A dev server started from ``settings.home``; what `.iterloop/server.json` holds."""

    pid: int
    address: str
    namespace: str = "default"
    ui_url: str | None = None  # None when headless
    db_path: str
    log_path: str
    binary: str
    started_at: datetime
    reused: bool = Field(default=False, exclude=True)  # start() found it already running

    def uptime_seconds(self, now: datetime | None = None) -> float:
        return max(0.0, ((now or datetime.now(UTC)) - self.started_at).total_seconds())


class ServerStatus(BaseModel):
    state: Literal["running", "stopped"]
    server: ServerInfo | None = None
    uptime_seconds: float | None = None
    reachable: bool = False  # the gRPC port accepts connections
    detail: str = ""


class _Paths:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.state = home / "server.json"
        self.log = home / "temporal.log"
        self.db = home / "temporal.db"
        self.lock = home / "server.lock"


def _read_state(paths: _Paths) -> ServerInfo | None:
    try:
        return ServerInfo.model_validate_json(paths.state.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError:  # corrupt or from an incompatible version: treat as absent
        return None


def _write_state(paths: _Paths, info: ServerInfo) -> None:
    tmp = paths.state.with_suffix(".json.tmp")
    tmp.write_text(info.model_dump_json(indent=2) + "\n", encoding="utf-8")
    tmp.replace(paths.state)


@contextlib.contextmanager
def _locked(paths: _Paths) -> Iterator[None]:
    """One start/stop at a time per home (two `iterloop run` at once must not start two servers)."""
    paths.home.mkdir(parents=True, exist_ok=True)
    with open(paths.lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# -- processes and ports -------------------------------------------------------------------------------

#: Servers started by this process, so their exit is noticed (and reaped) instead of leaving zombies.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _pid_alive(pid: int) -> bool:
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    return pid_alive(pid)


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        pass
    try:  # no /proc (macOS)
        out = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, check=False)
        return out.stdout
    except OSError:
        return ""


def _is_our_server(info: ServerInfo) -> bool:
    """The pid is alive and still the dev server on our database (not a recycled pid)."""
    if not _pid_alive(info.pid):
        return False
    cmdline = _command_line(info.pid)
    return not cmdline or ("start-dev" in cmdline and info.db_path in cmdline)


def _port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def local_port(address: str) -> int:
    """The port of a `localhost:PORT` / `127.0.0.1:PORT` address; anything else cannot be started here."""
    host, sep, port = address.rpartition(":")
    if not sep or host not in LOCAL_HOSTS or not port.isdigit():
        raise DevServerError(
            f"the dev server runs on this machine, but the address is '{address}'. Unset TEMPORAL_ADDRESS "
            "(or use localhost:PORT) to run it locally; a remote cluster needs no `iterloop server`"
        )
    return int(port)


# -- talking to the server through the CLI ------------------------------------------------------------


def _cli_env() -> dict[str, str]:
    """The environment minus TEMPORAL_*: a cloud API key or TLS setting must not reach the dev server."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}


def _operator(
    binary: Path, address: str, namespace: str, *args: str, timeout: float = 10.0
) -> subprocess.CompletedProcess[str]:
    """`temporal operator ARGS` against the dev server, whatever the user's CLI profile says."""
    cmd = [str(binary), "operator", *args, "--address", address, "--namespace", namespace,
           "--disable-config-file", "--disable-config-env", "--tls=false", "--command-timeout", f"{int(timeout)}s"]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, env=_cli_env(), timeout=timeout + 5, check=False)
    except subprocess.TimeoutExpired as exc:
        return subprocess.CompletedProcess(cmd, 124, "", f"timed out after {exc.timeout:.0f}s")


def _namespace_ready(binary: Path, address: str, namespace: str, *, timeout: float = 3.0) -> bool:
    return _operator(binary, address, namespace, "namespace", "describe", "-o", "json", timeout=timeout).returncode == 0


def _check(result: subprocess.CompletedProcess[str], what: str) -> str:
    if result.returncode != 0:
        raise DevServerError(f"{what} failed: {(result.stderr or result.stdout).strip()}")
    return result.stdout


def configure_namespace(binary: Path, address: str, namespace: str) -> None:
    """Retention 30 days, and every search attribute iterloop uses registered with the right type."""
    _check(_operator(binary, address, namespace, "namespace", "update", "--retention", RETENTION),
           f"setting the retention of namespace '{namespace}' to {RETENTION}")
    listing = json.loads(_check(_operator(binary, address, namespace, "search-attribute", "list", "-o", "json"),
                                "listing search attributes"))
    existing = {name: _short_type(t) for name, t in (listing.get("customAttributes") or {}).items()}
    for name, type_ in SEARCH_ATTRIBUTES.items():
        if name not in existing:
            _check(_operator(binary, address, namespace, "search-attribute", "create", "--name", name, "--type", type_),
                   f"creating search attribute {name}={type_}")
        elif existing[name].lower() != type_.lower():
            raise DevServerError(
                f"search attribute {name} exists with type {existing[name]}, but iterloop needs {type_}; "
                "the database comes from an incompatible version: stop the server and delete it"
            )


def _short_type(indexed: str) -> str:
    """INDEXED_VALUE_TYPE_KEYWORD_LIST -> KeywordList (the names `--search-attribute` takes)."""
    return "".join(part.capitalize() for part in indexed.removeprefix("INDEXED_VALUE_TYPE_").split("_"))


# -- start / stop / status ----------------------------------------------------------------------------


#: Dev-server defaults tuned for a laptop running one workflow at a time. Stock settings read a
#: history shard's transfer queue at most 20 times a second (~100 ms per sequential node) and
#: spread each task queue over 4 partitions (occasional 2 s pickup stalls with a single worker).
#: Eager activity execution (off in stock servers) lets the server hand an activity scheduled by a
#: workflow task straight back to the worker that completed it, without a trip through matching;
#: the worker asks for it unless told not to (`worker.build_worker(eager_activities=False)`).
#: benchmarks/bench_runtime.py measures all three; tests and `iterloop server` use these values;
#: docs/runtime.md ("What costs a server round trip") gives them for a cluster's dynamic config.
FAST_DISPATCH_ARGS = (
    "--dynamic-config-value", "history.transferProcessorMaxPollRPS=1000",
    "--dynamic-config-value", "matching.numTaskqueueReadPartitions=1",
    "--dynamic-config-value", "matching.numTaskqueueWritePartitions=1",
    "--dynamic-config-value", "system.enableActivityEagerExecution=true",
)


def dev_server_command(binary: Path, settings: Settings, *, port: int, db_path: Path, headless: bool) -> list[str]:
    cmd = [str(binary), "server", "start-dev", "--db-filename", str(db_path), "--ip", "127.0.0.1",
           "--port", str(port)]
    if settings.namespace != "default":
        cmd += ["--namespace", settings.namespace]
    cmd += ["--headless"] if headless else ["--ui-port", str(settings.ui_port)]
    for name, type_ in SEARCH_ATTRIBUTES.items():
        cmd += ["--search-attribute", f"{name}={type_}"]
    return cmd + [*FAST_DISPATCH_ARGS, "--log-level", "warn"]


def start(
    settings: Settings, *, headless: bool = False, binary: Path | None = None,
    timeout: float = STARTUP_TIMEOUT_SECONDS,
) -> ServerInfo:
    """Start the dev server in the background (or return the one already running from this home).

    Returns once the namespace answers, its retention is 30 days and the search attributes exist.
    """
    paths = _Paths(settings.home)
    port = local_port(settings.address)
    with _locked(paths):
        current = _read_state(paths)
        if current is not None and _is_our_server(current):
            return _reuse(current, settings, port, binary, timeout)
        paths.state.unlink(missing_ok=True)  # stale: the process is gone
        binary = binary or find_temporal_binary(settings)
        _refuse_busy_ports(binary, settings, port, headless)
        return _launch(paths, settings, binary, port, headless, timeout)


def ensure_running(settings: Settings, *, headless: bool = False) -> ServerInfo:
    """The local dev server `iterloop run` uses when no address is configured: reused or started."""
    return start(settings, headless=headless)


def _reuse(current: ServerInfo, settings: Settings, port: int, binary: Path | None, timeout: float) -> ServerInfo:
    running_port = int(current.address.rpartition(":")[2])
    if settings.address_configured and running_port != port:
        raise DevServerError(
            f"a dev server from {settings.home} is already running at {current.address} (pid {current.pid}), "
            f"not at {settings.address}; stop it with `iterloop server stop` or use TEMPORAL_ADDRESS={current.address}"
        )
    if not _port_open("127.0.0.1", running_port):
        _wait_until_ready(current, None, Path(current.binary) if binary is None else binary,
                          time.monotonic() + timeout, log_offset=0)
    return current.model_copy(update={"reused": True})


def _refuse_busy_ports(binary: Path, settings: Settings, port: int, headless: bool) -> None:
    if _port_open("127.0.0.1", port):
        if _namespace_ready(binary, f"127.0.0.1:{port}", settings.namespace, timeout=1):
            raise PortInUseError(
                f"a Temporal server not started by iterloop (from {settings.home}) is already listening on "
                f"localhost:{port}. To use it, set TEMPORAL_ADDRESS=localhost:{port} (or pass --address); "
                "to run iterloop's own dev server, stop that one or pick another port, "
                "e.g. TEMPORAL_ADDRESS=localhost:7234 iterloop server start"
            )
        raise PortInUseError(
            f"port {port} on localhost is in use by another program, so the dev server cannot listen there. "
            f"Stop that program, or choose another port, e.g. TEMPORAL_ADDRESS=localhost:{port + 1} "
            f"iterloop server start (then point the worker at the same TEMPORAL_ADDRESS / --address)"
        )
    if not headless and _port_open("127.0.0.1", settings.ui_port):
        raise PortInUseError(
            f"the Web UI port {settings.ui_port} is in use by another program; set ITERLOOP_UI_PORT to a free "
            "port, or start the server with --headless"
        )


def _launch(paths: _Paths, settings: Settings, binary: Path, port: int, headless: bool, timeout: float) -> ServerInfo:
    db_path = paths.db.resolve()
    cmd = dev_server_command(binary, settings, port=port, db_path=db_path, headless=headless)
    with open(paths.log, "ab") as log:
        log_offset = log.tell()
        log.write(f"--- iterloop: {datetime.now(UTC).isoformat()} {' '.join(cmd)}\n".encode())
        log.flush()
        # Own session: Ctrl-C in the terminal that started it does not reach the server, and stop()
        # can signal the whole process group.
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, env=_cli_env())
    _CHILDREN[proc.pid] = proc
    info = ServerInfo(
        pid=proc.pid, address=f"127.0.0.1:{port}", namespace=settings.namespace,
        ui_url=None if headless else f"http://localhost:{settings.ui_port}",
        db_path=str(db_path), log_path=str(paths.log.resolve()), binary=str(binary), started_at=datetime.now(UTC),
    )
    _write_state(paths, info)  # first, so `iterloop server stop` finds a server that hangs while starting
    try:
        _wait_until_ready(info, proc, binary, time.monotonic() + timeout, log_offset)
        configure_namespace(binary, info.address, settings.namespace)
    except BaseException:
        _terminate(info.pid)
        paths.state.unlink(missing_ok=True)
        raise
    return info


def _wait_until_ready(info: ServerInfo, proc: subprocess.Popen[bytes] | None, binary: Path, deadline: float,
                      log_offset: int) -> None:
    """Poll until the namespace answers; fail early if the process exits, with the end of its log."""
    port = int(info.address.rpartition(":")[2])
    while True:
        exited = proc.poll() if proc is not None else (None if _pid_alive(info.pid) else -1)
        if exited is not None:
            raise DevServerStartError(
                f"the dev server exited during start-up (exit {exited}).\n{_log_tail(Path(info.log_path), log_offset)}"
            )
        if _port_open("127.0.0.1", port) and _namespace_ready(binary, info.address, info.namespace):
            return
        if time.monotonic() >= deadline:
            raise DevServerStartError(
                f"the dev server at {info.address} (pid {info.pid}) did not answer within the start-up timeout; "
                f"see {info.log_path}, or `iterloop server stop` and try again.\n"
                f"{_log_tail(Path(info.log_path), log_offset)}"
            )
        time.sleep(0.1)


def _log_tail(log_path: Path, offset: int, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with open(log_path, "rb") as handle:
            handle.seek(offset)
            text = handle.read().decode(errors="replace")
    except OSError:
        return f"(no log at {log_path})"
    tail = text.splitlines()[-lines:]
    return f"last lines of {log_path}:\n" + "\n".join(f"  {line}" for line in tail)


def stop(settings: Settings, *, timeout: float = STOP_TIMEOUT_SECONDS) -> ServerInfo | None:
    """Stop the dev server started from this home; returns it, or None if none was running."""
    paths = _Paths(settings.home)
    if not paths.state.exists():  # nothing to stop (and no reason to create .iterloop/)
        return None
    with _locked(paths):
        info = _read_state(paths)
        if info is None:
            return None
        running = _is_our_server(info)
        if running:
            _terminate(info.pid, timeout=timeout)
        paths.state.unlink(missing_ok=True)
        return info if running else None


def _terminate(pid: int, *, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
    """SIGTERM to the server's process group, wait, then SIGKILL."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not _pid_alive(pid):
            break
    else:
        raise DevServerError(f"the dev server (pid {pid}) did not exit after SIGKILL")
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        child.wait()


def status(settings: Settings) -> ServerStatus:
    """Running (with uptime and whether the port answers) or stopped; never starts anything."""
    paths = _Paths(settings.home)
    info = _read_state(paths)
    if info is None:
        return ServerStatus(state="stopped", detail=f"no dev server started from {settings.home}")
    if not _is_our_server(info):
        return ServerStatus(state="stopped", server=info,
                            detail=f"the dev server recorded in {paths.state} (pid {info.pid}) is no longer running")
    port = int(info.address.rpartition(":")[2])
    return ServerStatus(state="running", server=info, uptime_seconds=round(info.uptime_seconds(), 1),
                        reachable=_port_open("127.0.0.1", port))


def format_uptime(seconds: float) -> str:
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d"] if days else []
    if days or hours:
        parts.append(f"{hours}h")
    if days or hours or minutes:
        parts.append(f"{minutes}m")
    parts.append(f"{secs}s")
    return " ".join(parts)



def main(argv: list[str] | None = None) -> int:
    """`python -m runtime.devserver download DIR [VERSION]`: what `make temporal` runs without Go."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] != "download" or len(args) not in (2, 3):
        print("usage: python -m runtime.devserver download DIR [VERSION]", file=sys.stderr)
        return 2
    try:
        download_with_sdk(Path(args[1]), version=args[2] if len(args) == 3 else TEMPORAL_CLI_TAG)
    except DevServerError as exc:
        print(f"iterloop: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

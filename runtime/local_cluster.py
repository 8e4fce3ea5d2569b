"""A real Temporal cluster on this machine: PostgreSQL and Temporal Server on loopback ports.

The dev server (`runtime.devserver`) is one process over SQLite; users who outgrow a laptop run
Temporal Server over PostgreSQL. The cluster test tier (`make test-cluster`, tests/cluster/) and the
scale benchmarks (benchmarks/) start one here, so that what iterloop claims about clusters (workers
dying, the server restarting, runs parked at gates and timers) is tried against the real thing:

    pg = PostgresServer.start(Path("/tmp/x/pg"))              # initdb once, then pg_ctl start
    cluster = TemporalCluster.start(pg, Path("/tmp/x/temporal"))  # schema, config, `server start`
    ... TEMPORAL_ADDRESS=cluster.address iterloop server setup / worker / run ...
    cluster.kill(); cluster.restart()                           # kill -9, then start on the same DB
    cluster.stop(); pg.stop()

Binaries: Temporal Server and its schema tool (`server`, `sql`) come from `make temporal-server`
(built with Go into ~/.cache/iterloop/bin/temporal-server-1.29.1/; ITERLOOP_TEMPORAL_SERVER_DIR
names another directory); PostgreSQL's from PATH or Debian's /usr/lib/postgresql/15/bin.

PostgreSQL refuses to run as root. When this process is root (containers, CI), `initdb` and
`pg_ctl` run as the unprivileged user `nobody` through `runuser`, and the data directory is
handed to that user; its parent directories must then be reachable by `nobody` (mode o+x), which
pytest's own temporary directories (mode 0700) are not: use a directory from `tempfile.mkdtemp()`
made traversable, as tests/cluster/conftest.py does.

Everything here is synchronous (subprocesses, polling with deadlines); async callers use
`asyncio.to_thread`. Nothing is left running by accident: every process is started in its own
session and `stop()` / `kill()` end its whole process group.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import yaml

#: The Temporal Server release the tier is tested with (the Makefile's TEMPORAL_SERVER_VERSION).
SERVER_VERSION = "1.29.1"
SERVER_DIR_ENV = "ITERLOOP_TEMPORAL_SERVER_DIR"
#: Debian's PostgreSQL 15 binaries, when they are not on PATH (the `postgresql-15` package).
DEBIAN_POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")
#: Who runs PostgreSQL when we are root (it refuses to run as root).
UNPRIVILEGED_USER = "nobody"

#: The role Temporal (and anyone else, e.g. the benchmarks' LangGraph checkpointer) connects as.
#: Loopback only, so a fixed password is enough; connections are checked with scram-sha-256.
PG_USER = "iterloop"
PG_PASSWORD = "iterloop"

STARTUP_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 20.0
LOG_TAIL_LINES = 25
#: A Unix socket's path may hold 107 bytes; PostgreSQL appends `/.s.PGSQL.NNNNN`.
MAX_SOCKET_DIR_CHARS = 80

#: The embedded schema directories of the `sql` tool (no files from Go's module cache are needed).
SCHEMA_NAMES = {"store": "postgresql/v12/temporal", "visibility": "postgresql/v12/visibility"}


class LocalClusterError(Exception):
    """PostgreSQL or Temporal Server could not be found, started or stopped; the message says why."""


# -- finding the binaries ------------------------------------------------------------------------------


def default_server_dir() -> Path:
    """Where `make temporal-server` puts `server` and `sql` (the Makefile's TEMPORAL_SERVER_DIR)."""
    return Path.home() / ".cache" / "iterloop" / "bin" / f"temporal-server-{SERVER_VERSION}"


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_temporal_server_dir(server_dir: Path | None = None, *, env: Mapping[str, str] | None = None) -> Path:
    """The directory holding Temporal Server's `server` and `sql` binaries.

    ``server_dir``, else ITERLOOP_TEMPORAL_SERVER_DIR, else the `make temporal-server` cache. A
    directory someone named that lacks a binary is an error, never silently skipped.
    """
    environ = os.environ if env is None else env
    named = server_dir or (Path(environ[SERVER_DIR_ENV]).expanduser() if environ.get(SERVER_DIR_ENV) else None)
    candidate = named or default_server_dir()
    missing = [name for name in ("server", "sql") if not _executable(candidate / name)]
    if not missing:
        return candidate
    source = f"{SERVER_DIR_ENV}={candidate}" if named else str(candidate)
    raise LocalClusterError(
        f"Temporal Server {SERVER_VERSION} is not installed: {', '.join(missing)} missing in {source}. "
        f"Run `make temporal-server` (builds `server` and `sql` with Go into {default_server_dir()}, "
        f"a few minutes the first time), or set {SERVER_DIR_ENV} to a directory holding both"
    )


def find_postgres_bin_dir(*, search_path: str | None = None) -> Path:
    """The directory of `initdb`, `pg_ctl` and `psql`: from PATH, else Debian's PostgreSQL 15."""
    on_path = shutil.which("pg_ctl", path=search_path)
    for candidate in ([Path(on_path).resolve().parent, Path(on_path).parent] if on_path else []) + [
            DEBIAN_POSTGRES_BIN]:
        if all(_executable(candidate / name) for name in ("initdb", "pg_ctl", "postgres")):
            return candidate
    raise LocalClusterError(
        "PostgreSQL's server binaries (initdb, pg_ctl, postgres) were not found on PATH or in "
        f"{DEBIAN_POSTGRES_BIN}. Install PostgreSQL 15 (Debian: `sudo apt-get install postgresql-15`), "
        "or put its bin directory on PATH"
    )


def _psql(bin_dir: Path) -> Path:
    for candidate in (bin_dir / "psql", Path(shutil.which("psql") or "/nonexistent")):
        if _executable(candidate):
            return candidate
    raise LocalClusterError(f"psql was not found in {bin_dir} or on PATH; install PostgreSQL's client (`psql`)")


# -- ports, processes, logs -------------------------------------------------------------------------


def free_port(below: int | None = None) -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now: the kernel's pick, or with ``below`` a
    random free one from 10000 up to it (the kernel's picks are all above 32767 on Linux)."""
    for _ in range(200 if below else 1):
        port = random.randrange(10000, below) if below else 0
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise LocalClusterError(f"no free TCP port on 127.0.0.1 between 10000 and {below}")


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _log_tail(path: Path, offset: int = 0, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            text = handle.read().decode(errors="replace")
    except OSError:
        return f"(no log at {path})"
    # Temporal logs a Go stack trace inside each error line: the message comes first, keep that part.
    tail = [line if len(line) < 600 else line[:600] + " …" for line in text.splitlines()[-lines:]]
    return f"last lines of {path}:\n" + "\n".join(f"  {line}" for line in tail)


def _end_process_group(proc: subprocess.Popen[bytes], sig: signal.Signals, wait: float) -> bool:
    """Send ``sig`` to the process group of ``proc`` and wait for it; True once it has exited."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=wait)
        return True
    except subprocess.TimeoutExpired:
        return False


def _run(cmd: Sequence[str], what: str, *, env: Mapping[str, str] | None = None,
         timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(list(cmd), capture_output=True, text=True, env=dict(env) if env else None,
                                timeout=timeout, check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise LocalClusterError(f"{what} did not finish within {timeout:.0f}s: {' '.join(cmd)}") from exc
    if result.returncode != 0:
        output = (result.stderr + result.stdout).strip()
        raise LocalClusterError(f"{what} failed (exit {result.returncode}): {' '.join(cmd)}\n{output}")
    return result


# -- running PostgreSQL as an unprivileged user when we are root --------------------------------------


@dataclass(frozen=True)
class _RunAs:
    """Who runs PostgreSQL: this process's user, or `nobody` through `runuser` when we are root."""

    prefix: tuple[str, ...] = ()
    uid: int | None = None
    gid: int | None = None

    @classmethod
    def for_this_process(cls) -> _RunAs:
        if os.geteuid() != 0:
            return cls()
        runuser = shutil.which("runuser")
        if runuser is None:
            raise LocalClusterError(
                "this process runs as root, which PostgreSQL refuses, and `runuser` (util-linux) is missing to "
                f"run it as '{UNPRIVILEGED_USER}'; install util-linux or run as an unprivileged user")
        entry = pwd.getpwnam(UNPRIVILEGED_USER)
        return cls(prefix=(runuser, "-u", UNPRIVILEGED_USER, "--"), uid=entry.pw_uid, gid=entry.pw_gid)

    def give(self, path: Path) -> None:
        """Hand ``path`` to the unprivileged user (nothing to do when we are not root)."""
        if self.uid is not None and self.gid is not None:
            os.chown(path, self.uid, self.gid)

    def check_reachable(self, path: Path) -> None:
        """Every parent of ``path`` must be traversable by the unprivileged user, or initdb fails obscurely."""
        if self.uid is None:
            return
        for parent in path.resolve().parents:
            mode = parent.stat().st_mode
            if not mode & 0o001 and parent.stat().st_uid != self.uid:
                raise LocalClusterError(
                    f"PostgreSQL runs as '{UNPRIVILEGED_USER}' here (this process is root, which PostgreSQL refuses), "
                    f"but '{UNPRIVILEGED_USER}' cannot enter {parent} (mode {oct(mode & 0o777)}), a parent of {path}. "
                    f"Put the data directory elsewhere (e.g. under tempfile.mkdtemp() with `chmod 711`), "
                    f"or `chmod o+x {parent}`")


# -- PostgreSQL ------------------------------------------------------------------------------------


@dataclass
class PostgresServer:
    """One PostgreSQL cluster on 127.0.0.1, durable (fsync on, as a peer's deployment would be).

    `start` runs initdb the first time a data directory is used and `pg_ctl start` every time, so a
    stopped server starts again on the same data. Role `iterloop` (password `iterloop`, scram) is
    the superuser; `dsn(dbname)` is what clients connect with.
    """

    data_dir: Path
    port: int
    bin_dir: Path
    socket_dir: Path
    log_path: Path
    _run_as: _RunAs = field(repr=False)
    _own_socket_dir: bool = field(default=False, repr=False)
    running: bool = False

    @classmethod
    def start(cls, data_dir: Path, port: int | None = None, *, bin_dir: Path | None = None,
              timeout: float = STARTUP_TIMEOUT_SECONDS) -> PostgresServer:
        """initdb ``data_dir`` when it holds no cluster yet, then start it on ``port`` (a free one if None)."""
        bin_dir = bin_dir or find_postgres_bin_dir()
        run_as = _RunAs.for_this_process()
        data_dir = data_dir.resolve()
        if not (data_dir / "PG_VERSION").exists():
            _initdb(bin_dir, data_dir, run_as)
        socket_dir, own_socket_dir = _socket_dir(data_dir, run_as)
        server = cls(data_dir=data_dir, port=port or free_port(), bin_dir=bin_dir, socket_dir=socket_dir,
                     log_path=data_dir / "iterloop-postgresql.log", _run_as=run_as, _own_socket_dir=own_socket_dir)
        for attempt in range(3):
            try:
                server._pg_ctl_start(timeout)
                return server
            except LocalClusterError:
                # Another program may have taken a port we picked; pick again (never a port we were given).
                if port is not None or attempt == 2 or not _port_open(server.port):
                    server._cleanup_socket_dir()
                    raise
                server.port = free_port()
        raise AssertionError("unreachable")

    def _pg_ctl_start(self, timeout: float) -> None:
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} "
                   f"-c unix_socket_directories={self.socket_dir}")
        cmd = [*self._run_as.prefix, str(self.bin_dir / "pg_ctl"), "start", "-D", str(self.data_dir),
               "-l", str(self.log_path), "-w", "-t", str(int(timeout)), "-o", options]
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        try:
            _run(cmd, f"starting PostgreSQL on 127.0.0.1:{self.port}", timeout=timeout + 10)
        except LocalClusterError as exc:
            raise LocalClusterError(f"{exc}\n{_log_tail(self.log_path, offset)}") from None
        self.running = True

    def dsn(self, dbname: str = "postgres") -> str:
        """`postgresql://iterloop:iterloop@127.0.0.1:PORT/DBNAME` (libpq / psycopg / SQLAlchemy form)."""
        return f"postgresql://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{self.port}/{dbname}"

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run one SQL statement with psql over TCP; its unaligned output (e.g. `1` or empty)."""
        cmd = [str(_psql(self.bin_dir)), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
               "-p", str(self.port), "-U", PG_USER, "-d", dbname, "-c", sql]
        env = {**os.environ, "PGPASSWORD": PG_PASSWORD, "PGCONNECT_TIMEOUT": "10"}
        return _run(cmd, f"psql on 127.0.0.1:{self.port}", env=env, timeout=60).stdout.strip()

    def database_exists(self, name: str) -> bool:
        return self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{_sql_name(name)}'") == "1"

    def stop(self, *, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """`pg_ctl stop -m fast` (open connections are closed, data is flushed); a no-op once stopped."""
        if self.running:
            cmd = [*self._run_as.prefix, str(self.bin_dir / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast",
                   "-w", "-t", str(int(timeout))]
            try:
                _run(cmd, "stopping PostgreSQL", timeout=timeout + 10)
            except LocalClusterError:
                _run([*self._run_as.prefix, str(self.bin_dir / "pg_ctl"), "stop", "-D", str(self.data_dir),
                      "-m", "immediate", "-w"], "stopping PostgreSQL (immediate)", timeout=timeout + 10)
            self.running = False
        self._cleanup_socket_dir()

    def _cleanup_socket_dir(self) -> None:
        if self._own_socket_dir:
            shutil.rmtree(self.socket_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _sql_name(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise LocalClusterError(f"database name {name!r} must be letters, digits and underscores")
    return name


def _initdb(bin_dir: Path, data_dir: Path, run_as: _RunAs) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    if any(data_dir.iterdir()):
        raise LocalClusterError(
            f"{data_dir} is neither empty nor a PostgreSQL data directory (no PG_VERSION); "
            "give an empty or missing directory")
    run_as.check_reachable(data_dir)
    run_as.give(data_dir)
    with tempfile.TemporaryDirectory(prefix="iterloop-pw-") as tmp:
        pwfile = Path(tmp) / "password"
        pwfile.write_text(PG_PASSWORD + "\n", encoding="utf-8")
        if run_as.uid is not None:  # readable by the unprivileged user for the moment initdb runs
            Path(tmp).chmod(0o711)
            pwfile.chmod(0o644)
        # Loopback only: local socket trusted (the directory is ours), TCP checked with scram.
        _run([*run_as.prefix, str(bin_dir / "initdb"), "-D", str(data_dir), "-U", PG_USER, "--pwfile", str(pwfile),
              "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8"],
             f"initdb {data_dir}", timeout=180)


def _socket_dir(data_dir: Path, run_as: _RunAs) -> tuple[Path, bool]:
    """The data directory itself when its path is short enough for a Unix socket, else a temp dir."""
    if len(str(data_dir)) <= MAX_SOCKET_DIR_CHARS:
        return data_dir, False
    tmp = Path(tempfile.mkdtemp(prefix="iterloop-pgsock-"))
    tmp.chmod(0o755)
    run_as.give(tmp)
    return tmp, True


# -- Temporal Server ---------------------------------------------------------------------------------

#: Ports of one Temporal Server (all four services in one process), in the order they are picked.
PORT_NAMES = ("frontend", "frontend_http", "frontend_membership", "history", "history_membership",
              "matching", "matching_membership", "worker", "worker_membership", "metrics")

MEMBERSHIP_PORT_LIMIT = 32768

#: Dynamic config every cluster started here gets, on top of the caller's. A search attribute
#: registered by `iterloop server setup` is visible at once rather than after the cache's refresh.
DEFAULT_DYNAMIC_CONFIG: dict[str, Any] = {"system.forceSearchAttributesCacheRefreshOnRead": True}


def _server_config(ports: Mapping[str, int], pg: PostgresServer, databases: tuple[str, str], dynamic_config: Path,
                   *, history_shards: int, log_level: str) -> dict[str, Any]:
    """Temporal Server's configuration (our own, not a copy of the release's development files)."""

    def datastore(database: str, max_conns: int) -> dict[str, Any]:
        return {"sql": {"pluginName": "postgres12", "databaseName": database, "connectAddr": f"127.0.0.1:{pg.port}",
                        "connectProtocol": "tcp", "user": PG_USER, "password": PG_PASSWORD,
                        "maxConns": max_conns, "maxIdleConns": max_conns, "maxConnLifetime": "1h"}}

    def service(name: str, **extra: int) -> dict[str, Any]:
        return {"rpc": {"grpcPort": ports[name], "membershipPort": ports[f"{name}_membership"],
                        "bindOnLocalHost": True, **extra}}

    return {
        "log": {"stdout": True, "level": log_level},
        "persistence": {
            "defaultStore": "default", "visibilityStore": "visibility", "numHistoryShards": history_shards,
            "datastores": {"default": datastore(databases[0], 20), "visibility": datastore(databases[1], 10)},
        },
        "global": {
            "membership": {"maxJoinDuration": "30s", "broadcastAddress": "127.0.0.1"},
            "metrics": {"prometheus": {"framework": "tally", "timerType": "histogram",
                                       "listenAddress": f"127.0.0.1:{ports['metrics']}"}},
        },
        "services": {
            "frontend": service("frontend", httpPort=ports["frontend_http"]),
            "history": service("history"), "matching": service("matching"), "worker": service("worker"),
        },
        "clusterMetadata": {
            "enableGlobalNamespace": False, "failoverVersionIncrement": 10, "masterClusterName": "active",
            "currentClusterName": "active",
            "clusterInformation": {"active": {"enabled": True, "initialFailoverVersion": 1, "rpcName": "frontend",
                                              "rpcAddress": f"127.0.0.1:{ports['frontend']}"}},
        },
        "dcRedirectionPolicy": {"policy": "noop"},
        "archival": {"history": {"state": "disabled"}, "visibility": {"state": "disabled"}},
        "namespaceDefaults": {"archival": {"history": {"state": "disabled"}, "visibility": {"state": "disabled"}}},
        "dynamicConfigClient": {"filepath": str(dynamic_config), "pollInterval": "10s"},
    }


def _dynamic_config_file(values: Mapping[str, Any]) -> dict[str, Any]:
    """Dynamic config values in the file's form: each key a list of {value, constraints}."""
    return {key: [{"value": value, "constraints": {}}] for key, value in values.items()}


def _frontend_serving(address: str, timeout: float = 3.0) -> bool:
    """The frontend's gRPC health check says SERVING (it does once history and matching answer too)."""

    async def check() -> bool:
        from temporalio.service import ConnectConfig, ServiceClient

        client = await ServiceClient.connect(ConnectConfig(target_host=address, lazy=True))
        return await client.check_health(timeout=timedelta(seconds=timeout))

    def in_thread() -> bool:
        try:
            return asyncio.run(check())
        except Exception:  # noqa: BLE001 - not listening yet, or not serving: both mean "not yet"
            return False

    # A thread of its own, so this works whether or not the caller runs an event loop.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(in_thread).result()


@dataclass
class TemporalCluster:
    """Temporal Server (frontend, history, matching and worker services in one process) over PostgreSQL.

    `start` creates and migrates the two databases when they are new (`sql` create-database,
    setup-schema, update-schema; update-schema again on later starts), writes the configuration
    into ``work_dir/config/``, starts `server start` with its output in ``work_dir/temporal.log``,
    and returns once the frontend's health check says SERVING. The namespace and iterloop's search
    attributes are not created here: `iterloop server setup` does that, as on any cluster.
    """

    pg: PostgresServer
    work_dir: Path
    server_dir: Path
    ports: dict[str, int]
    databases: tuple[str, str]
    log_path: Path
    startup_timeout: float = STARTUP_TIMEOUT_SECONDS
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @classmethod
    def start(cls, pg: PostgresServer, work_dir: Path, frontend_port: int | None = None, *,
              database_prefix: str = "temporal", dynamic_config: Mapping[str, Any] | None = None,
              history_shards: int = 4, log_level: str = "warn", server_dir: Path | None = None,
              timeout: float = STARTUP_TIMEOUT_SECONDS) -> TemporalCluster:
        """Start a server on ``pg`` (databases ``database_prefix`` and ``database_prefix``_visibility).

        ``dynamic_config`` is added to `DEFAULT_DYNAMIC_CONFIG` (e.g. the benchmarks' dispatch
        settings); ``history_shards`` is fixed for a database's lifetime (Temporal refuses another).
        """
        server_dir = find_temporal_server_dir(server_dir)
        work_dir = work_dir.resolve()
        (work_dir / "config").mkdir(parents=True, exist_ok=True)
        databases = (database_prefix, f"{database_prefix}_visibility")
        _prepare_databases(pg, server_dir, databases)
        # Temporal stores membership ports in a smallint column: they must stay below 32768.
        ports = {name: free_port(below=MEMBERSHIP_PORT_LIMIT if name.endswith("_membership") else None)
                 for name in PORT_NAMES}
        if frontend_port is not None:
            ports["frontend"] = frontend_port
        dynamic_path = work_dir / "config" / "dynamicconfig.yaml"
        dynamic_path.write_text(yaml.safe_dump(_dynamic_config_file({**DEFAULT_DYNAMIC_CONFIG, **(dynamic_config or {})})),
                                encoding="utf-8")
        config = _server_config(ports, pg, databases, dynamic_path, history_shards=history_shards, log_level=log_level)
        (work_dir / "config" / "iterloop.yaml").write_text(
            "# Written by runtime/local_cluster.py for one local test or benchmark cluster.\n"
            + yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        cluster = cls(pg=pg, work_dir=work_dir, server_dir=server_dir, ports=ports, databases=databases,
                      log_path=work_dir / "temporal.log", startup_timeout=timeout)
        cluster._launch()
        return cluster

    @property
    def address(self) -> str:
        """The frontend's gRPC address, what TEMPORAL_ADDRESS / --address take."""
        return f"127.0.0.1:{self.ports['frontend']}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['metrics']}/metrics"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def _launch(self) -> None:
        busy = [name for name, port in self.ports.items() if _port_open(port)]
        if busy:
            raise LocalClusterError(
                f"ports of the Temporal server are in use by another program: "
                f"{', '.join(f'{n}={self.ports[n]}' for n in busy)}; stop it, or start a new cluster (new ports)")
        cmd = [str(self.server_dir / "server"), "--root", str(self.work_dir), "--config", "config",
               "--env", "iterloop", "--allow-no-auth", "start"]
        with open(self.log_path, "ab") as log:
            offset = log.tell()
            log.write(f"--- iterloop: {' '.join(cmd)}\n".encode())
            log.flush()
            # Own session: a terminal's Ctrl-C does not reach it, and stop()/kill() end the whole group.
            self._proc = subprocess.Popen(cmd, cwd=self.work_dir, stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + self.startup_timeout
        while True:
            exited = self._proc.poll()
            if exited is not None:
                raise LocalClusterError(
                    f"Temporal Server exited during start-up (exit {exited}).\n{_log_tail(self.log_path, offset)}")
            if _port_open(self.ports["frontend"]) and _frontend_serving(self.address):
                return
            if time.monotonic() >= deadline:
                self.kill()
                raise LocalClusterError(
                    f"Temporal Server at {self.address} did not report SERVING within {self.startup_timeout:.0f}s.\n"
                    f"{_log_tail(self.log_path, offset)}")
            time.sleep(0.2)

    def stop(self, *, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """SIGTERM (a graceful shutdown), then SIGKILL after ``timeout``; a no-op once stopped."""
        if self._proc is None:
            return
        if self._proc.poll() is None and not _end_process_group(self._proc, signal.SIGTERM, timeout):
            _end_process_group(self._proc, signal.SIGKILL, 10.0)
        self._proc = None

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would: nothing is flushed beyond what PostgreSQL holds."""
        if self._proc is None:
            return
        _end_process_group(self._proc, signal.SIGKILL, 10.0)
        self._proc = None

    def restart(self) -> None:
        """Start the server again on the same databases and ports (after `stop` or `kill`; stops it first
        when it still runs)."""
        self.stop()
        _prepare_databases(self.pg, self.server_dir, self.databases)
        self._launch()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _prepare_databases(pg: PostgresServer, server_dir: Path, databases: tuple[str, str]) -> None:
    """Create each database with its schema when new; bring an existing one to the latest version."""
    for database, kind in zip(databases, ("store", "visibility"), strict=True):
        base = [str(server_dir / "sql"), "--plugin", "postgres12", "--endpoint", "127.0.0.1",
                "--port", str(pg.port), "--user", PG_USER, "--password", PG_PASSWORD, "--database", database]
        if not pg.database_exists(database):
            _run([*base, "create-database"], f"creating database {database}")
            _run([*base, "setup-schema", "-v", "0.0"], f"setting up the schema of {database}")
        _run([*base, "update-schema", "--schema-name", SCHEMA_NAMES[kind]], f"updating the schema of {database}")

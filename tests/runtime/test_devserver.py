"""The local dev server, with real `temporal server start-dev` processes on free ports and tmp homes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime import devserver
from runtime.devserver import DevServerError, DevServerStartError, PortInUseError, TemporalBinaryNotFound
from runtime.settings import Settings
from workflows.contract.state import SEARCH_ATTRIBUTES

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def binary() -> Path:
    return devserver.find_temporal_binary(Settings.from_env())


def make_settings(home: Path, binary: Path) -> Settings:
    return Settings(address=f"localhost:{free_port()}", home=home, ui_port=free_port(), temporal_bin=str(binary))


def temporal(binary: Path, address: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI against ``address``, ignoring any TEMPORAL_* configuration of the machine running the tests."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    return subprocess.run([str(binary), *args, "--address", address, "--disable-config-file"],
                          capture_output=True, text=True, env=env, timeout=30, check=False)


def pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, binary: Path) -> Iterator[tuple[Settings, devserver.ServerInfo]]:
    """One dev server shared by the read-only tests."""
    settings = make_settings(tmp_path_factory.mktemp("shared") / ".iterloop", binary)
    info = devserver.start(settings)
    try:
        yield settings, info
    finally:
        devserver.stop(settings)


@pytest.fixture
def own_settings(tmp_path: Path, binary: Path) -> Iterator[Settings]:
    """Settings for a test that starts and stops its own server; whatever it leaves running is stopped."""
    settings = make_settings(tmp_path / ".iterloop", binary)
    yield settings
    devserver.stop(settings)


# -- a running server ------------------------------------------------------------------------------


def test_start_registers_every_search_attribute(server: tuple[Settings, devserver.ServerInfo], binary: Path) -> None:
    _, info = server
    listing = temporal(binary, info.address, "operator", "search-attribute", "list", "-o", "json")
    assert listing.returncode == 0, listing.stderr
    custom = json.loads(listing.stdout)["customAttributes"]
    for name, type_ in SEARCH_ATTRIBUTES.items():
        assert devserver._short_type(custom[name]) == type_


def test_start_sets_retention_to_30_days(server: tuple[Settings, devserver.ServerInfo], binary: Path) -> None:
    _, info = server
    described = temporal(binary, info.address, "operator", "namespace", "describe", "-n", "default", "-o", "json")
    assert described.returncode == 0, described.stderr
    assert json.loads(described.stdout)["config"]["workflowExecutionRetentionTtl"] == f"{720 * 3600}s"


def test_status_reports_pid_address_ui_db_and_uptime(server: tuple[Settings, devserver.ServerInfo]) -> None:
    settings, info = server
    current = devserver.status(settings)
    assert current.state == "running" and current.reachable
    assert current.server is not None and current.server.pid == info.pid
    assert current.server.address == f"127.0.0.1:{settings.address.rpartition(':')[2]}"
    assert current.server.ui_url == f"http://localhost:{settings.ui_port}"
    assert current.server.db_path == str((settings.home / "temporal.db").resolve())
    assert current.uptime_seconds is not None and current.uptime_seconds >= 0


def test_server_json_records_the_running_server(server: tuple[Settings, devserver.ServerInfo]) -> None:
    settings, info = server
    recorded = json.loads((settings.home / "server.json").read_text())
    assert recorded["pid"] == info.pid and recorded["address"] == info.address
    assert set(recorded) >= {"pid", "address", "ui_url", "db_path", "started_at"}


def test_start_again_reuses_the_running_server(server: tuple[Settings, devserver.ServerInfo]) -> None:
    settings, info = server
    again = devserver.ensure_running(settings)
    assert again.reused and again.pid == info.pid


def test_a_foreign_temporal_server_on_the_port_is_reported(
    server: tuple[Settings, devserver.ServerInfo], tmp_path: Path, binary: Path
) -> None:
    settings, _ = server
    other_home = Settings(address=settings.address, home=tmp_path / ".iterloop", ui_port=free_port(),
                          temporal_bin=str(binary))
    with pytest.raises(PortInUseError, match="not started by iterloop") as caught:
        devserver.start(other_home)
    assert "TEMPORAL_ADDRESS" in str(caught.value)


# -- starting and stopping ------------------------------------------------------------------------


def test_runs_survive_a_stop_and_start(own_settings: Settings, binary: Path) -> None:
    first = devserver.start(own_settings, headless=True)
    started = temporal(binary, first.address, "workflow", "start", "--type", "NoSuchType",
                       "--task-queue", "nobody", "--workflow-id", "survives-restart")
    assert started.returncode == 0, started.stderr

    devserver.stop(own_settings)
    second = devserver.start(own_settings, headless=True)

    assert second.pid != first.pid and not second.reused
    described = temporal(binary, second.address, "workflow", "describe", "--workflow-id", "survives-restart",
                         "-o", "json")
    assert described.returncode == 0, described.stderr
    assert "survives-restart" in described.stdout


def test_stop_kills_the_server_and_status_says_stopped(own_settings: Settings) -> None:
    info = devserver.start(own_settings, headless=True)

    stopped = devserver.stop(own_settings)

    assert stopped is not None and stopped.pid == info.pid
    assert not pid_exists(info.pid)
    assert not (own_settings.home / "server.json").exists()
    assert devserver.status(own_settings).state == "stopped"


def test_stop_without_a_server_returns_none(own_settings: Settings) -> None:
    assert devserver.stop(own_settings) is None


def test_a_stale_server_json_is_ignored_and_replaced(own_settings: Settings) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    own_settings.home.mkdir(parents=True)
    stale = devserver.ServerInfo(pid=dead.pid, address="127.0.0.1:1", db_path="/nowhere/temporal.db",
                                 log_path="/nowhere/temporal.log", binary="temporal",
                                 started_at="2020-01-01T00:00:00Z")
    (own_settings.home / "server.json").write_text(stale.model_dump_json())

    assert devserver.status(own_settings).state == "stopped"
    info = devserver.start(own_settings, headless=True)
    assert info.pid != dead.pid and devserver.status(own_settings).state == "running"


def test_a_port_used_by_another_program_is_reported(own_settings: Settings) -> None:
    port = int(own_settings.address.rpartition(":")[2])
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        with pytest.raises(PortInUseError, match=f"port {port} .* in use") as caught:
            devserver.start(own_settings, headless=True)
    assert "TEMPORAL_ADDRESS" in str(caught.value)
    assert not (own_settings.home / "server.json").exists()


def test_a_server_that_exits_during_start_shows_its_log(own_settings: Settings, tmp_path: Path) -> None:
    broken = tmp_path / "temporal"
    broken.write_text("#!/bin/sh\necho 'fatal: cannot open database' >&2\nexit 3\n")
    broken.chmod(0o755)

    with pytest.raises(DevServerStartError, match="exit 3") as caught:
        devserver.start(own_settings, headless=True, binary=broken)

    assert "fatal: cannot open database" in str(caught.value)
    assert not (own_settings.home / "server.json").exists()


def test_a_remote_address_cannot_be_started_locally(tmp_path: Path) -> None:
    settings = Settings(address="temporal.example.com:7233", address_configured=True, home=tmp_path)
    with pytest.raises(DevServerError, match="TEMPORAL_ADDRESS"):
        devserver.start(settings)


def test_cli_server_commands_start_report_and_stop(tmp_path: Path, binary: Path) -> None:
    env = {**os.environ, "ITERLOOP_HOME": str(tmp_path / ".iterloop"), "TEMPORAL_ADDRESS": f"localhost:{free_port()}",
           "ITERLOOP_TEMPORAL_BIN": str(binary)}

    def iterloop(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cli", "server", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60, check=False)

    try:
        started = iterloop("start", "--headless", "--json")
        assert started.returncode == 0, started.stderr
        doc = json.loads(started.stdout)
        assert doc["state"] == "running" and doc["ui_url"] is None

        status = iterloop("status")
        assert status.returncode == 0 and f"pid {doc['pid']}" in status.stdout
        assert "TEMPORAL_ADDRESS=" in status.stdout
    finally:
        stopped = iterloop("stop", "--json")
    assert stopped.returncode == 0, stopped.stderr
    assert json.loads(stopped.stdout)["stopped"] is True
    assert iterloop("status", "--json").returncode == 1


# -- the binary --------------------------------------------------------------------------------------


def executable(path: Path, text: str = "#!/bin/sh\nexit 0\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


def test_iterloop_temporal_bin_comes_first(tmp_path: Path) -> None:
    chosen = executable(tmp_path / "mine" / "temporal")
    executable(tmp_path / "cache" / "temporal")
    settings = Settings(temporal_bin=str(chosen))
    assert devserver.find_temporal_binary(settings, cache_dir=tmp_path / "cache") == chosen


def test_a_missing_iterloop_temporal_bin_is_an_error(tmp_path: Path) -> None:
    executable(tmp_path / "cache" / "temporal")
    settings = Settings(temporal_bin=str(tmp_path / "nope"))
    with pytest.raises(TemporalBinaryNotFound, match="ITERLOOP_TEMPORAL_BIN .* does not exist"):
        devserver.find_temporal_binary(settings, cache_dir=tmp_path / "cache")


def test_a_non_executable_iterloop_temporal_bin_is_an_error(tmp_path: Path) -> None:
    plain = tmp_path / "temporal"
    plain.write_text("not a program")
    with pytest.raises(TemporalBinaryNotFound, match="not an executable"):
        devserver.find_temporal_binary(Settings(temporal_bin=str(plain)), cache_dir=tmp_path)


def test_the_cache_comes_before_path(tmp_path: Path) -> None:
    cached = executable(tmp_path / "cache" / "temporal")
    executable(tmp_path / "path" / "temporal")
    found = devserver.find_temporal_binary(Settings(), cache_dir=tmp_path / "cache", search_path=str(tmp_path / "path"))
    assert found == cached


def test_path_is_the_last_resort(tmp_path: Path) -> None:
    on_path = executable(tmp_path / "path" / "temporal")
    found = devserver.find_temporal_binary(Settings(), cache_dir=tmp_path / "cache", search_path=str(tmp_path / "path"))
    assert found == on_path


def test_no_binary_anywhere_says_run_make_setup(tmp_path: Path) -> None:
    with pytest.raises(TemporalBinaryNotFound) as caught:
        devserver.find_temporal_binary(Settings(), cache_dir=tmp_path / "cache", search_path=str(tmp_path))
    assert "make setup" in str(caught.value) and "ITERLOOP_TEMPORAL_BIN" in str(caught.value)


def test_ensure_builds_with_go_into_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A stand-in `go` that records its arguments and "installs" a binary into $GOBIN.
    tools = tmp_path / "tools"
    executable(tools / "go", f"""#!/bin/sh
echo "$@" > {tmp_path / "go-args"}
printf '#!/bin/sh\\n' > "$GOBIN/temporal"
/bin/chmod +x "$GOBIN/temporal"
""")
    monkeypatch.setenv("PATH", str(tools))

    binary = devserver.ensure_temporal_binary(Settings(), download=False, cache_dir=tmp_path / "cache")

    assert binary == tmp_path / "cache" / "temporal"
    assert (tmp_path / "go-args").read_text().split() == ["install", f"{devserver.GO_PACKAGE}@v1.5.1"]


def test_ensure_without_go_or_download_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(TemporalBinaryNotFound, match="Go"):
        devserver.ensure_temporal_binary(Settings(), download=False, cache_dir=tmp_path / "cache")


def test_ensure_does_not_replace_a_broken_iterloop_temporal_bin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    executable(tmp_path / "tools" / "go", "#!/bin/sh\nexit 1\n")
    monkeypatch.setenv("PATH", str(tmp_path / "tools"))
    with pytest.raises(TemporalBinaryNotFound, match="ITERLOOP_TEMPORAL_BIN"):
        devserver.ensure_temporal_binary(Settings(temporal_bin=str(tmp_path / "nope")), download=True,
                                         cache_dir=tmp_path / "cache")

"""The parts of `runtime/local_cluster.py` that decide before anything starts: where the binaries
are, which data directories PostgreSQL can use, which ports Temporal can take. Starting the real
thing is the cluster tier's job (tests/cluster/, `make test-cluster`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime.local_cluster import (
    MEMBERSHIP_PORT_LIMIT,
    LocalClusterError,
    PostgresServer,
    _RunAs,
    find_temporal_server_dir,
    free_port,
)


def test_a_named_server_directory_without_the_binaries_says_what_is_missing_and_how_to_build_them(
        tmp_path: Path) -> None:
    (tmp_path / "server").write_text("#!/bin/sh\n")
    (tmp_path / "server").chmod(0o755)
    with pytest.raises(LocalClusterError) as raised:
        find_temporal_server_dir(env={"ITERLOOP_TEMPORAL_SERVER_DIR": str(tmp_path)})
    message = str(raised.value)
    assert f"sql missing in ITERLOOP_TEMPORAL_SERVER_DIR={tmp_path}" in message
    assert "Run `make temporal-server`" in message


def test_a_server_directory_with_both_binaries_is_used(tmp_path: Path) -> None:
    for name in ("server", "sql"):
        (tmp_path / name).write_text("#!/bin/sh\n")
        (tmp_path / name).chmod(0o755)
    assert find_temporal_server_dir(env={"ITERLOOP_TEMPORAL_SERVER_DIR": str(tmp_path)}) == tmp_path


def test_a_directory_that_holds_other_files_is_refused_as_a_data_directory(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(LocalClusterError, match="neither empty nor a PostgreSQL data directory"):
        PostgresServer.start(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # nothing written


def test_a_parent_the_unprivileged_user_cannot_enter_is_named_with_the_fix(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    closed.chmod(0o700)
    run_as = _RunAs(prefix=("runuser", "-u", "nobody", "--"), uid=os.getuid() + 12345, gid=os.getgid())
    with pytest.raises(LocalClusterError) as raised:
        run_as.check_reachable(closed / "pg")
    assert f"cannot enter {closed} (mode 0o700)" in str(raised.value)
    assert f"chmod o+x {closed}" in str(raised.value)


def test_ports_picked_below_a_limit_stay_below_it() -> None:
    ports = {free_port(below=MEMBERSHIP_PORT_LIMIT) for _ in range(20)}
    assert all(10000 <= p < MEMBERSHIP_PORT_LIMIT for p in ports)

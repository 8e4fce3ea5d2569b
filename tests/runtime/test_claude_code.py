"""Which `claude` binary iterloop runs: ITERLOOP_CLAUDE_BIN, then `make setup`'s install, then PATH."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.claude_code import ClaudeCodeNotFound, find_claude_binary
from runtime.settings import Settings


def executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def test_iterloop_claude_bin_is_read_from_the_environment() -> None:
    assert Settings.from_env({"ITERLOOP_CLAUDE_BIN": "/opt/claude"}).claude_bin == "/opt/claude"
    assert Settings.from_env({}).claude_bin is None


def test_iterloop_claude_bin_comes_first(tmp_path: Path) -> None:
    chosen = executable(tmp_path / "mine" / "claude")
    local = executable(tmp_path / "local" / "claude")
    found = find_claude_binary(Settings(claude_bin=str(chosen)), local_install=local,
                               search_path=str(tmp_path / "path"))
    assert found == chosen


@pytest.mark.parametrize(("make", "problem"), [("nothing", "does not exist"), ("a plain file", "not an executable")])
def test_a_broken_iterloop_claude_bin_is_an_error_not_skipped(tmp_path: Path, make: str, problem: str) -> None:
    configured = tmp_path / "claude"
    if make == "a plain file":
        configured.write_text("not a program")
    local = executable(tmp_path / "local" / "claude")
    with pytest.raises(ClaudeCodeNotFound, match=f"ITERLOOP_CLAUDE_BIN .*{problem}"):
        find_claude_binary(Settings(claude_bin=str(configured)), local_install=local)


def test_a_users_install_on_path_comes_before_the_make_setup_install(tmp_path: Path) -> None:
    local = executable(tmp_path / "local" / "claude")
    on_path = executable(tmp_path / "path" / "claude")
    assert find_claude_binary(Settings(), local_install=local, search_path=str(tmp_path / "path")) == on_path


def test_the_make_setup_install_is_used_when_path_has_none(tmp_path: Path) -> None:
    local = executable(tmp_path / "local" / "claude")
    assert find_claude_binary(Settings(), local_install=local, search_path=str(tmp_path / "empty")) == local


def test_a_dangling_install_link_falls_through_to_path(tmp_path: Path) -> None:
    """npm's bin entry is a symlink; a half-removed install must not be chosen."""
    link = tmp_path / "local" / "claude"
    link.parent.mkdir()
    link.symlink_to(tmp_path / "gone")
    on_path = executable(tmp_path / "path" / "claude")
    assert find_claude_binary(Settings(), local_install=link, search_path=str(tmp_path / "path")) == on_path


def test_nothing_found_says_to_run_make_setup(tmp_path: Path) -> None:
    with pytest.raises(ClaudeCodeNotFound, match="make setup"):
        find_claude_binary(Settings(), local_install=tmp_path / "local" / "claude", search_path=str(tmp_path / "path"))

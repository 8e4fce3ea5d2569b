"""Which `codex` binary iterloop runs: ITERLOOP_CODEX_BIN, then PATH, then `make setup`'s install."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.codex_cli import CodexNotFound, find_codex_binary
from runtime.settings import Settings


def executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def test_iterloop_codex_bin_is_read_from_the_environment() -> None:
    assert Settings.from_env({"ITERLOOP_CODEX_BIN": "/opt/codex"}).codex_bin == "/opt/codex"
    assert Settings.from_env({}).codex_bin is None


def test_iterloop_codex_bin_comes_first(tmp_path: Path) -> None:
    chosen = executable(tmp_path / "mine" / "codex")
    executable(tmp_path / "path" / "codex")
    local = executable(tmp_path / "local" / "codex")
    found = find_codex_binary(Settings(codex_bin=str(chosen)), local_install=local,
                              search_path=str(tmp_path / "path"))
    assert found == chosen


@pytest.mark.parametrize(("make", "problem"), [("nothing", "does not exist"), ("a plain file", "not an executable")])
def test_a_broken_iterloop_codex_bin_is_an_error_not_skipped(tmp_path: Path, make: str, problem: str) -> None:
    configured = tmp_path / "codex"
    if make == "a plain file":
        configured.write_text("not a program")
    local = executable(tmp_path / "local" / "codex")
    with pytest.raises(CodexNotFound, match=f"ITERLOOP_CODEX_BIN .*{problem}"):
        find_codex_binary(Settings(codex_bin=str(configured)), local_install=local)


def test_a_codex_on_path_comes_before_the_make_setup_install(tmp_path: Path) -> None:
    local = executable(tmp_path / "local" / "codex")
    on_path = executable(tmp_path / "path" / "codex")
    assert find_codex_binary(Settings(), local_install=local, search_path=str(tmp_path / "path")) == on_path


def test_the_make_setup_install_is_used_when_path_has_none(tmp_path: Path) -> None:
    local = executable(tmp_path / "local" / "codex")
    assert find_codex_binary(Settings(), local_install=local, search_path=str(tmp_path / "path")) == local


def test_a_dangling_install_link_is_not_chosen(tmp_path: Path) -> None:
    """npm's bin entry is a symlink; a half-removed install must not be chosen."""
    link = tmp_path / "local" / "codex"
    link.parent.mkdir()
    link.symlink_to(tmp_path / "gone")
    with pytest.raises(CodexNotFound, match="make setup"):
        find_codex_binary(Settings(), local_install=link, search_path=str(tmp_path / "path"))


def test_nothing_found_says_to_run_make_setup(tmp_path: Path) -> None:
    with pytest.raises(CodexNotFound, match="make setup"):
        find_codex_binary(Settings(), local_install=tmp_path / "local" / "codex", search_path=str(tmp_path / "path"))

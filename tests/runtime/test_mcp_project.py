"""The project's MCP servers at run start: names from `.mcp.json`, never its entries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime.command_errors import UsageError
from runtime.mcp_project import project_servers
from runtime.settings import Settings


def write(directory: Path, data: object) -> Path:
    path = directory / ".mcp.json"
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def test_the_run_records_names_and_the_files_path_only(tmp_path: Path) -> None:
    path = write(tmp_path, {"mcpServers": {"github": {"type": "http", "url": "https://x/mcp",
                                                      "headers": {"Authorization": "Bearer sk-secret"}},
                                           "fs": {"command": "npx", "env": {"TOKEN": "sk-secret"}}}})
    servers = project_servers(str(tmp_path), autoload=True)
    assert [(s.name, s.project_file) for s in servers] == [("fs", str(path)), ("github", str(path))]
    assert "sk-secret" not in json.dumps([s.model_dump() for s in servers])


def test_no_file_or_autoload_off_gives_no_project_servers(tmp_path: Path) -> None:
    assert project_servers(str(tmp_path), autoload=True) == []
    write(tmp_path, {"mcpServers": {"fs": {"command": "npx"}}})
    assert project_servers(str(tmp_path), autoload=False) == []
    assert project_servers("", autoload=True) == []


@pytest.mark.parametrize("content", ["{not json", "[]", '{"servers": {}}', '{"mcpServers": []}'])
def test_a_malformed_file_is_a_usage_error_naming_it_and_the_way_out(tmp_path: Path, content: str) -> None:
    path = write(tmp_path, content)
    with pytest.raises(UsageError) as info:
        project_servers(str(tmp_path), autoload=True)
    assert str(path) in str(info.value) and "ITERLOOP_MCP_AUTOLOAD=0" in str(info.value)


def test_a_dotted_server_name_is_refused(tmp_path: Path) -> None:
    write(tmp_path, {"mcpServers": {"my.server": {"command": "x"}}})
    with pytest.raises(UsageError, match="'my.server'"):
        project_servers(str(tmp_path), autoload=True)


@pytest.mark.parametrize(("value", "on"), [("", True), ("1", True), ("0", False), ("false", False), ("FALSE", False)])
def test_iterloop_mcp_autoload_turns_the_project_file_off(value: str, on: bool) -> None:
    assert Settings.from_env({"ITERLOOP_MCP_AUTOLOAD": value}).mcp_autoload is on

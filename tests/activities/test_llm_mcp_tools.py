"""MCP tools offered to a model: a turn lists the tools of the servers its `tools:` name and offers
them with the builtins, under the policy and readonly, through the real SDKs against local fakes.

The server side (starting servers, listing, calling) is `activities/mcp/`; here a stand-in lister
returns what a server would list.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes.llm_servers import FakeAnthropic, FakeLLMServer, FakeOpenAI, Reply, ToolUse
from temporalio.exceptions import ApplicationError

from activities.artifacts import LocalArtifactStore
from activities.llm.activity import complete_turn
from activities.llm.settings import LLMSettings
from workflows.contract.mcp import McpServerSpec, McpToolInfo
from workflows.contract.messages import ERR_BAD_REQUEST, LLMTurnRequest, LLMTurnResult

TIME = McpServerSpec(name="time", transport="stdio", command="python", args=["-m", "mcp_server_time"])
FILES = McpServerSpec(name="files", project_file="/p/.mcp.json")
LISTED = {
    "time": [McpToolInfo(server="time", name="get_current_time", description="The time in a zone.",
                         input_schema={"type": "object", "properties": {"timezone": {"type": "string"}},
                                       "required": ["timezone"]}, read_only=True)],
    "files": [McpToolInfo(server="files", name="read_file", input_schema={"type": "object"}, read_only=True),
              McpToolInfo(server="files", name="write_file", input_schema={"type": "object"})],
}


class StandInLister:
    """Records which servers were listed, from which directory."""

    def __init__(self) -> None:
        self.listed: list[tuple[str, str | None]] = []

    async def __call__(self, server: McpServerSpec, *, cwd: str | None) -> list[McpToolInfo]:
        self.listed.append((server.name, cwd))
        return LISTED[server.name]


@pytest.fixture(params=[FakeAnthropic, FakeOpenAI], ids=["anthropic", "openai"])
def fake(request: pytest.FixtureRequest) -> Iterator[FakeLLMServer]:
    with request.param(api_key="test-key") as server:
        yield server


def settings(fake: FakeLLMServer) -> LLMSettings:
    if isinstance(fake, FakeAnthropic):
        return LLMSettings(anthropic_api_key="test-key", anthropic_base_url=fake.base_url)
    return LLMSettings(openai_api_key="test-key", openai_base_url=fake.base_url)


def model(fake: FakeLLMServer) -> str:
    return "anthropic/claude-test" if isinstance(fake, FakeAnthropic) else "openai/gpt-test"


async def turn(fake: FakeLLMServer, tmp_path: Path, lister: StandInLister, **kw: Any) -> LLMTurnResult:
    base: dict[str, Any] = {"run_id": "run-m", "node_id": "clock", "node_kind": "agent", "model": model(fake),
                            "user": "What time is it in Paris?", "mcp_servers": [TIME, FILES], "cwd": "/work/repo"}
    return await complete_turn(LLMTurnRequest(**{**base, **kw}), settings(fake),
                               store=LocalArtifactStore(tmp_path / "artifacts"), list_mcp_tools=lister)


def sent_tool_names(fake: FakeLLMServer) -> list[str]:
    return [t.get("name") or t["function"]["name"] for t in fake.last.body.get("tools", [])]


async def test_named_server_tools_are_offered_with_mangled_names_and_calls_map_back(
        fake: FakeLLMServer, tmp_path: Path) -> None:
    lister = StandInLister()
    fake.queue(Reply(tool_calls=[ToolUse("mcp_time_get_current_time", {"timezone": "Europe/Paris"}, id="call_1")]))
    result = await turn(fake, tmp_path, lister, tools=["echo", "mcp.time.*"])
    assert result.status == "tool_calls"
    assert [(c.name, c.arguments) for c in result.tool_calls] == [("mcp.time.get_current_time",
                                                                   {"timezone": "Europe/Paris"})]
    assert sent_tool_names(fake) == ["echo", "mcp_time_get_current_time"]
    assert [(t.name, t.mutating) for t in result.tools] == [("echo", False), ("mcp.time.get_current_time", False)]
    assert lister.listed == [("time", "/work/repo")]  # only the server the tools name, in the run's directory


async def test_a_readonly_node_is_not_offered_a_tool_its_server_does_not_mark_read_only(
        fake: FakeLLMServer, tmp_path: Path) -> None:
    fake.queue(Reply(text="done"))
    result = await turn(fake, tmp_path, StandInLister(), tools=["mcp.files.*"], readonly=True)
    assert [t.name for t in result.tools] == ["mcp.files.read_file"]
    assert sent_tool_names(fake) == ["mcp_files_read_file"]


async def test_the_policy_decides_which_mcp_tools_are_offered(fake: FakeLLMServer, tmp_path: Path) -> None:
    fake.queue(Reply(text="done"))
    result = await turn(fake, tmp_path, StandInLister(), tools=["mcp.files.*", "mcp.time.get_current_time"],
                        tool_policy=["mcp.files.read_file", "mcp.time.*"])
    assert [t.name for t in result.tools] == ["mcp.files.read_file", "mcp.time.get_current_time"]


async def test_a_node_with_servers_but_no_mcp_tools_lists_nothing(fake: FakeLLMServer, tmp_path: Path) -> None:
    lister = StandInLister()
    fake.queue(Reply(text="done"))
    result = await turn(fake, tmp_path, lister, tools=["echo"])
    assert [t.name for t in result.tools] == ["echo"] and lister.listed == []


async def test_a_tool_of_a_server_the_node_may_not_call_is_a_bad_request(
        fake: FakeLLMServer, tmp_path: Path) -> None:
    with pytest.raises(ApplicationError) as info:
        await turn(fake, tmp_path, StandInLister(), tools=["mcp.github.*"])
    assert info.value.type == ERR_BAD_REQUEST and info.value.non_retryable
    assert "github" in info.value.message and "mcp: servers:" in info.value.message


async def test_an_unknown_tool_of_an_active_server_is_a_bad_request(fake: FakeLLMServer, tmp_path: Path) -> None:
    with pytest.raises(ApplicationError) as info:
        await turn(fake, tmp_path, StandInLister(), tools=["mcp.time.set_time"])
    assert "mcp.time.set_time" in info.value.message and "mcp.time.get_current_time" in info.value.message


async def test_a_bare_name_is_the_one_mcp_tool_of_that_name(fake: FakeLLMServer, tmp_path: Path) -> None:
    """Iterion's rule: `get_current_time` alone is `mcp.time.get_current_time` when one server lists it."""
    lister = StandInLister()
    fake.queue(Reply(tool_calls=[ToolUse("mcp_time_get_current_time", {"timezone": "Asia/Tokyo"}, id="call_1")]))
    result = await turn(fake, tmp_path, lister, tools=["echo", "get_current_time"])
    assert [c.name for c in result.tool_calls] == ["mcp.time.get_current_time"]
    assert sent_tool_names(fake) == ["echo", "mcp_time_get_current_time"]
    assert sorted(name for name, _ in lister.listed) == ["files", "time"]  # a bare name may be any server's


async def test_a_bare_name_two_servers_list_is_refused_as_ambiguous(fake: FakeLLMServer, tmp_path: Path) -> None:
    class TwoClocks(StandInLister):
        async def __call__(self, server: McpServerSpec, *, cwd: str | None) -> list[McpToolInfo]:
            return [tool.model_copy(update={"server": server.name}) for tool in LISTED["time"]]

    with pytest.raises(ApplicationError) as info:
        await turn(fake, tmp_path, TwoClocks(), tools=["get_current_time"])
    assert info.value.type == ERR_BAD_REQUEST
    assert "mcp.time.get_current_time, mcp.files.get_current_time" in info.value.message
    assert "write the one you mean in full" in info.value.message

"""Sessions and tool policies as pure functions, without Temporal."""

from __future__ import annotations

import pytest

import dsl
from dsl import ir
from workflows import sessions as Sessions
from workflows.contract.tool_policy import effective_tool_policy, tool_allowed


def plan(mode: str, *, node_input: dict | None = None, branch: str = "", sessions: dict | None = None,
         branch_sessions: dict | None = None) -> Sessions.SessionPlan:
    return Sessions.plan_session(mode, node_id="fixer", visit=3, node_input=node_input or {}, branch=branch,
                                 sessions=sessions if sessions is not None else {"writer#1": "artifact://c1"},
                                 branch_sessions=branch_sessions if branch_sessions is not None else {"": "writer#1"})


@pytest.mark.parametrize("mode", ["fresh", "artifacts_only"])
def test_fresh_modes_start_a_new_conversation_under_their_own_id(mode: str) -> None:
    assert plan(mode) == Sessions.SessionPlan("fixer#3")


def test_inherit_continues_the_branch_session_under_its_id() -> None:
    assert plan("inherit") == Sessions.SessionPlan("writer#1", "artifact://c1", parent="writer#1")


def test_fork_starts_from_the_parent_conversation_under_a_new_id() -> None:
    assert plan("fork") == Sessions.SessionPlan("fixer#3", "artifact://c1", parent="writer#1")


def test_an_explicit_session_id_in_the_input_wins_over_the_branch() -> None:
    sessions = {"writer#1": "artifact://c1", "critic#2": "artifact://c2"}
    got = plan("inherit", node_input={"_session_id": "critic#2"}, sessions=sessions)
    assert got == Sessions.SessionPlan("critic#2", "artifact://c2", parent="critic#2")


def test_a_branch_without_a_session_inherits_from_the_branch_it_forked_from() -> None:
    got = plan("inherit", branch="fan>left/inner>x", branch_sessions={"": "writer#1"})
    assert got.conversation_ref == "artifact://c1"


def test_an_unknown_session_id_starts_fresh_with_a_warning_naming_it() -> None:
    got = plan("inherit", node_input={"_session_id": "{{outputs.nope._session_id}}"})
    assert got.session_id == "fixer#3" and got.conversation_ref == ""
    assert "{{outputs.nope._session_id}}" in got.warning and "fixer" in got.warning


def test_inherit_with_no_session_anywhere_starts_fresh() -> None:
    assert plan("inherit", sessions={}, branch_sessions={}) == Sessions.SessionPlan("fixer#3")


def test_remember_keeps_the_latest_sessions_and_the_branch_pointer() -> None:
    sessions: dict[str, str] = {}
    branches: dict[str, str] = {}
    for i in range(Sessions.SESSIONS_KEPT + 5):
        Sessions.remember(sessions, branches, session_id=f"n#{i}", conversation_ref=f"r{i}", branch="b")
    Sessions.remember(sessions, branches, session_id="n#10", conversation_ref="r10b", branch="")
    assert len(sessions) == Sessions.SESSIONS_KEPT
    assert "n#0" not in sessions and sessions["n#10"] == "r10b"
    assert list(sessions)[-1] == "n#10"  # re-recorded sessions are the most recent
    assert branches == {"b": f"n#{Sessions.SESSIONS_KEPT + 4}", "": "n#10"}


def test_repair_request_quotes_the_reason_and_the_schema() -> None:
    text = Sessions.repair_request("field 'score' expected an int, found string 'high'", "review")
    assert "field 'score' expected an int, found string 'high'" in text and "'review'" in text


# -- tool policy ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "policy", "allowed"), [
    ("get_funnel_data", None, True),
    ("get_funnel_data", [], False),
    ("get_funnel_data", ["*"], True),
    ("get_funnel_data", ["get_funnel_data"], True),
    ("get_funnel_data", ["get_funnel"], False),
    ("mcp.github.create_issue", ["mcp.github.*"], True),
    ("mcp.github", ["mcp.github.*"], False),
    ("mcp.gitlab.create_issue", ["mcp.github.*"], False),
    ("create_feature_flag", ["check_srm", "create_feature_flag"], True),
])
def test_tool_allowed(name: str, policy: list[str] | None, allowed: bool) -> None:
    assert tool_allowed(name, policy) is allowed


def test_a_node_policy_replaces_the_workflow_policy() -> None:
    result = dsl.check_source("""
agent a:
  model: "m"
  tools: [check_srm, echo]
  tool_policy: [echo]
agent b:
  model: "m"
  tools: [check_srm]
workflow w:
  entry: a
  tool_policy: [check_srm]
  a -> b
  b -> done
""")
    assert result.workflow is not None, [d.render() for d in result.diagnostics]
    wf: ir.Workflow = result.workflow
    assert effective_tool_policy(wf, wf.nodes["a"]) == ["echo"]
    assert effective_tool_policy(wf, wf.nodes["b"]) == ["check_srm"]
    assert effective_tool_policy(wf.model_copy(update={"tool_policy": None}), wf.nodes["b"]) is None

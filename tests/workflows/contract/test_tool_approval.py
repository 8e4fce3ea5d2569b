"""The answer to a tool call's approval gate and the check of edited arguments (pure rules)."""

from __future__ import annotations

import pytest

import dsl
from workflows.contract.answers import AnswerError, answer_schema, coerce_answers, is_gate
from workflows.contract.tool_approval import TOOL_APPROVAL_SCHEMA, approval_patterns, arguments_problem, needs_approval

SCHEMA = {"type": "object", "properties": {"values": {"type": "array", "items": {"type": "number"}}},
          "required": ["values"]}


def approval(**answers: object) -> dict[str, object]:
    return coerce_answers(TOOL_APPROVAL_SCHEMA, dict(answers), gate="analyst")


def test_an_approval_needs_only_its_decision() -> None:
    assert approval(decision="approve") == {"decision": "approve", "arguments": {}, "message": ""}


def test_edited_arguments_given_as_cli_text_are_parsed_as_json() -> None:
    assert approval(decision="edit", arguments='{"values": [1]}')["arguments"] == {"values": [1]}


def test_approving_with_other_arguments_is_an_edit() -> None:
    assert approval(decision="approve", arguments={"values": [2]}, message="")["decision"] == "edit"


def test_a_rejection_keeps_its_message_for_the_model() -> None:
    assert approval(decision="reject", message=" not now ")["message"] == "not now"


@pytest.mark.parametrize(("answers", "says"), [
    ({"decision": "maybe"}, "one of approve, edit, reject"),
    ({"decision": "edit"}, "needs field 'arguments'"),
    ({"decision": "reject", "arguments": {"values": [1]}}, "goes with decision 'edit'"),
    ({"decision": "edit", "arguments": "[1, 2]"}, "must be a JSON object"),
    ({"decision": "approve", "approved": True}, "has no field 'approved'"),
])
def test_an_answer_that_does_not_fit_a_decision_is_refused_saying_what_to_send(
        answers: dict[str, object], says: str) -> None:
    with pytest.raises(AnswerError, match=says):
        coerce_answers(TOOL_APPROVAL_SCHEMA, answers, gate="analyst")


def test_edited_arguments_are_checked_against_the_tools_input_schema() -> None:
    assert arguments_problem({"values": [1, 2]}, SCHEMA) == ""
    assert "values/0" in arguments_problem({"values": ["x"]}, SCHEMA)
    assert "'values' is a required property" in arguments_problem({}, SCHEMA)
    assert arguments_problem({"anything": 1}, None) == ""  # unknown schema: the tool itself checks


def test_patterns_match_as_tool_policy_does() -> None:
    assert needs_approval("mcp.github.create_issue", ["mcp.github.*"])
    assert not needs_approval("sum_values", ["mcp.github.*"])
    assert not needs_approval("sum_values", [])


def compiled(extra: str) -> dsl.Workflow:
    result = dsl.check_source(f"""schema s:
  summary: string
agent a:
  model: "openai/gpt-test"
  output: s
  tools: [sum_values]
  tool_approval: [sum_values]
{extra}workflow w:
  entry: a
  a -> done
""")
    assert result.workflow is not None, [d.render() for d in result.diagnostics]
    return result.workflow


def test_an_agent_with_tool_approval_is_a_gate_with_the_approval_schema() -> None:
    wf = compiled("")
    assert is_gate(wf.nodes["a"]) and answer_schema(wf, wf.nodes["a"]) == TOOL_APPROVAL_SCHEMA
    assert approval_patterns(wf, wf.nodes["a"]) == ["sum_values"]


def test_a_delegated_agent_has_no_approval_its_cli_runs_its_own_tools() -> None:
    wf = compiled("").model_copy(update={"default_backend": "claude_code"})
    assert approval_patterns(wf, wf.nodes["a"]) == []


def test_slack_offers_approve_and_reject_with_an_optional_message() -> None:
    from workflows.contract.slack_blocks import answer_plan

    plan = answer_plan(TOOL_APPROVAL_SCHEMA)
    assert plan.decisions == ["approve", "reject"] and [f.name for f in plan.details] == ["message"]
    rejected = coerce_answers(TOOL_APPROVAL_SCHEMA, plan.answers("reject", {"message": "not on prod"}), gate="a")
    assert rejected == {"decision": "reject", "arguments": {}, "message": "not on prod"}
    approved = coerce_answers(TOOL_APPROVAL_SCHEMA, plan.answers("approve", {"message": ""}), gate="a")
    assert approved["decision"] == "approve"

"""How a gate's schema becomes Slack buttons and a modal, and how clicks become answers."""

from __future__ import annotations

import json

import pytest

from dsl.ir import Schema, SchemaField
from workflows.contract.messages import NotifyRequest
from workflows.contract.slack_blocks import (
    ACTION_ANSWER,
    ACTION_APPROVE,
    ACTIONS_BLOCK,
    ButtonValue,
    answer_modal,
    answer_plan,
    decided_blocks,
    decision_note,
    format_number,
    gate_message,
    key_facts,
    read_modal,
)


def schema(*fields: tuple[str, str] | tuple[str, str, list[str]]) -> Schema:
    return Schema(name="answer", fields=[SchemaField(name=f[0], type=f[1], enum_values=f[2] if len(f) > 2 else None)
                                         for f in fields])  # type: ignore[arg-type]


def test_a_bool_named_approved_is_the_decision() -> None:
    plan = answer_plan(schema(("ship", "bool"), ("approved", "bool")))

    assert plan.decision_field == "approved" and plan.decisions == ["approve", "reject"]
    assert plan.answers("approve", {"ship": True}) == {"approved": True, "ship": True}
    assert plan.answers("reject", {"ship": False}) == {"approved": False, "ship": False}
    assert [f.name for f in plan.details] == ["ship"]


def test_the_first_bool_is_the_decision_when_none_has_a_known_name() -> None:
    plan = answer_plan(schema(("launch", "bool"), ("rollback", "bool")))

    assert plan.decision_field == "launch"


def test_an_enum_with_approving_and_rejecting_values_is_the_decision() -> None:
    plan = answer_plan(schema(("decision", "string", ["Approve", "Reject", "Defer"])))

    assert plan.decision_field == "decision" and not plan.needs_modal
    assert plan.answers("approve") == {"decision": "Approve"} and plan.answers("reject") == {"decision": "Reject"}


def test_a_free_text_field_makes_the_buttons_open_a_modal() -> None:
    plan = answer_plan(schema(("approved", "bool"), ("reviewer_notes", "string")))

    assert plan.needs_modal and [f.name for f in plan.details] == ["reviewer_notes"]


def test_a_schema_without_a_decision_gets_one_answer_button() -> None:
    req = NotifyRequest(event="gate_opened", run_id="r", workflow="w", gate="g", interaction_id="r:g:1",
                        answer_schema=schema(("budget", "float")))

    _, blocks = gate_message(req)

    (actions,) = [b for b in blocks if b["type"] == "actions"]
    assert [a["action_id"] for a in actions["elements"]] == [ACTION_ANSWER]
    assert actions["elements"][0]["text"]["text"] == "Answer…"


def test_no_schema_answers_approved() -> None:
    plan = answer_plan(None)

    assert plan.answers("approve") == {"approved": True} and not plan.needs_modal


def test_modal_has_one_input_per_detail_and_reads_back_typed_values() -> None:
    plan = answer_plan(schema(("approved", "bool"), ("reviewer_notes", "string"), ("traffic", "float"),
                              ("arm", "string", ["a", "b"]), ("tags", "string[]"), ("rollback", "bool")))
    value = ButtonValue("r", "g", "r:g:1", "reject")

    modal = answer_modal(plan, value, channel="C1", ts="1.2")

    inputs = {b["block_id"]: b for b in modal["blocks"] if b["type"] == "input"}
    assert set(inputs) == {"field:reviewer_notes", "field:traffic", "field:arm", "field:tags", "field:rollback"}
    assert inputs["field:reviewer_notes"]["element"]["multiline"] and inputs["field:reviewer_notes"]["optional"]
    assert inputs["field:traffic"]["element"] == {"type": "number_input", "action_id": "value",
                                                  "is_decimal_allowed": True}
    assert inputs["field:arm"]["element"]["type"] == "static_select"
    submitted = {**modal, "state": {"values": {
        "field:reviewer_notes": {"value": {"type": "plain_text_input", "value": "too risky"}},
        "field:traffic": {"value": {"type": "number_input", "value": "0.5"}},
        "field:arm": {"value": {"type": "static_select", "selected_option": {"value": "b"}}},
        "field:tags": {"value": {"type": "plain_text_input", "value": None}},
        "field:rollback": {"value": {"type": "static_select", "selected_option": {"value": "true"}}}}}}
    read = read_modal(submitted, plan)
    assert (read.value, read.channel, read.ts) == (value, "C1", "1.2")
    assert read.details == {"reviewer_notes": "too risky", "traffic": "0.5", "arm": "b", "tags": [],
                            "rollback": "true"}


def test_button_values_round_trip_and_strangers_are_refused() -> None:
    value = ButtonValue("run-1", "approve", "run-1:approve:3", "approve")

    assert ButtonValue.decode(value.encode()) == value
    for bad in ("", "hello", json.dumps({"r": "x", "g": "y", "i": "z", "d": "delete"})):
        with pytest.raises(ValueError):
            ButtonValue.decode(bad)


def test_answered_message_replaces_the_buttons_with_who_decided() -> None:
    req = NotifyRequest(event="gate_opened", run_id="r", workflow="w", gate="g", interaction_id="r:g:1")
    _, blocks = gate_message(req)
    plan = answer_plan(None)

    note = decision_note(plan, {"approved": False}, user_id="U42", when_unix=1700000000)
    after = decided_blocks(blocks, note)

    assert not any(b.get("block_id") == ACTIONS_BLOCK for b in after)
    assert after[-1]["elements"][0]["text"].startswith("⛔ Rejected by <@U42> on <!date^1700000000^")


def test_key_facts_keep_short_scalars_and_skip_the_rest() -> None:
    facts = key_facts({"lift": 0.04231, "n": 1200, "ok": True, "$artifact": {"uri": "x"}, "log": "a\nb",
                       "arms": [1, 2], "plan": {"name": "v2", "deep": {"x": 1}}, "none": None})

    assert facts == [("lift", "0.04231"), ("n", "1,200"), ("ok", "yes"), ("plan.name", "v2")]


def test_key_facts_stop_at_slacks_ten_fields() -> None:
    assert len(key_facts({f"k{i}": i for i in range(30)})) == 10


@pytest.mark.parametrize(("value", "text"), [(12345, "12,345"), (0.0423, "0.0423"), (1234.56, "1,235"),
                                             (3.0, "3"), (12.3456, "12.35"), (3.5e-07, "3.5e-07"), (0.0, "0"),
                                             (-0.5, "-0.5")])
def test_format_number(value: float, text: str) -> None:
    assert format_number(value) == text


def test_gate_message_escapes_slack_control_characters() -> None:
    req = NotifyRequest(event="gate_opened", run_id="r", workflow="w", gate="g", interaction_id="r:g:1",
                        instructions="Is <b> & <@channel> fine?")

    _, blocks = gate_message(req)

    assert "Is &lt;b&gt; &amp; &lt;@channel&gt; fine?" in json.dumps(blocks)
    assert ACTION_APPROVE in json.dumps(blocks)

"""A human gate: answered by a person, a model, or a model that may defer to a person.

A gate takes an answer given in advance first (`--skip-gates` presets, or an answer sent before
it opened), otherwise it opens (event, notification, search attribute) and waits for the
`answer` update or signal, up to its timeout. `GraphRun`'s handlers check and accept answers
through `check_answer` and `accept_answer`, so an answer is judged the same way however it comes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow

from dsl import ir
from workflows import metrics
from workflows.contract import messages as M
from workflows.contract.answers import AnswerError, answer_schema, coerce_answers, interaction_id
from workflows.contract.state import Answer, AnswerRecord, Gate
from workflows.inputs import prompt_body, render_text
from workflows.nodes.base import NodeFailed, Produced, RunContext, produce
from workflows.nodes.llm import converse


async def visit(run: RunContext, node: ir.HumanNode, branch: str, node_input: dict[str, Any]) -> str | None:
    """A gate only a person answers costs nothing and is not an iteration of the budget."""
    return await produce(run, node, branch, lambda: answer_gate(run, node, branch, node_input),
                         counted=node.interaction != "human")


async def answer_gate(run: RunContext, node: ir.HumanNode, branch: str, node_input: dict[str, Any]) -> Produced:
    schema = answer_schema(run.wf, node)
    if node.interaction == "llm":
        return await converse(run, node, branch, node_input, purpose="auto_answer")
    usage = M.Usage()
    if node.interaction == "llm_or_human":
        extended = ir.Schema(name=f"{schema.name if schema else node.id}_auto_or_pause",
                             fields=[*(schema.fields if schema else []),
                                     ir.SchemaField(name="needs_human_input", type="bool")])
        output, usage = await converse(run, node, branch, node_input, purpose="auto_or_pause", schema=extended)
        if output.get("needs_human_input") is not True:
            output.pop("needs_human_input", None)
            return output, usage
        run.emit("auto_answer_deferred", node.id, branch, {"reason": "model asked for a human"})
    answers = await wait_for_answer(run, node, branch, node_input, schema)
    return answers, usage


async def wait_for_answer(run: RunContext, node: ir.HumanNode, branch: str, questions: dict[str, Any],
                          schema: ir.Schema | None) -> dict[str, Any]:
    visit = run.state.nodes[node.id].visits
    iid = interaction_id(workflow.info().workflow_id, node.id, visit)
    instructions = render_text(prompt_body(run.wf, node.instructions), run.data, questions) if node.instructions else ""
    gate = Gate(gate=node.id, interaction_id=iid, instructions=instructions, questions=questions, schema=schema,
                opened_at=workflow.now().isoformat(), timeout_seconds=node.timeout_seconds)
    early = run.state.early_answers.pop(node.id, None)
    preset = run.options.gate_answers.get(node.id) if early is None else None
    if preset is not None:
        early = Answer(gate=node.id, answers=preset, answered_by="auto (preset)")
    if early is not None:
        try:
            record = record_answer(run, gate, early)
        except AnswerError as exc:
            raise NodeFailed(f"the answer given in advance for gate '{node.id}' is not valid: {exc}",
                             M.ERR_BAD_REQUEST) from None
        run.emit("gate_answered", node.id, branch, {"interaction_id": iid, "by": record.answered_by,
                                                    "preset" if preset is not None else "early": True})
        return record.answers
    run.open_gates[node.id] = gate
    run.state.nodes[node.id].status = "waiting"
    run.emit("human_input_requested", node.id, branch, {"interaction_id": iid, "questions": questions})
    run.notify("gate_opened", gate=node.id, interaction_id=iid, instructions=instructions, questions=questions,
               answer_schema=schema)
    run.set_details(f"**{node.id}** waiting for a human answer (`iterloop answer {workflow.info().workflow_id} "
                    f"--gate {node.id} …`)")
    run.publish_status()
    try:
        await workflow.wait_condition(lambda: iid in run.gate_answers,
                                      timeout=timedelta(seconds=node.timeout_seconds) if node.timeout_seconds else None,
                                      timeout_summary=f"{node.id} · gate timeout")
    except TimeoutError:
        run.open_gates.pop(node.id, None)
        run.emit("gate_timed_out", node.id, branch, {"interaction_id": iid, "timeout": node.timeout})
        raise NodeFailed(f"gate '{node.id}' got no answer within {node.timeout}; answer it and "
                         f"`iterloop retry` to reopen it", "GateTimeout") from None
    run.open_gates.pop(node.id, None)
    record = run.gate_answers.pop(iid)
    run.emit("gate_answered", node.id, branch, {"interaction_id": iid, "by": record.answered_by})
    metrics.gate_answered(run.wf.name, node.id, (workflow.now() - datetime.fromisoformat(gate.opened_at)).total_seconds())
    run.publish_status()
    return record.answers


def record_answer(run: RunContext, gate: Gate, answer: Answer) -> AnswerRecord:
    """Check ``answer`` against the gate's schema and add it to the run's answers."""
    node = run.wf.nodes[gate.gate]
    assert isinstance(node, ir.HumanNode)
    answers = coerce_answers(answer_schema(run.wf, node), answer.answers, gate=gate.gate)
    record = AnswerRecord(gate=gate.gate, interaction_id=gate.interaction_id, answers=answers,
                          answered_by=answer.answered_by, answered_at=workflow.now().isoformat())
    run.state.answers.append(record)
    return record


def check_answer(run: RunContext, answer: Answer) -> None:
    """Reject (ValueError) an answer for no gate, for a gate opening that is gone, or that does not fit."""
    node = run.wf.nodes.get(answer.gate)
    if not isinstance(node, ir.HumanNode):
        humans = [n for n, v in run.wf.nodes.items() if isinstance(v, ir.HumanNode)]
        raise ValueError(f"'{answer.gate}' is not a human gate of workflow '{run.wf.name}'; gates: "
                         f"{', '.join(humans) or '(none)'}")
    gate = run.open_gates.get(answer.gate)
    if answer.interaction_id and (gate is None or answer.interaction_id != gate.interaction_id):
        now = f"is now open as {gate.interaction_id}" if gate else "is not open"
        raise ValueError(f"answer is for {answer.interaction_id} but gate '{answer.gate}' {now}; "
                         "inspect the run and answer the current question")
    try:
        coerce_answers(answer_schema(run.wf, node), answer.answers, gate=answer.gate)
    except AnswerError as exc:
        raise ValueError(str(exc)) from None


def accept_answer(run: RunContext, answer: Answer) -> AnswerRecord:
    """Give a checked answer to its open gate, or keep it for the gate's next opening."""
    gate = run.open_gates.get(answer.gate)
    if gate is None:
        run.state.early_answers[answer.gate] = answer
        run.emit("answer_queued", answer.gate, data={"by": answer.answered_by})
        return AnswerRecord(gate=answer.gate, interaction_id="", answers=answer.answers,
                            answered_by=answer.answered_by, answered_at=workflow.now().isoformat())
    if gate.interaction_id in run.gate_answers:
        return run.gate_answers[gate.interaction_id]
    record = record_answer(run, gate, answer)
    run.gate_answers[gate.interaction_id] = record
    return record

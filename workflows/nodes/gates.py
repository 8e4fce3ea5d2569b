"""Gate openings and their answers: the machinery a human node and a delegated agent that asks a
person (`interaction:`) share.

An opening opens (event, notification, search attribute) and waits for the `answer` update or
signal, up to its timeout, after taking an answer given in advance (`--skip-gates` presets, or an
answer sent explicitly in advance). Each opening has an id (`interaction_id`) and takes exactly one
answer: a second one, or one for an opening that has closed, is refused with who answered it and
when; it is never kept for a later opening nobody has seen yet. `GraphRun`'s handlers go through
`judge_answer`, so an answer is judged the same way however it comes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from dsl import ir
from workflows import metrics
from workflows.contract import messages as M
from workflows.contract.answers import (
    AnswerError,
    already_answered,
    answer_schema,
    coerce_answers,
    interaction_id,
    is_gate,
    not_open,
    opening_number,
)
from workflows.contract.state import Answer, AnswerRecord, Gate
from workflows.contract.vocabulary import ERR_GATE_OPENING_CLOSED
from workflows.nodes.base import NodeFailed, RunContext


async def wait_for_answer(run: RunContext, node: ir.Node, branch: str, questions: dict[str, Any],
                          schema: ir.Schema | None, *, instructions: str = "", timeout_seconds: float = 0.0,
                          timeout: str = "", opening: str = "", source: dict[str, Any] | None = None) -> dict[str, Any]:
    """Open ``node``'s gate (a human node, or a delegated agent asking: ``source`` says which
    backend, ``opening`` tells apart its several questions in one visit) and wait for its answer."""
    visit = run.state.nodes[node.id].visits
    iid = interaction_id(workflow.info().workflow_id, node.id, visit) + opening
    gate = Gate(gate=node.id, interaction_id=iid, instructions=instructions, questions=questions, schema=schema,
                opened_at=workflow.now().isoformat(), timeout_seconds=timeout_seconds)
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
    run.emit("human_input_requested", node.id, branch, {"interaction_id": iid, "questions": questions,
                                                        **(source or {})})
    run.notify("gate_opened", gate=node.id, interaction_id=iid, instructions=instructions, questions=questions,
               answer_schema=schema)
    run.set_details(f"**{node.id}** waiting for a human answer (`iterloop answer {workflow.info().workflow_id} "
                    f"--gate {node.id} …`)")
    run.publish_status()
    try:
        await workflow.wait_condition(lambda: iid in run.gate_answers,
                                      timeout=timedelta(seconds=timeout_seconds) if timeout_seconds else None,
                                      timeout_summary=f"{node.id} · gate timeout")
    except TimeoutError:
        run.open_gates.pop(node.id, None)
        run.emit("gate_timed_out", node.id, branch, {"interaction_id": iid, "timeout": timeout})
        raise NodeFailed(f"gate '{node.id}' got no answer within {timeout}; `iterloop retry` reopens it (or "
                         f"answer its next opening first with `iterloop answer … --gate {node.id} --in-advance`)",
                         "GateTimeout") from None
    run.open_gates.pop(node.id, None)
    record = run.gate_answers.pop(iid)
    run.emit("gate_answered", node.id, branch, {"interaction_id": iid, "by": record.answered_by})
    metrics.gate_answered(run.wf.name, node.id, (workflow.now() - datetime.fromisoformat(gate.opened_at)).total_seconds())
    run.publish_status()
    return record.answers


def record_answer(run: RunContext, gate: Gate, answer: Answer) -> AnswerRecord:
    """Check ``answer`` against the gate's schema and add it to the run's answers."""
    answers = coerce_answers(answer_schema(run.wf, run.wf.nodes[gate.gate]), answer.answers, gate=gate.gate)
    record = AnswerRecord(gate=gate.gate, interaction_id=gate.interaction_id, answers=answers,
                          answered_by=answer.answered_by, answered_at=workflow.now().isoformat())
    run.state.answers.append(record)
    return record


#: Runs whose history was recorded before a gate opening took one answer replay the old rules:
#: an answer for a closed gate was kept for its next opening, a second one to an answered opening
#: got the first record back. `patched` is asked only where the rules differ (never in a
#: validator, which must not record anything), and answers once per run.
ONE_ANSWER_PER_OPENING = "one-answer-per-opening"


@dataclass(frozen=True)
class Refusal:
    """Why the run refuses an answer. ``closed``: the opening it is for is answered already or not
    open (`GateOpeningClosed`); ``replaced_rule``: the rules before one answer per opening took it."""

    message: str
    closed: bool = False
    replaced_rule: bool = False

    def error(self) -> ApplicationError:
        # An update handler that raises anything but an ApplicationError fails the workflow task.
        return ApplicationError(self.message, type=ERR_GATE_OPENING_CLOSED if self.closed else M.ERR_BAD_REQUEST,
                                non_retryable=True)


def judge_answer(run: RunContext, answer: Answer) -> Refusal | None:
    """The one judgement of an answer, however it comes (update validator and handler, signal):
    None if the run takes it, else why not. An answer counts for exactly one gate opening: the one
    its ``interaction_id`` names, the one open when it arrives, or (``in_advance``) the next one."""
    node = run.wf.nodes.get(answer.gate)
    if node is None or not is_gate(node):
        gates = [n for n, v in run.wf.nodes.items() if is_gate(v)]
        return Refusal(f"'{answer.gate}' is not a human gate of workflow '{run.wf.name}'; gates: "
                       f"{', '.join(gates) or '(none)'}")
    try:
        coerce_answers(answer_schema(run.wf, node), answer.answers, gate=answer.gate)
    except AnswerError as exc:
        return Refusal(str(exc))
    gate = run.open_gates.get(answer.gate)
    iid = answer.interaction_id or (gate.interaction_id if gate is not None and not answer.in_advance else "")
    is_open = gate is not None and gate.interaction_id == iid
    if iid:
        record = opening_record(run, iid)
        if record is not None:
            return Refusal(already_answered(answer.gate, iid, record.answered_by, record.answered_at), closed=True,
                           replaced_rule=is_open)
        if not is_open:
            now = f"it is now open as {gate.interaction_id}" if gate else "the gate is not open"
            return Refusal(f"answer is for gate '{answer.gate}' opening {opening_number(iid)} ({iid}), which is "
                           f"not open: {now}; nothing was recorded; inspect the run and answer the current question",
                           closed=True)
        return None
    if gate is not None:  # in advance, but the gate is open now
        return Refusal(f"gate '{answer.gate}' is open now (opening {opening_number(gate.interaction_id)}); answer "
                       "that opening instead of answering in advance", closed=True)
    if answer.in_advance:
        kept = run.state.early_answers.get(answer.gate)
        if kept is not None:
            return Refusal(f"gate '{answer.gate}' already has an answer kept for its next opening, by "
                           f"{kept.answered_by}; nothing was recorded (a gate opening takes one answer)", closed=True)
        return None
    last = next((r for r in reversed(run.state.answers) if r.gate == answer.gate), None)
    return Refusal(not_open(answer.gate, workflow.info().workflow_id, last_id=last.interaction_id if last else "",
                            last_by=last.answered_by if last else "", last_at=last.answered_at if last else ""),
                   closed=True, replaced_rule=True)


def opening_record(run: RunContext, iid: str) -> AnswerRecord | None:
    """The answer an opening took, if any (the latest answers are kept across continue-as-new)."""
    return run.gate_answers.get(iid) or next((r for r in reversed(run.state.answers) if r.interaction_id == iid), None)


def check_answer(run: RunContext, answer: Answer) -> None:
    """The update validator: refuse an answer the run would not take (nothing is recorded)."""
    refusal = judge_answer(run, answer)
    if refusal is not None:
        raise refusal.error()


def accept_answer(run: RunContext, answer: Answer) -> AnswerRecord:
    """The update handler: judge again (two updates can pass their validators before either runs)
    and give the answer to its opening, or keep it for the gate's next opening when sent in advance."""
    refusal = judge_answer(run, answer)
    if refusal is not None:
        if refusal.replaced_rule and not workflow.patched(ONE_ANSWER_PER_OPENING):
            return _accept_before_one_answer_per_opening(run, answer)
        raise refusal.error()
    return _take(run, answer)


def accept_signalled_answer(run: RunContext, answer: Answer) -> None:
    """The signal handler: as the update, but a refusal becomes an `answer_rejected` event. The same
    sender repeating an answer its opening took (a redelivered Slack click) is ignored."""
    record = opening_record(run, answer.interaction_id) if answer.interaction_id else None
    if record is not None and record.answered_by == answer.answered_by and _same_answers(run, answer, record):
        return
    refusal = judge_answer(run, answer)
    if refusal is not None:
        if refusal.replaced_rule and not workflow.patched(ONE_ANSWER_PER_OPENING):
            if record is None:  # before: a signal for an answered opening was dropped silently
                _accept_before_one_answer_per_opening(run, answer)
            return
        # An event is state, not a command: recorded histories replay the same with it.
        run.emit("answer_rejected", answer.gate, data={"error": refusal.message, "by": answer.answered_by})
        return
    _take(run, answer)


def _take(run: RunContext, answer: Answer) -> AnswerRecord:
    gate = run.open_gates.get(answer.gate)
    if gate is None:  # judged: sent in advance
        run.state.early_answers[answer.gate] = answer
        run.emit("answer_queued", answer.gate, data={"by": answer.answered_by, "in_advance": True})
        return AnswerRecord(gate=answer.gate, interaction_id="", answers=answer.answers,
                            answered_by=answer.answered_by, answered_at=workflow.now().isoformat())
    record = record_answer(run, gate, answer)
    run.gate_answers[gate.interaction_id] = record
    return record


def _same_answers(run: RunContext, answer: Answer, record: AnswerRecord) -> bool:
    node = run.wf.nodes.get(answer.gate)
    if node is None or not is_gate(node):
        return False
    try:
        return coerce_answers(answer_schema(run.wf, node), answer.answers, gate=answer.gate) == record.answers
    except AnswerError:
        return False


def _accept_before_one_answer_per_opening(run: RunContext, answer: Answer) -> AnswerRecord:
    """What a run recorded before this rule did (replay only): keep an answer for a closed gate for its
    next opening; give a second answer to an answered opening the first one's record."""
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

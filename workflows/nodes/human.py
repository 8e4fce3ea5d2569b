"""A human gate: answered by a person, a model, or a model that may defer to a person.

The opening and its answers (one answer per opening, answers in advance, timeouts) are
`workflows.nodes.gates`, shared with delegated agents that ask a person.
"""

from __future__ import annotations

from typing import Any

from dsl import ir
from workflows.contract import messages as M
from workflows.contract.answers import answer_schema
from workflows.inputs import prompt_body, render_text
from workflows.nodes.base import Produced, RunContext, produce
from workflows.nodes.gates import wait_for_answer
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
    instructions = render_text(prompt_body(run.wf, node.instructions), run.data, node_input) if node.instructions else ""
    answers = await wait_for_answer(run, node, branch, node_input, schema, instructions=instructions,
                                    timeout_seconds=node.timeout_seconds, timeout=node.timeout)
    return answers, usage



"""A compute node: output fields from pure expressions, evaluated in the workflow itself.

No activity runs: the expressions were parsed at compile time (the IR holds their trees) and
`dsl.expressions.evaluate` is pure and bounded, so evaluating them here is deterministic and a
replay computes the same values. A compute step is a step like any other (events, a visit, the
budget's iteration count), it just costs nothing. An expression that fails (a type error, a
limit) or an output that breaks the node's `output:` schema fails the node with a message that
names the field, the expression and the value; like any failure it parks until retried.
"""

from __future__ import annotations

from typing import Any

from dsl import ir
from dsl.expressions import ExpressionError, evaluate
from workflows.contract.messages import Usage
from workflows.contract.output_validation import find_violation
from workflows.inputs import DataContext, expression_scope
from workflows.nodes.base import NodeFailed, Produced, RunContext, produce

#: The error type a failed compute node parks with.
COMPUTE_ERROR = "ExpressionError"


def compute_output(node: ir.ComputeNode, wf: ir.Workflow, node_input: dict[str, Any], data: DataContext) -> dict[str, Any]:
    """Evaluate every field in declaration order; a later field does not see earlier ones (as in
    Iterion: each reads the run's data, `input` being what the incoming edge mapped)."""
    scope = expression_scope(data, node_input)
    output: dict[str, Any] = {}
    for f in node.fields:
        try:
            output[f.key] = evaluate(f.expression.tree, scope, f.expression.source)
        except ExpressionError as exc:
            raise NodeFailed(f"compute '{node.id}', field '{f.key}': {exc.message}", COMPUTE_ERROR) from None
    schema = wf.schemas.get(node.output_schema) if node.output_schema else None
    violation = find_violation(schema, output)
    if violation is not None:
        raise NodeFailed(f"compute '{node.id}' output does not match its schema '{node.output_schema}': "
                         f"{violation.describe()} (fix the field's expression or the schema)", COMPUTE_ERROR)
    return output


async def visit(run: RunContext, node: ir.ComputeNode, branch: str, node_input: dict[str, Any]) -> str | None:
    async def compute() -> Produced:
        return compute_output(node, run.wf, node_input, run.data), Usage()

    return await produce(run, node, branch, compute, counted=True)

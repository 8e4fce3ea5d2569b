"""A wait node: a durable timer, costing nothing while it waits and not counted by the budget."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow

from dsl import ir
from workflows.contract.messages import Usage
from workflows.nodes.base import Produced, RunContext, produce


async def visit(run: RunContext, node: ir.WaitNode, branch: str, node_input: dict[str, Any]) -> str | None:
    async def sleep() -> Produced:
        run.set_details(f"**{node.id}** waiting {node.duration}")
        await workflow.sleep(timedelta(seconds=node.duration_seconds), summary=f"{node.id} · wait {node.duration}")
        return {"waited": node.duration}, Usage()

    return await produce(run, node, branch, sleep, counted=False)

"""The iterloop worker: one process hosting the GraphRun interpreter and every activity.

`iterloop worker` runs it against the configured Temporal server; `iterloop run` starts one in the
background when it manages the local dev server itself. Shutdown on SIGINT/SIGTERM is graceful:
the worker stops polling and lets running activities finish (up to a grace period), and anything
cut short is retried by Temporal on the next worker.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from runtime.connect import connect
from runtime.settings import Settings

GRACEFUL_SHUTDOWN = timedelta(seconds=10)

#: Pure data and semantics modules shared by workflow code and activities. Passing them through
#: the sandbox keeps one class identity for the pydantic models on both sides (and saves
#: re-importing them for every workflow run); they do no I/O, so this is safe.
PASSTHROUGH_MODULES = ("dsl", "workflows.messages", "workflows.state", "workflows.scheduler")


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox configuration shared by the worker and the replayer."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES))


def build_worker(client: Client, task_queue: str, *, offline: bool = False,
                 extra_workflows: Sequence[type] = (), artifact_dir: Path | None = None) -> Worker:
    """A worker with the interpreter workflow and all activities registered.

    ``extra_workflows`` lets benchmarks and tests host their own workflows next to GraphRun on
    the same task queue with exactly the same configuration.
    """
    from activities import artifacts
    from activities.llm.activity import configure, llm_turn
    from activities.shell import shell_exec
    from activities.tools.registry import tool_call
    from workflows.graph_run import GraphRun

    configure(offline=offline)
    artifacts.configure(artifact_dir or Settings.from_env().artifact_dir)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[GraphRun, *extra_workflows],
        activities=[llm_turn, shell_exec, tool_call],
        workflow_runner=workflow_runner(),
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
    )


async def run_worker(settings: Settings, *, ready: asyncio.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM."""
    client = await connect(settings)
    worker = build_worker(client, settings.task_queue, offline=settings.offline, artifact_dir=settings.artifact_dir)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with worker:
        if ready is not None:
            ready.set()
        await stop.wait()


def main() -> None:
    asyncio.run(run_worker(Settings.from_env()))


if __name__ == "__main__":
    main()

"""The cluster tier's fixtures and helpers (tests/cluster/, `make test-cluster`): one PostgreSQL and
one Temporal Server per session, set up the way a user sets up their own cluster (`iterloop server
setup --address …`), and `iterloop worker` processes pointed at it through TEMPORAL_ADDRESS.

tests/cluster/conftest.py imports the fixtures; test modules import the helpers. This is not a
conftest.py itself because `conftest` (the module name) is the root one, which tests/runs.py imports.
The default `pytest` run ignores tests/cluster: it needs `make temporal-server` and a few minutes.
Every process started here is stopped when its fixture or test ends; nothing sleeps for a fixed time.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from cli_harness import Cli, cli_env
from temporalio.client import Client

from runtime.connect import DATA_CONVERTER
from runtime.local_cluster import PostgresServer, TemporalCluster
from runtime.worker_fingerprint import offline_task_queue

REPO = Path(__file__).resolve().parents[1]
#: Generous: a worker imports every provider and tool; on a busy 2-core machine that takes a while.
WORKER_START_SECONDS = 180.0


@dataclass
class ClusterTier:
    """The session's PostgreSQL and Temporal Server, and what `iterloop server setup` said about them."""

    pg: PostgresServer
    temporal: TemporalCluster
    setup_report: dict[str, Any]
    root: Path

    @property
    def address(self) -> str:
        return self.temporal.address


@pytest.fixture(scope="session")
def cluster() -> Iterator[ClusterTier]:
    # Not pytest's tmp_path: its parents are mode 0700, and PostgreSQL runs as `nobody` when the
    # tests run as root (runtime/local_cluster.py).
    root = Path(tempfile.mkdtemp(prefix="iterloop-cluster-"))
    root.chmod(0o711)
    pg = PostgresServer.start(root / "postgresql")
    temporal: TemporalCluster | None = None
    try:
        temporal = TemporalCluster.start(pg, root / "temporal")
        setup = subprocess.run(
            [sys.executable, "-m", "cli", "server", "setup", "--address", temporal.address, "--json"],
            cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=120, check=False)
        assert setup.returncode == 0, setup.stdout + setup.stderr
        yield ClusterTier(pg=pg, temporal=temporal, setup_report=json.loads(setup.stdout), root=root)
    finally:
        if temporal is not None:
            temporal.stop()
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest_asyncio.fixture(scope="session")
async def cluster_client(cluster: ClusterTier) -> Client:
    return await Client.connect(cluster.address, data_converter=DATA_CONVERTER)


@pytest.fixture
def task_queue() -> str:
    """An offline queue (`-offline`): the workers are `iterloop worker --offline`, and the CLI and API send
    scripted runs there, so a command acting on a run finds workers whose settings suit it."""
    return offline_task_queue(f"ctq-{uuid.uuid4().hex[:10]}")


def clean_env() -> dict[str, str]:
    """This process's environment without Temporal or iterloop settings the machine may have."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "ITERLOOP_"))}




# -- `iterloop worker` processes ------------------------------------------------------------------


@dataclass
class WorkerPool:
    """`iterloop worker --offline` processes on one task queue of the cluster (stopped at the end)."""

    address: str
    task_queue: str
    log_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, count: int = 1) -> list[subprocess.Popen[bytes]]:
        started = []
        for _ in range(count):
            log = (self.log_dir / f"worker-{len(self.procs) + 1}.log").open("ab")
            env = {**clean_env(), "PYTHONPATH": str(REPO), "TEMPORAL_ADDRESS": self.address,
                   "ITERLOOP_HOME": str(self.log_dir / ".iterloop"), **self.extra_env}
            proc = subprocess.Popen(
                [sys.executable, "-m", "cli", "worker", "--offline", "--task-queue", self.task_queue],
                cwd=self.log_dir, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
            log.close()
            self.procs.append(proc)
            started.append(proc)
        return started

    def alive(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.procs if p.poll() is None]

    def log(self, proc: subprocess.Popen[bytes]) -> str:
        return (self.log_dir / f"worker-{self.procs.index(proc) + 1}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


async def wait_for_pollers(client: Client, task_queue: str, count: int, timeout: float = WORKER_START_SECONDS,
                           *, pids: set[int] | None = None) -> set[str]:
    """Poll the task queue's pollers until ``count`` distinct workers poll it (with ``pids``: until
    those processes are among them; the server lists a stopped worker for a minute); their identities."""
    import asyncio

    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    deadline = time.monotonic() + timeout
    while True:
        identities: set[str] = set()
        for kind in (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY):
            described = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
                namespace=client.namespace, task_queue=TaskQueue(name=task_queue), task_queue_type=kind))
            identities.update(p.identity for p in described.pollers)
        polling_pids = {int(i.partition("@")[0]) for i in identities if i.partition("@")[0].isdigit()}
        if len(identities) >= count and (pids is None or pids <= polling_pids):
            return identities
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(identities)} of {count} workers poll task queue {task_queue!r} "
                                 f"after {timeout:g}s: {sorted(identities)}")
        await asyncio.sleep(0.3)


@pytest.fixture(scope="session")
def shared_workers(cluster: ClusterTier, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerPool]:
    """Two workers for the whole session on a queue of their own (a worker takes a while to start on a
    busy machine): the tests that do not kill workers share them."""
    root = tmp_path_factory.mktemp("shared-workers")
    pool = WorkerPool(cluster.address, offline_task_queue(f"shared-{uuid.uuid4().hex[:8]}"), root,
                      extra_env={"ITERLOOP_ARTIFACT_DIR": str(root / "artifacts")})
    pool.start(2)
    try:
        yield pool
    finally:
        pool.stop_all()


@pytest.fixture
def cluster_cli(cluster: ClusterTier, shared_workers: WorkerPool, tmp_path: Path) -> Cli:
    """`iterloop` as a subprocess against the cluster (TEMPORAL_ADDRESS), on the shared workers' queue."""
    env = cli_env(cluster.address, shared_workers.task_queue, tmp_path / ".iterloop")
    env["ITERLOOP_ARTIFACT_DIR"] = shared_workers.extra_env["ITERLOOP_ARTIFACT_DIR"]
    return Cli(env, tmp_path)


@pytest_asyncio.fixture
async def workers(cluster: ClusterTier, task_queue: str, tmp_path: Path) -> AsyncIterator[WorkerPool]:
    """A pool of worker processes on this test's task queue; the test starts as many as it needs."""
    (tmp_path / "workers").mkdir()
    pool = WorkerPool(cluster.address, task_queue, tmp_path / "workers",
                      extra_env={"ITERLOOP_ARTIFACT_DIR": str(tmp_path / "artifacts")})
    try:
        yield pool
    finally:
        pool.stop_all()

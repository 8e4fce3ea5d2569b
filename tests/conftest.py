"""Shared fixtures: a real Temporal dev server for the session, a fresh worker per test."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from cli_harness import Cli, cli_env

ROOT = Path(__file__).resolve().parent.parent


def temporal_binary() -> str:
    """The dev server binary `make setup` provides (ITERLOOP_TEMPORAL_BIN overrides)."""
    candidates = [os.environ.get("ITERLOOP_TEMPORAL_BIN", ""), str(Path.home() / ".cache/iterloop/bin/temporal"),
                  shutil.which("temporal") or ""]
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return c
    raise RuntimeError("no temporal binary: run `make setup` (builds it with Go) or set ITERLOOP_TEMPORAL_BIN")


@pytest_asyncio.fixture(scope="session")
async def temporal_env() -> AsyncIterator[object]:
    from temporalio.common import SearchAttributeKey
    from temporalio.testing import WorkflowEnvironment

    from runtime.connect import DATA_CONVERTER
    from runtime.devserver import FAST_DISPATCH_ARGS
    from workflows.contract.state import SEARCH_ATTRIBUTES

    makers = {"Keyword": SearchAttributeKey.for_keyword, "KeywordList": SearchAttributeKey.for_keyword_list,
              "Double": SearchAttributeKey.for_float}
    keys = [makers[t](name) for name, t in SEARCH_ATTRIBUTES.items()]
    env = await WorkflowEnvironment.start_local(
        data_converter=DATA_CONVERTER,
        dev_server_existing_path=temporal_binary(),
        search_attributes=keys,
        dev_server_log_level="error",
        dev_server_startup_timeout=timedelta(seconds=60),
        dev_server_extra_args=["--dynamic-config-value", "system.forceSearchAttributesCacheRefreshOnRead=true",
                               *FAST_DISPATCH_ARGS],
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4().hex[:12]}"


# -- workers -------------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def offline_worker(temporal_env: Any, task_queue: str) -> AsyncIterator[None]:
    """An in-process worker (scripted model, no API key) polling this test's task queue, and the
    offline task queue `iterloop run --offline` (and `--script`) starts runs on."""
    from runs import running_worker

    from runtime.worker_fingerprint import offline_task_queue

    async with running_worker(temporal_env.client, task_queue), \
            running_worker(temporal_env.client, offline_task_queue(task_queue)):
        yield


# -- the CLI against the session's dev server (tests/cli_harness.py) ----------------------------


@pytest.fixture
def bare_cli(temporal_env: Any, task_queue: str, tmp_path: Path) -> Cli:
    """The CLI with no worker polling its task queue."""
    address = temporal_env.client.service_client.config.target_host
    return Cli(cli_env(address, task_queue, tmp_path / ".iterloop"), tmp_path)


@pytest_asyncio.fixture
async def cli(offline_worker: None, bare_cli: Cli) -> AsyncIterator[Cli]:
    """The CLI, with an offline worker polling its task queue inside the test process."""
    yield bare_cli

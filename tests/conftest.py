"""Shared fixtures: a real Temporal dev server for the session, a fresh worker per test."""

from __future__ import annotations

import os
from datetime import timedelta
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

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
    from workflows.state import SEARCH_ATTRIBUTES

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

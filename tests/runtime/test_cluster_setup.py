"""`iterloop server setup` against the session's dev server (the cluster tier, tests/cluster/, runs it
against Temporal Server over PostgreSQL): a new namespace gets iterloop's search attributes, an
existing one reports them, `--retention` changes an existing namespace, and bad input is refused."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from cli_harness import Cli

from runtime.cluster_setup import format_retention, parse_retention
from runtime.command_errors import UsageError
from workflows.contract.state import SEARCH_ATTRIBUTES


async def test_a_new_namespace_is_created_with_every_search_attribute_and_a_second_run_finds_them(
        bare_cli: Cli) -> None:
    namespace = f"setup-{uuid.uuid4().hex[:8]}"
    first = await bare_cli("server", "setup", "--namespace", namespace, "--retention", "3d", "--json")
    assert first.code == 0, first.err
    report = first.json()
    assert report["namespace"] == {"name": namespace, "action": "created", "retention_seconds": 3 * 86400}
    assert [(a["name"], a["type"], a["action"]) for a in report["search_attributes"]] == [
        (name, kind, "created") for name, kind in SEARCH_ATTRIBUTES.items()]

    again = await bare_cli("server", "setup", "--namespace", namespace)
    assert again.code == 0, again.err
    assert f"namespace '{namespace}': already existed (closed runs kept 3d)" in again.out
    assert "search attribute IterloopStatus (Keyword): already existed" in again.out
    assert "(0 search attribute(s) created)" in again.out


async def test_retention_given_for_an_existing_namespace_is_updated(bare_cli: Cli, temporal_env: Any) -> None:
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

    namespace = f"setup-{uuid.uuid4().hex[:8]}"
    assert (await bare_cli("server", "setup", "--namespace", namespace)).code == 0
    changed = await bare_cli("server", "setup", "--namespace", namespace, "--retention", "45d", "--json")
    assert changed.code == 0, changed.err
    assert changed.json()["namespace"]["action"] == "updated"
    described = await temporal_env.client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=namespace))
    assert described.config.workflow_execution_retention_ttl.seconds == 45 * 86400


async def test_an_unreachable_address_exits_2_naming_it(bare_cli: Cli) -> None:
    result = await bare_cli("server", "setup", "--address", "127.0.0.1:1", "--json")
    assert result.code == 2
    assert result.json()["error"].startswith("cannot reach Temporal at 127.0.0.1:1")


async def test_a_retention_that_is_not_a_duration_exits_2_before_connecting(bare_cli: Cli) -> None:
    result = await bare_cli("server", "setup", "--address", "127.0.0.1:1", "--retention", "a month")
    assert result.code == 2
    assert "--retention 'a month' is not a duration; write e.g. 30d, 720h or 1d12h" in result.err


@pytest.mark.parametrize(("text", "expected"), [
    ("30d", timedelta(days=30)), ("720h", timedelta(hours=720)), ("1d12h", timedelta(hours=36)),
    ("7", timedelta(days=7)), ("90m", timedelta(minutes=90))])
def test_retention_durations_are_read_in_days_hours_and_minutes(text: str, expected: timedelta) -> None:
    assert parse_retention(text) == expected


def test_a_retention_under_an_hour_is_refused() -> None:
    with pytest.raises(UsageError, match="shorter than an hour"):
        parse_retention("30m")


def test_retentions_are_printed_in_the_largest_units() -> None:
    assert [format_retention(s) for s in (30 * 86400, 5400, 86400 + 3600, None)] == ["30d", "1h30m", "1d1h", "forever"]

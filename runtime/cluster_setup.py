"""`iterloop server setup`: make any Temporal cluster ready for iterloop.

A run records its status, workflow, open gates and cost in search attributes
(`workflows/contract/vocabulary.py` SEARCH_ATTRIBUTES); until they exist in the run's namespace its
workflow tasks fail. The dev server gets them when `iterloop server start` starts it
(`runtime/devserver.py`); a cluster someone else runs needs them registered once per namespace.
This module does that through Temporal's own APIs (the workflow service for the namespace, the
operator service for search attributes), so it works against any cluster the client can reach:
self-hosted, the docker-compose stack, the cluster tier's own server (`runtime/local_cluster.py`).

Idempotent: what exists with the right type is left alone and reported as such; an attribute that
exists with another type stops the command before anything changes, naming it and the fix.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from runtime.command_errors import EXIT_OK, CommandError, TemporalUnavailable, UsageError, short_error
from runtime.settings import Settings
from workflows.contract.state import SEARCH_ATTRIBUTES

if TYPE_CHECKING:
    from temporalio.client import Client

#: A new namespace keeps closed runs this long (`iterloop report` needs their history), as the dev
#: server's namespace does (`runtime.devserver.RETENTION`).
DEFAULT_RETENTION = timedelta(days=30)
#: A namespace just registered is not visible to every frontend at once (namespace cache refresh).
NAMESPACE_VISIBLE_TIMEOUT_SECONDS = 30.0
CONNECT_TIMEOUT_SECONDS = 10.0

Action = Literal["created", "existed", "updated"]

_RETENTION_PART = re.compile(r"(\d+)([dhms])")
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NamespaceSetup(_Model):
    name: str
    action: Action
    retention_seconds: int | None  # None: the namespace keeps closed runs forever


class SearchAttributeSetup(_Model):
    name: str
    type: str  # Keyword, KeywordList, Double, … (the names `temporal operator` takes)
    action: Literal["created", "existed"]


class SetupReport(_Model):
    """What `iterloop server setup` found and did; its `--json` document."""

    address: str
    namespace: NamespaceSetup
    search_attributes: list[SearchAttributeSetup]


class SetupError(CommandError):
    """The cluster cannot be made ready as asked (wrong attribute type, refused retention, no permission)."""


def parse_retention(text: str) -> timedelta:
    """`30d`, `720h`, `1d12h`, `90m`, or a bare number of days; at least one hour.

    Raises `UsageError` naming the option and the accepted forms.
    """
    raw = text.strip().lower()
    if raw.isdigit():
        raw += "d"
    if not raw or _RETENTION_PART.sub("", raw) != "":
        raise UsageError(f"--retention {text!r} is not a duration; write e.g. 30d, 720h or 1d12h")
    seconds = sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _RETENTION_PART.findall(raw))
    if seconds < 3600:
        raise UsageError(f"--retention {text!r} is shorter than an hour; Temporal keeps closed runs at least a day")
    return timedelta(seconds=seconds)


def format_retention(seconds: int | None) -> str:
    """86400*30 -> `30d`, 5400 -> `1h30m`; None -> `forever`."""
    if not seconds:
        return "forever"
    parts, rest = [], seconds
    for unit, size in _UNIT_SECONDS.items():
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _type_name(indexed_value_type: int) -> str:
    """IndexedValueType enum value -> `KeywordList` (INDEXED_VALUE_TYPE_KEYWORD_LIST)."""
    from temporalio.api.enums.v1 import IndexedValueType

    name = IndexedValueType.Name(indexed_value_type).removeprefix("INDEXED_VALUE_TYPE_")
    return "".join(part.capitalize() for part in name.split("_"))


def _type_value(type_name: str) -> int:
    """`KeywordList` -> IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST."""
    from temporalio.api.enums.v1 import IndexedValueType

    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", type_name).upper()
    return IndexedValueType.Value(f"INDEXED_VALUE_TYPE_{snake}")


async def set_up_cluster(settings: Settings, *, retention: timedelta | None = None) -> SetupReport:
    """Create ``settings.namespace`` when missing and register iterloop's search attributes in it.

    ``retention`` (default 30 days) is the new namespace's; given for an existing namespace whose
    retention differs, it is updated. On an existing namespace every attribute's type is checked
    before anything changes, so a mismatch leaves the namespace as it was.
    """
    from temporalio.service import RPCError

    client = await _connect(settings)
    try:
        described = await _describe_namespace(client, settings)
        if described is None:
            namespace = await _create_namespace(client, settings, retention or DEFAULT_RETENTION)
            missing = await _missing_search_attributes(client, settings)
        else:
            missing = await _missing_search_attributes(client, settings)  # a wrong type stops here
            namespace = await _apply_retention(client, settings, described, retention)
        attributes = await _add_search_attributes(client, settings, missing)
    except RPCError as exc:
        raise SetupError(_rpc_message(exc, settings)) from None
    return SetupReport(address=settings.address, namespace=namespace, search_attributes=attributes)


async def _connect(settings: Settings) -> Client:
    from temporalio.client import Client

    from runtime.connect import DATA_CONVERTER

    try:
        return await asyncio.wait_for(
            Client.connect(settings.address, namespace=settings.namespace, data_converter=DATA_CONVERTER),
            timeout=CONNECT_TIMEOUT_SECONDS)
    except Exception as exc:  # noqa: BLE001 - whatever failed (refused, timed out, TLS), it is not reachable
        raise TemporalUnavailable(f"cannot reach Temporal at {settings.address}: {short_error(exc)}; check --address "
                                  "/ TEMPORAL_ADDRESS and that the cluster's frontend is up") from None


def _rpc_message(exc: Exception, settings: Settings) -> str:
    from temporalio.service import RPCError, RPCStatusCode

    hints = {
        RPCStatusCode.PERMISSION_DENIED: "the cluster refuses operator calls from this client; run it with an "
                                         "identity allowed to manage namespaces and search attributes",
        RPCStatusCode.UNAVAILABLE: "the cluster is not ready; try again once its frontend answers",
    }
    hint = hints.get(exc.status, "see the cluster's logs") if isinstance(exc, RPCError) else "see the cluster's logs"
    return f"setting up namespace '{settings.namespace}' at {settings.address} failed: {exc}; {hint}"


async def _describe_namespace(client: Client, settings: Settings) -> Any | None:
    """The namespace's DescribeNamespaceResponse, or None when it does not exist."""
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
    from temporalio.service import RPCError, RPCStatusCode

    try:
        return await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=settings.namespace))
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        return None


async def _create_namespace(client: Client, settings: Settings, retention: timedelta) -> NamespaceSetup:
    from google.protobuf.duration_pb2 import Duration
    from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
    from temporalio.service import RPCError, RPCStatusCode

    seconds = int(retention.total_seconds())
    try:
        await client.workflow_service.register_namespace(RegisterNamespaceRequest(
            namespace=settings.namespace, description="iterloop runs (created by `iterloop server setup`)",
            workflow_execution_retention_period=Duration(seconds=seconds)))
    except RPCError as exc:
        if exc.status != RPCStatusCode.ALREADY_EXISTS:  # someone else created it just now: fine
            raise
    await _wait_until_visible(client, settings)
    return NamespaceSetup(name=settings.namespace, action="created", retention_seconds=seconds)


async def _apply_retention(client: Client, settings: Settings, described: Any,
                           retention: timedelta | None) -> NamespaceSetup:
    """An existing namespace: its retention changed when ``retention`` is given and differs."""
    from google.protobuf.duration_pb2 import Duration
    from temporalio.api.namespace.v1 import NamespaceConfig
    from temporalio.api.workflowservice.v1 import UpdateNamespaceRequest

    current = described.config.workflow_execution_retention_ttl.seconds or None
    if retention is None or current == int(retention.total_seconds()):
        return NamespaceSetup(name=settings.namespace, action="existed", retention_seconds=current)
    seconds = int(retention.total_seconds())
    await client.workflow_service.update_namespace(UpdateNamespaceRequest(
        namespace=settings.namespace,
        # Only the fields set here change; the rest of the namespace's configuration stays.
        config=NamespaceConfig(workflow_execution_retention_ttl=Duration(seconds=seconds))))
    return NamespaceSetup(name=settings.namespace, action="updated", retention_seconds=seconds)


async def _wait_until_visible(client: Client, settings: Settings) -> None:
    """Poll until the operator service knows the new namespace (frontends cache the namespace list)."""
    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
    from temporalio.service import RPCError, RPCStatusCode

    deadline = time.monotonic() + NAMESPACE_VISIBLE_TIMEOUT_SECONDS
    while True:
        try:
            await client.operator_service.list_search_attributes(
                ListSearchAttributesRequest(namespace=settings.namespace))
            return
        except RPCError as exc:
            if exc.status not in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT) \
                    or time.monotonic() >= deadline:
                raise
        await asyncio.sleep(0.5)


async def _missing_search_attributes(client: Client, settings: Settings) -> dict[str, str]:
    """iterloop's attributes the namespace lacks (name → type); `SetupError` when one has another type."""
    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest

    listing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=settings.namespace))
    existing = {name: _type_name(value) for name, value in listing.custom_attributes.items()}
    existing.update({name: _type_name(value) for name, value in listing.system_attributes.items()})
    wrong = [(name, existing[name], wanted) for name, wanted in SEARCH_ATTRIBUTES.items()
             if name in existing and existing[name] != wanted]
    if wrong:
        ns = settings.namespace
        details = "; ".join(f"{name} has type {found}, iterloop needs {wanted}" for name, found, wanted in wrong)
        fixes = " && ".join(f"temporal operator search-attribute remove --namespace {ns} --name {name} --yes"
                            for name, _, _ in wrong)
        raise SetupError(
            f"search attribute type mismatch in namespace '{ns}' at {settings.address}: {details}. Nothing was "
            f"changed. Remove the attribute ({fixes}; workflows that set it lose that filter) and run "
            f"`iterloop server setup` again, or give iterloop a namespace of its own with --namespace")
    return {name: wanted for name, wanted in SEARCH_ATTRIBUTES.items() if name not in existing}


async def _add_search_attributes(client: Client, settings: Settings,
                                 missing: dict[str, str]) -> list[SearchAttributeSetup]:
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest

    if missing:
        await client.operator_service.add_search_attributes(AddSearchAttributesRequest(
            namespace=settings.namespace,
            search_attributes={name: _type_value(wanted) for name, wanted in missing.items()}))  # type: ignore[misc]
    return [SearchAttributeSetup(name=name, type=wanted, action="created" if name in missing else "existed")
            for name, wanted in SEARCH_ATTRIBUTES.items()]


def print_setup(report: SetupReport, *, as_json: bool) -> int:
    """The report as text (one line per thing: created / already existed) or one JSON document."""
    if as_json:
        print(json.dumps({**report.model_dump(mode="json"), "exit_code": EXIT_OK}))
        return EXIT_OK
    ns = report.namespace
    words = {"created": "created", "existed": "already existed", "updated": "retention updated"}
    print(f"Temporal at {report.address}, namespace '{ns.name}': {words[ns.action]} "
          f"(closed runs kept {format_retention(ns.retention_seconds)})")
    for attribute in report.search_attributes:
        print(f"  search attribute {attribute.name} ({attribute.type}): {words[attribute.action]}")
    created = sum(a.action == "created" for a in report.search_attributes)
    print(f"Ready for iterloop ({created} search attribute(s) created). Point the workers and the API at it: "
          f"TEMPORAL_ADDRESS={report.address} TEMPORAL_NAMESPACE={ns.name} iterloop worker")
    return EXIT_OK

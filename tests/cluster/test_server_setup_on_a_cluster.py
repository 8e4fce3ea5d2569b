"""`iterloop server setup --address …` against a real Temporal Server over PostgreSQL: the session's
first call (the fixture) created the namespace and every search attribute; a second call changes
nothing; an attribute registered with another type stops it, naming the attribute and the fix."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

from cluster_harness import REPO, ClusterTier, clean_env
from google.protobuf.duration_pb2 import Duration
from runs import poll
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, RegisterNamespaceRequest
from temporalio.client import Client

from workflows.contract.state import SEARCH_ATTRIBUTES


def _setup(cluster: ClusterTier, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli", "server", "setup", "--address", cluster.address, *args],
                          cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=120, check=False)


def test_setup_on_a_new_cluster_created_the_namespace_and_every_search_attribute(cluster: ClusterTier) -> None:
    report = cluster.setup_report
    assert report["namespace"] == {"name": "default", "action": "created", "retention_seconds": 30 * 86400}
    assert {a["name"]: (a["type"], a["action"]) for a in report["search_attributes"]} == {
        name: (kind, "created") for name, kind in SEARCH_ATTRIBUTES.items()}


def test_setup_again_changes_nothing_and_says_everything_already_existed(cluster: ClusterTier) -> None:
    again = _setup(cluster, "--json")
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["namespace"]["action"] == "existed"
    assert {a["action"] for a in report["search_attributes"]} == {"existed"}
    text = _setup(cluster)
    assert text.returncode == 0 and "namespace 'default': already existed (closed runs kept 30d)" in text.stdout
    assert "search attribute IterloopOpenGates (KeywordList): already existed" in text.stdout


async def test_an_attribute_of_another_type_stops_setup_before_it_changes_anything(
        cluster: ClusterTier, cluster_client: Client) -> None:
    namespace = f"wrong-{uuid.uuid4().hex[:6]}"
    await cluster_client.workflow_service.register_namespace(RegisterNamespaceRequest(
        namespace=namespace, workflow_execution_retention_period=Duration(seconds=86400)))

    async def registered() -> bool:
        try:
            await cluster_client.operator_service.add_search_attributes(AddSearchAttributesRequest(
                namespace=namespace, search_attributes={"IterloopCostUsd": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD}))
            return True
        except Exception:  # noqa: BLE001 - the new namespace is not in every cache yet
            return False

    await poll(registered, "the wrong attribute to be registered", timeout=60, interval=0.5)
    refused = _setup(cluster, "--namespace", namespace, "--retention", "5d")
    assert refused.returncode == 1
    assert (f"search attribute type mismatch in namespace '{namespace}'" in refused.stderr
            and "IterloopCostUsd has type Keyword, iterloop needs Double" in refused.stderr)
    assert f"temporal operator search-attribute remove --namespace {namespace} --name IterloopCostUsd" in refused.stderr
    listing = await cluster_client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace))
    assert "IterloopStatus" not in listing.custom_attributes  # nothing was created
    described = await cluster_client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=namespace))
    assert described.config.workflow_execution_retention_ttl.seconds == 86400  # nor changed

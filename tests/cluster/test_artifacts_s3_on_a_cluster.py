"""Workers that share nothing but the cluster and an S3 bucket (versitygw on loopback): a node's large
output is offloaded to the bucket by one worker, and the next node, on another worker with another
local directory, reads it from there."""

from __future__ import annotations

import hashlib
import json
import signal
from pathlib import Path

from cluster_harness import WorkerPool, wait_for_pollers
from runs import finish, start, wait_for
from s3_harness import S3Server, s3_server  # noqa: F401  (the fixture)
from temporalio.client import Client

from workflows.contract.state import Answer

BODY_CHARS = 100_000  # above the default offload threshold (64 KiB)
HANDOVER = f"""
schema report:
  ok: bool
  body: string
schema decision:
  approved: bool
tool produce:
  command: "python3 -c 'import json; print(json.dumps(dict(ok=True, body={BODY_CHARS} * chr(120))))'"
  output: report
human handover:
  output: decision
tool measure:
  command: "printf %s {{{{outputs.produce.body}}}} | sha256sum | cut -c1-64"
workflow handover:
  entry: produce
  produce -> handover when ok
  produce -> fail
  handover -> measure when approved
  handover -> fail
  measure -> done
"""


def _activity_identities(history: object, node: str) -> set[str]:
    """The identities of the workers that started ``node``'s activities."""
    events = history.events  # type: ignore[attr-defined]
    scheduled = {e.event_id: json.loads(e.activity_task_scheduled_event_attributes.input.payloads[0].data)["node_id"]
                 for e in events if e.HasField("activity_task_scheduled_event_attributes")}
    return {e.activity_task_started_event_attributes.identity for e in events
            if e.HasField("activity_task_started_event_attributes")
            and scheduled[e.activity_task_started_event_attributes.scheduled_event_id] == node}


async def test_a_large_output_offloaded_by_one_worker_is_read_from_the_bucket_by_another(
        cluster_client: Client, workers: WorkerPool, task_queue: str, s3_server: S3Server,  # noqa: F811
        tmp_path: Path) -> None:
    workers.extra_env = {**s3_server.worker_env(prefix="cluster"), "ITERLOOP_ARTIFACT_DIR": str(tmp_path / "a")}
    (first,) = workers.start(1)
    await wait_for_pollers(cluster_client, task_queue, 1, pids={first.pid})
    handle = await start(cluster_client, task_queue, HANDOVER)
    await wait_for(handle, lambda v: v.status == "waiting_human", timeout=120)
    (key,) = s3_server.keys(f"cluster/{handle.id}/")
    assert json.loads(s3_server.read(key)) == {"ok": True, "body": "x" * BODY_CHARS}
    assert not (tmp_path / "a").exists() or not any((tmp_path / "a").rglob("*.json"))  # the bucket, not the disk

    first.send_signal(signal.SIGTERM)
    first.wait(timeout=60)
    workers.extra_env = {**workers.extra_env, "ITERLOOP_ARTIFACT_DIR": str(tmp_path / "b")}
    (second,) = workers.start(1)
    await wait_for_pollers(cluster_client, task_queue, 1, pids={second.pid})
    await handle.execute_update("answer", Answer(gate="handover", answers={"approved": True}, answered_by="ada"))
    result = await finish(handle, timeout=120)

    assert result.status == "finished"
    assert result.outputs["measure"] == {"result": hashlib.sha256(("x" * BODY_CHARS).encode()).hexdigest()}
    assert result.outputs["produce"]["$artifact"]["uri"] == "artifact://" + key.removeprefix("cluster/")
    history = await handle.fetch_history()
    (producer,) = _activity_identities(history, "produce")
    (measurer,) = _activity_identities(history, "measure")
    assert producer.startswith(f"{first.pid}@") and measurer.startswith(f"{second.pid}@")

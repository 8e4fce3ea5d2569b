"""A run whose large output lives in an S3-compatible bucket (versitygw on loopback), end to end.

A real worker process (`python -m worker`, what `iterloop worker` and `iterloop run`'s background
workers run) configured only through its environment (`ITERLOOP_ARTIFACTS_URL`, the endpoint and
the standard AWS variables), the CLI as a subprocess, and the API in-process, all against the
session's dev server.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
from api_harness import WRITE_TOKEN, api_settings_for
from cli_harness import Cli
from runs import poll, start_worker_process, stop_process
from s3_harness import S3Server, s3_server  # noqa: F401  (the fixture)

from activities.shell import PREVIEW_CHARS  # the stdout preview a shell result keeps beside the stub
from api.app import create_app
from runtime.background_workers import live_pollers, stop_background_workers
from runtime.settings import Settings

BODY_CHARS = 100_000
BIG = f"""
schema report:
  ok: bool
  body: string
tool produce:
  command: "python3 -c 'import json; print(json.dumps(dict(ok=True, body={BODY_CHARS} * chr(120))))'"
  output: report
tool measure:
  command: "printf %s {{{{outputs.produce.body}}}} | sha256sum | cut -c1-64"
workflow big:
  entry: produce
  produce -> measure when ok
  produce -> fail
  measure -> done
"""


async def test_a_large_output_goes_to_the_bucket_and_the_next_node_reads_it_from_there(
        temporal_env: Any, task_queue: str, bare_cli: Cli, s3_server: S3Server, tmp_path: Path) -> None:  # noqa: F811
    address = temporal_env.client.service_client.config.target_host
    worker = start_worker_process(address, task_queue, tmp_path / "worker.log", extra_env={
        **s3_server.worker_env(prefix="team/runs"), "ITERLOOP_HOME": str(tmp_path / "worker-home"),
        "ITERLOOP_OFFLINE": ""})  # no model node here; online, like the runs `iterloop run` starts
    run_id = f"s3-{uuid.uuid4().hex[:10]}"
    try:
        # Polling before the run starts, so `iterloop run` uses it instead of starting a worker of its own.
        await poll(lambda: live_pollers(temporal_env.client, "default", task_queue), "the S3 worker to poll", 60)
        ran = await bare_cli("run", bare_cli.write("big.iter", BIG), "--run-id", run_id, "--json", timeout=120)
        assert ran.code == 0, ran.out + ran.err + (tmp_path / "worker.log").read_text(errors="replace")
        assert not (tmp_path / ".iterloop" / "worker.json").exists()  # the S3 worker ran it, no other

        # The whole output is an object in the bucket, under the prefix, named as a local file would be.
        (key,) = s3_server.keys(f"team/runs/{run_id}/")
        assert key.startswith(f"team/runs/{run_id}/produce/")
        stored = json.loads(s3_server.read(key))
        assert stored == {"ok": True, "body": "x" * BODY_CHARS}
        uri = "artifact://" + key.removeprefix("team/runs/")

        # History holds only the stub; the next node read the full value from the bucket, on the worker.
        history = await temporal_env.client.get_workflow_handle(run_id).fetch_history()
        raw = b"".join(event.SerializeToString() for event in history.events)  # payloads as their JSON bytes
        assert uri.encode() in raw and b"x" * (PREVIEW_CHARS + 1) not in raw and len(raw) < 60_000
        expected_digest = hashlib.sha256(("x" * BODY_CHARS).encode()).hexdigest()

        # inspect, report and the API show the stub (its reference) and what the next node computed.
        inspected = await bare_cli("inspect", run_id, "--json")
        assert inspected.code == 0, inspected.err
        outputs = inspected.json()["outputs"]
        assert outputs["produce"]["ok"] is True and "body" not in outputs["produce"]
        assert outputs["produce"]["$artifact"] == {"uri": uri, "bytes": len(s3_server.read(key)), "fields": ["body"]}
        assert outputs["measure"] == {"result": expected_digest}

        report = await bare_cli("report", run_id)
        assert report.code == 0, report.err
        assert uri in report.out and expected_digest in report.out

        app = create_app(api_settings_for(temporal_env.client, task_queue, tmp_path))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver",
                                     headers={"Authorization": f"Bearer {WRITE_TOKEN}"}) as http:
            response = await http.get(f"/api/runs/{run_id}")
        assert response.status_code == 200, response.text
        assert response.json()["outputs"]["produce"]["$artifact"]["uri"] == uri
        assert response.json()["outputs"]["measure"] == {"result": expected_digest}
    finally:
        await stop_process(worker)
        stop_background_workers(Settings.from_env(bare_cli.env), wait=True)  # none, unless the check above failed

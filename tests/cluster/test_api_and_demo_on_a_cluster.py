"""What users run against their own cluster: the REST API (`iterloop api`, token auth) starting a run
and answering its gate, and the growth-loop demo (`iterloop run`, offline, gates skipped) served by
two `iterloop worker` processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
from cli_harness import Cli
from cluster_harness import REPO, ClusterTier, WorkerPool, wait_for_pollers
from runs import free_port, poll
from temporalio.client import Client

TOKEN = "cluster-writer-0123456789abcdef"

GATED = """\
schema plan:
  text: string

schema decision:
  approved: bool
  comment: string

agent planner:
  model: "scripted"
  output: plan

human approval:
  output: decision

workflow gated:
  entry: planner
  planner -> approval with { plan: "{{outputs.planner.text}}" }
  approval -> done when approved
  approval -> fail when not approved
"""


def _start_api(cluster: ClusterTier, task_queue: str, workflows: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "ITERLOOP_"))}
    env.update(PYTHONPATH=str(REPO), ITERLOOP_API_TOKENS=f"ada:{TOKEN}", ITERLOOP_HOME=str(workflows / ".iterloop"))
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "api", "--port", str(port), "--workflows", str(workflows),
             "--address", cluster.address, "--task-queue", task_queue],
            cwd=workflows, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}"


async def test_the_api_starts_a_run_on_the_cluster_and_a_gate_answered_over_rest_finishes_it(
        cluster: ClusterTier, cluster_client: Client, shared_workers: WorkerPool, tmp_path: Path) -> None:
    task_queue = shared_workers.task_queue
    workflows = tmp_path / "workflows"
    workflows.mkdir()
    (workflows / "gated.iter").write_text(GATED, encoding="utf-8")
    api, base = _start_api(cluster, task_queue, workflows, tmp_path / "api.log")
    run_id = f"api-{uuid.uuid4().hex[:8]}"
    try:
        await wait_for_pollers(cluster_client, task_queue, 1)
        async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"},
                                     timeout=60) as http:

            async def health() -> Any:
                try:
                    return (await http.get("/api/health")).status_code == 200
                except httpx.TransportError:
                    assert api.poll() is None, (tmp_path / "api.log").read_text()
                    return False

            await poll(health, "the API to answer", timeout=120, interval=0.3)
            refused = await http.get("/api/runs", headers={"Authorization": "Bearer not-a-token-at-all-xx"})
            assert refused.status_code == 401
            started = await http.post("/api/runs", json={
                "workflow": "gated", "run_id": run_id, "script": {"planner": {"text": "ship v2"}}})
            assert started.status_code == 201, started.text
            assert started.json()["task_queue"] == task_queue

            async def run(status: str) -> Any:
                doc = (await http.get(f"/api/runs/{run_id}")).json()
                return doc if doc.get("status") == status else None

            waiting = await poll(lambda: run("waiting_human"), "the run to wait at its gate", timeout=120)
            assert waiting["open_gates"][0]["gate"] == "approval"
            answered = await http.post(f"/api/runs/{run_id}/gates/approval/answer", json={
                "answers": {"approved": True, "comment": "looks right"}, "answered_by": "grace"})
            assert answered.status_code == 200, answered.text
            done = await poll(lambda: run("finished"), "the run to finish", timeout=120)
    finally:
        api.terminate()
        api.wait(timeout=30)
    assert done["outputs"]["approval"] == {"approved": True, "comment": "looks right"}
    assert done["outputs"]["planner"]["text"] == "ship v2"
    assert [(a["gate"], a["answered_by"]) for a in done["answers"]] == [("approval", "ada (for grace)")]


async def test_the_growth_loop_demo_finishes_on_the_cluster_with_two_workers(
        cluster_client: Client, shared_workers: WorkerPool, cluster_cli: Cli) -> None:
    task_queue = shared_workers.task_queue
    await wait_for_pollers(cluster_client, task_queue, 2)
    run_id = f"demo-{uuid.uuid4().hex[:8]}"
    result = await cluster_cli(
        "run", str(REPO / "examples" / "growth_loop.iter"), "--config", str(REPO / "examples" / "growth_loop.demo.yaml"),
        "--script", str(REPO / "examples" / "growth_loop.script.yaml"), "--skip-gates", "--run-id", run_id, "--json",
        timeout=300)
    assert result.code == 0, result.out[-3000:] + result.err[-3000:]
    summary = json.loads(result.out.splitlines()[-1])
    assert summary["status"] == "finished" and summary["exit_code"] == 0
    inspected = await cluster_cli("inspect", run_id, "--json")
    assert inspected.code == 0, inspected.err
    doc = inspected.json()
    # The demo preset's two cycles, each analysed, planned, approved (skipped gate) and shipped.
    assert doc["nodes"]["analyst"]["visits"] == 2 and len(doc["answers"]) == 2, doc["nodes"]
    assert summary["outputs"]["analyst"]["headline"].startswith("iOS checkout")
    history = await cluster_client.get_workflow_handle(run_id).fetch_history()
    identities = {e.activity_task_started_event_attributes.identity for e in history.events
                  if e.HasField("activity_task_started_event_attributes")}
    polling = await wait_for_pollers(cluster_client, task_queue, 2)
    assert identities and identities <= polling  # served by the two workers on the queue, nobody else

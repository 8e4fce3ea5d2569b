"""The growth loop end to end, on the session's Temporal dev server, through the `iterloop` CLI.

The loop runs offline: the mock connector, the scripted model (examples/growth_loop.script.yaml)
and the local flag store, with the demo preset made deterministic (min_runtime 0s: the first look
decides) and pointed at this test's directory. Numbers are checked against values computed here,
independently, from the mock data: funnel sums straight from the dataset file, the experiment's
test with statsmodels, its delta-method interval and always-valid p-value from their formulas.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cli_harness import Cli
from scipy import stats as scipy_stats

from workflows.contract.state import RunView

REPO = Path(__file__).resolve().parents[2]
LOOP = str(REPO / "examples" / "growth_loop.iter")
SCRIPT = str(REPO / "examples" / "growth_loop.script.yaml")
DEMO_PRESET = REPO / "examples" / "growth_loop.demo.yaml"
DATASET = REPO / "activities" / "connectors" / "data" / "mock_dataset.json"
FIRST_FLAG = "ios-apple-pay-first-v2"  # the script's first plan


def preset(cli: Cli, *, cycles: int = 2, cadence: str = "1s", replans: int = 2) -> str:
    """The demo preset, deterministic and writing into this test's directory."""
    return cli.write("loop.yaml", f"""\
extends: {DEMO_PRESET}
monitoring: {{cadence: {cadence}}}
thresholds: {{min_runtime: 0s}}
flags: {{settings: {{path: {cli.cwd / 'flags.json'}}}}}
learnings_dir: {cli.cwd / 'learnings'}
cycles: {cycles}
replans: {replans}
""")


async def inspect(cli: Cli, run_id: str) -> dict[str, Any]:
    result = await cli("inspect", run_id, "--json")
    assert result.code == 0, result.err
    return result.json()


async def until(cli: Cli, run_id: str, what: str, check: Any, timeout: float = 60) -> dict[str, Any]:
    """Poll `iterloop inspect` until ``check(doc)`` holds; fail with the run's state after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        doc = await inspect(cli, run_id)
        if check(doc):
            return doc
        if doc["status"] in ("finished", "failed", "cancelled", "budget_exceeded", "failed_resumable") \
                or time.monotonic() > deadline:
            raise AssertionError(f"run {run_id}: {what} not reached; status {doc['status']}, "
                                 f"current {doc['current_nodes']}, failures {doc['failures']}")
        await asyncio.sleep(0.2)


def flags(cli: Cli) -> dict[str, Any]:
    path = cli.cwd / "flags.json"
    return json.loads(path.read_text())["flags"] if path.exists() else {}


# -- independent computations from the mock data ------------------------------------------------


def ios_checkout_rates() -> tuple[float, float]:
    """iOS checkout_start → purchase in the 28 days before the last 10, and in the last 10, summed
    straight from the dataset's daily rows (the connector shifts dates, never numbers)."""
    data = json.loads(DATASET.read_text())
    cols = {name: i for i, name in enumerate(data["daily"]["columns"])}
    last = date.fromisoformat(data["calendar"]["end"])
    recent_from = last - timedelta(days=9)
    baseline = (recent_from - timedelta(days=28), recent_from - timedelta(days=1))
    sums = {"baseline": [0, 0], "recent": [0, 0]}
    for row in data["daily"]["rows"]:
        day = date.fromisoformat(row[cols["date"]])
        window = "recent" if day >= recent_from else "baseline" if baseline[0] <= day <= baseline[1] else None
        if window and row[cols["platform"]] == "ios":
            sums[window][0] += row[cols["checkout_start"]]
            sums[window][1] += row[cols["purchase"]]
    return sums["baseline"][1] / sums["baseline"][0], sums["recent"][1] / sums["recent"][0]


async def expected_verdict(flag_key: str, *, alpha: float = 0.05, tuning: float = 5000.0) -> dict[str, float]:
    """The primary metric's lift, interval and p-values for the mock experiment ``flag_key``."""
    from activities.connectors.mock import MockConnector

    results = await MockConnector({}).experiment_results(flag_key, "checkout_conversion")
    control, treatment = results.variant("control"), results.variant("treatment")
    n_c, n_t, x_c, x_t = control.users, treatment.users, control.conversions, treatment.conversions
    p_c, p_t = x_c / n_c, x_t / n_t
    # CUPED (Deng et al. 2013) with the mock's pre-period statistics: theta pooled over both arms'
    # units, means shifted by theta x (pre mean - pooled pre mean), variances Var(Y - theta X).
    arms = [(n_c, p_c, p_c * (1 - p_c), control), (n_t, p_t, p_t * (1 - p_t), treatment)]
    n = n_c + n_t
    sy, sx = sum(k * m for k, m, _, _ in arms), sum(k * a.pre_mean for k, _, _, a in arms)
    sxx = sum((k - 1) * a.pre_sd**2 + k * a.pre_mean**2 for k, _, _, a in arms)
    sxy = sum((k - 1) * a.pre_covariance + k * a.pre_mean * m for k, m, _, a in arms)
    theta = (sxy - sx * sy / n) / (sxx - sx * sx / n)
    adj = [m - theta * (a.pre_mean - sx / n) for _, m, _, a in arms]
    var = [v + theta**2 * a.pre_sd**2 - 2 * theta * a.pre_covariance for _, _, v, a in arms]
    # the primary estimate's own (fixed-horizon) test: a z-test on the adjusted difference
    p_fixed = 2 * scipy_stats.norm.sf(abs(adj[1] - adj[0]) / math.sqrt(var[0] / n_c + var[1] / n_t))
    lift = (adj[1] - adj[0]) / p_c  # relative to the unadjusted control mean
    se_lift = math.sqrt(var[1] / (n_t * p_c**2) + p_t**2 * var[0] / (n_c * p_c**4))  # delta method
    # Always-valid (normal-mixture) p-value and confidence sequence on the lift, Howard et al. 2021.
    a = (n_c + n_t) * (2 * math.log(1 / alpha) + math.log(1 + 2 * math.log(1 / alpha))) / tuning
    z = lift / se_lift
    p_always = min(1.0, math.exp(-(a * z * z / (2 * (a + 1)) - 0.5 * math.log(a + 1))))
    half = math.sqrt(2 * (a + 1) / a * math.log(math.sqrt(a + 1) / alpha)) * se_lift
    return {"lift": lift, "ci_low": lift - half, "ci_high": lift + half, "p_always_valid": p_always,
            "p_fixed": float(p_fixed), "srm_p": sequential_srm_p([n_c, n_t], [0.5, 0.5])}


def sequential_srm_p(counts: list[int], shares: list[float], concentration: float = 10_000.0) -> float:
    """The always-valid SRM p-value the loop reads daily: 1 / the Dirichlet-multinomial Bayes factor
    against the configured split, at most 1 (Lindon & Malek 2022; GrowthBook's concentration)."""
    prior = [concentration * s for s in shares]
    log_bf = math.lgamma(concentration) - math.lgamma(concentration + sum(counts)) + sum(
        math.lgamma(a + k) - math.lgamma(a) - k * math.log(s) for a, k, s in zip(prior, counts, shares, strict=True))
    return min(1.0, math.exp(-log_bf))


# -- the loop ---------------------------------------------------------------------------------------


async def test_the_loop_finds_the_ios_drop_waits_for_approval_then_launches_judges_and_starts_cycle_two(
        cli: Cli) -> None:
    config = preset(cli)
    run = f"loop-{uuid.uuid4().hex[:6]}"
    started = await cli("run", LOOP, "--config", config, "--script", SCRIPT, "--run-id", run, timeout=120)
    assert started.code == 3, started.out + started.err  # no terminal: it stops at the gate
    assert f"run {run} waits for a human answer at gate 'approval'" in started.out
    assert f"iterloop answer {run} --gate approval --answer approved=… --answer reviewer_notes=…" in started.out

    # The Analyst's data: the drop is on iOS, at the rates the dataset holds.
    doc = await inspect(cli, run)
    top = doc["outputs"]["detect_anomalies"]["top"]
    baseline, recent = ios_checkout_rates()
    assert (top["segment"], top["segment_filter"]) == ("platform=ios", {"platform": "ios"})
    assert top["baseline_rate"] == pytest.approx(baseline, abs=1e-6)
    assert top["current_rate"] == pytest.approx(recent, abs=1e-6)
    assert top["relative_change"] == pytest.approx(recent / baseline - 1, abs=1e-6) and top["relative_change"] < -0.2
    assert doc["outputs"]["analyst"]["affected_segment"] == "platform=ios"
    # The gate blocks production: nothing has been created yet.
    assert [g["gate"] for g in doc["open_gates"]] == ["approval"]
    assert "executor" not in doc["outputs"] and flags(cli) == {}

    answered = await cli("answer", run, "--gate", "approval", "--answer", "approved=true",
                         "--answer", "reviewer_notes=go for iOS only", "--by", "ada")
    assert answered.code == 0, answered.err

    # Cycle 2 starts (fresh data, Analyst again) and stops at its own approval gate.
    doc = await until(cli, run, "the second cycle's gate", lambda d: d["status"] == "waiting_human"
                      and d["nodes"]["approval"]["visits"] == 2)
    assert doc["loop_counters"]["cycle"] == 1
    assert doc["nodes"]["get_funnel"]["visits"] == doc["nodes"]["analyst"]["visits"] == 2
    assert [(a["gate"], a["answered_by"], a["answers"]) for a in doc["answers"]] == [
        ("approval", "ada", {"approved": True, "reviewer_notes": "go for iOS only"})]

    # The Executor created the approved flag, disabled, targeting iOS.
    flag = flags(cli)[FIRST_FLAG]
    assert flag["enabled"] is False and flag["targeting"] == {"platform": ["ios"]}
    assert [(v["key"], v["weight"]) for v in flag["variants"]] == [("control", 50), ("treatment", 50)]
    executor = doc["outputs"]["executor"]
    assert (executor["flag_key"], executor["status"], executor["enabled"]) == (FIRST_FLAG, "created_disabled", False)

    # The verdict is the statistics tool's, and its numbers are the mock experiment's.
    verdict = doc["outputs"]["significance"]
    expected = await expected_verdict(FIRST_FLAG)
    assert (verdict["decision"], verdict["conclusive"], verdict["ship"]) == ("SHIP_WINNER", True, True)
    assert verdict["lift"] == pytest.approx(expected["lift"], rel=1e-9)
    assert verdict["lift_ci_low"] == pytest.approx(expected["ci_low"], rel=1e-9)
    assert verdict["lift_ci_high"] == pytest.approx(expected["ci_high"], rel=1e-9)
    assert verdict["p_value"] == pytest.approx(expected["p_always_valid"], rel=1e-6)
    assert verdict["primary"]["p_value"] == pytest.approx(expected["p_fixed"], rel=1e-6)
    assert doc["outputs"]["srm_check"]["p_value"] == pytest.approx(expected["srm_p"], rel=1e-9)
    assert doc["outputs"]["srm_check"]["srm_detected"] is False and doc["outputs"]["guardrail_check"]["passed"]
    assert verdict["headline"].startswith(f"SHIP_WINNER: checkout_conversion {expected['lift']:+.1%} vs control")
    # The Critic explained that verdict; the loop routed on the tool's `conclusive`, not on the Critic.
    look = doc["outputs"]["next_look"]
    assert look["conclusive"] is True and look["verdict"] == verdict["headline"]
    assert doc["outputs"]["critic"]["explanation"]

    # The Synthesizer published the stakeholder summary; the learning doc, published too and kept
    # as a file, quotes the statistics tool's numbers.
    summary = doc["artifacts"]["stakeholder_summary"]
    assert summary["title"] == "Apple Pay first wins back iOS checkout" and summary["summary"].strip()
    learning_doc = doc["artifacts"]["learning_doc"]
    assert learning_doc == doc["outputs"]["write_learning"]
    assert learning_doc["title"] == f"{FIRST_FLAG}: {summary['title']}"
    markdown = learning_doc["markdown"]
    assert markdown.startswith(f"# {learning_doc['title']}\n\n{summary['summary'].strip()}\n")
    assert f"- **{verdict['headline']}**" in markdown and f"- Why: {verdict['reason']}" in markdown
    assert f"checkout_conversion {expected['lift']:+.1%} vs control" in markdown  # computed here, independently
    assert f"- Sample ratio: {doc['outputs']['srm_check']['message']}" in markdown
    learning = Path(learning_doc["path"])
    assert learning.parent == cli.cwd / "learnings"
    assert learning.read_text() == markdown and learning_doc["bytes"] == len(markdown.encode("utf-8"))

    # Approving cycle 2 runs it to the end: the cycle bound (2 cycles) ends the run.
    answered = await cli("answer", run, "--gate", "approval", "--answer", "approved=yes",
                         "--answer", "reviewer_notes=ok")
    assert answered.code == 0, answered.err
    doc = await until(cli, run, "the end of the run", lambda d: d["status"] == "finished")
    assert sorted(flags(cli)) == ["ios-address-prefill", FIRST_FLAG]
    assert all(not f["enabled"] for f in flags(cli).values())
    assert doc["outputs"]["significance"]["lift"] == pytest.approx(
        (await expected_verdict("ios-address-prefill"))["lift"], rel=1e-9)


async def test_a_rejected_plan_goes_back_to_the_planner_and_the_run_ends_without_a_flag(cli: Cli) -> None:
    config = preset(cli, cycles=1, replans=1)
    run = f"loop-{uuid.uuid4().hex[:6]}"
    assert (await cli("run", LOOP, "--config", config, "--script", SCRIPT, "--run-id", run, timeout=120)).code == 3
    rejected = await cli("answer", run, "--gate", "approval", "--answer", "approved=false",
                         "--answer", "reviewer_notes=target the address step instead")
    assert rejected.code == 0, rejected.err
    doc = await until(cli, run, "the revised plan at the gate", lambda d: d["status"] == "waiting_human"
                      and d["nodes"]["approval"]["visits"] == 2)
    assert doc["nodes"]["planner"]["visits"] == 2 and doc["loop_counters"]["replan"] == 1
    assert doc["outputs"]["planner"]["flag_key"] == "ios-address-prefill"  # the Planner's revision
    assert "ios-address-prefill" in doc["open_gates"][0]["instructions"]

    # Rejected again with no replans left: the run ends cleanly, nothing touched production.
    again = await cli("answer", run, "--gate", "approval", "--answer", "approved=no",
                      "--answer", "reviewer_notes=not this quarter")
    assert again.code == 0, again.err
    doc = await until(cli, run, "the end of the run", lambda d: d["status"] == "finished")
    assert doc["reason"] == "reached done"
    assert "executor" not in doc["outputs"] and flags(cli) == {}


async def test_skip_gates_approves_runs_the_cycle_and_prints_the_verdict(cli: Cli) -> None:
    config = preset(cli, cycles=1)
    run = f"loop-{uuid.uuid4().hex[:6]}"
    result = await cli("run", LOOP, "--config", config, "--script", SCRIPT, "--skip-gates", "--run-id", run,
                       timeout=120)
    assert result.code == 0, result.out + result.err
    assert "gate approval: answered automatically with {'approved': True, 'reviewer_notes': " \
           "'auto-approved (--skip-gates)'}" in result.err
    expected = await expected_verdict(FIRST_FLAG)
    lines = result.out.splitlines()
    assert f"Flag      {FIRST_FLAG} · created_disabled (provider local, enabled: false)" in lines
    verdict = next(line for line in lines if line.startswith("Verdict   "))
    assert f"SHIP_WINNER: checkout_conversion {expected['lift']:+.1%} vs control, 95% always-valid CI " \
           f"{expected['ci_low']:+.1%} to {expected['ci_high']:+.1%}, p = {expected['p_always_valid']:.2g}" in verdict
    learning = next(line for line in lines if line.startswith("Learning  "))
    assert learning.endswith(".md (artifact learning_doc)") and str(cli.cwd / "learnings") in learning
    assert lines[-1].startswith("Web UI    http") and lines[-1].endswith(f"/workflows/{run}")
    doc = await inspect(cli, run)
    assert [(a["gate"], a["answered_by"], a["answers"]["reviewer_notes"]) for a in doc["answers"]] == [
        ("approval", "auto (preset)", "auto-approved (--skip-gates)")]
    assert flags(cli)[FIRST_FLAG]["enabled"] is False
    # After the fact, the report has the same summary block (the preset's `summary:` is kept in the
    # run's input) and every node's final output; inspect has the block too.
    block = [line for line in lines if line.split(" ", 1)[0] in ("Anomaly", "Plan", "Flag", "Verdict", "Why",
                                                                  "Summary", "Learning")]
    assert len(block) >= 5 and verdict in block
    report = await cli("report", run)
    assert report.code == 0, report.err
    result = report.out.split("## Result\n\n```text\n", 1)[1].split("```", 1)[0].splitlines()
    assert result == block
    outputs = report.out.split("## Outputs", 1)[1].split("## Timeline", 1)[0]
    assert "### analyst" in outputs and "iOS checkout conversion collapsed" in outputs
    assert doc["summary"] == block
    assert (await cli("report", run, "--json")).json()["summary"] == block


async def test_stop_after_analyst_ends_the_run_with_the_analysts_output(cli: Cli) -> None:
    config = preset(cli)
    result = await cli("run", LOOP, "--config", config, "--script", SCRIPT, "--stop-after", "analyst", "--json",
                       timeout=120)
    assert result.code == 0, result.out + result.err
    summary = json.loads(result.out.splitlines()[-1])
    assert summary["status"] == "finished"
    assert summary["reason"] == "stopped after 'analyst' as asked (--stop-after)"
    assert summary["outputs"]["analyst"]["headline"] == "iOS checkout conversion collapsed in the last ten days"
    assert summary["outputs"]["detect_anomalies"]["top"]["segment"] == "platform=ios"
    assert "planner" not in summary["outputs"] and "approval" not in summary["outputs"]


async def test_a_preset_error_stops_the_run_before_it_starts(cli: Cli) -> None:
    bad = cli.write("bad.yaml", "monitoring:\n  cadense: 1d\n")
    result = await cli("run", LOOP, "--config", bad, "--script", SCRIPT)
    assert result.code == 2
    assert "bad.yaml:2:3: unknown key 'monitoring.cadense'; did you mean 'cadence'?" in result.err
    assert "started run" not in result.out


# -- durability ----------------------------------------------------------------------------------


def start_worker(address: str, task_queue: str, log: Path) -> subprocess.Popen[bytes]:
    """`python -m worker` in its own process, offline, on the session's server and this test's queue."""
    env = {**os.environ, "TEMPORAL_ADDRESS": address, "TEMPORAL_NAMESPACE": "default",
           "ITERLOOP_TASK_QUEUE": task_queue, "ITERLOOP_OFFLINE": "1"}
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "worker"], cwd=REPO, env=env, stdout=out,
                                stderr=subprocess.STDOUT)


async def stop(proc: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGTERM) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            await asyncio.to_thread(proc.wait, 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait, 10)
    return proc.returncode


async def eventually(check: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.1)


async def test_a_worker_restart_during_the_monitoring_wait_does_not_stop_the_loop(
        temporal_env: Any, task_queue: str, bare_cli: Cli, tmp_path: Path) -> None:
    from runtime.background_workers import live_pollers
    from runtime.worker_fingerprint import offline_task_queue
    from workflows.contract.state import RunResult

    client = temporal_env.client
    address = client.service_client.config.target_host
    config = preset(bare_cli, cycles=1, cadence="5s")
    run = f"loop-{uuid.uuid4().hex[:6]}"
    offline_queue = offline_task_queue(task_queue)  # where `iterloop run --script` starts the run
    first = start_worker(address, offline_queue, tmp_path / "worker1.log")
    second = None
    try:
        async def first_polls() -> bool:
            return any(p.startswith(f"{first.pid}@") for p in await live_pollers(client, "default", offline_queue))

        await eventually(first_polls, "the first worker to poll")
        started = await bare_cli("run", LOOP, "--config", config, "--script", SCRIPT, "--skip-gates",
                                 "--run-id", run, "--detach", "--json")
        assert started.code == 0, started.err
        assert started.json()["worker"]["state"] == "polling"  # our worker, not a background one
        handle = client.get_workflow_handle(run, result_type=RunResult)

        async def in_wait() -> bool:
            view = await handle.query("state", result_type=RunView)
            return view.current_nodes == ["monitor"] and view.nodes["monitor"].status == "running"

        await eventually(in_wait, "the run to sit in its monitoring wait")
        assert await stop(first, signal.SIGKILL) == -signal.SIGKILL
        killed_at = datetime.now(timezone.utc)
        second = start_worker(address, offline_queue, tmp_path / "worker2.log")
        result = await asyncio.wait_for(handle.result(), 90)
        view = await handle.query("state", result_type=RunView)
        history = await handle.fetch_history()
    finally:
        for proc in (first, second):
            if proc is not None:
                await stop(proc)
    assert result.status == "finished" and result.reason == "reached done"
    [fired] = [e for e in history.events if e.HasField("timer_fired_event_attributes")]
    assert fired.event_time.ToDatetime(timezone.utc) > killed_at  # the worker died during the wait
    # The timer outlived the worker; the cycle then went on: results, checks, verdict, write-up.
    assert view.nodes["monitor"].visits == 1 and view.nodes["executor"].visits == 1
    assert result.outputs["significance"]["decision"] == "SHIP_WINNER"
    assert view.artifacts["stakeholder_summary"]["title"] == "Apple Pay first wins back iOS checkout"
    assert flags(bare_cli)[FIRST_FLAG]["enabled"] is False

"""Many parked runs on ONE worker process: memory, start and resume throughput, gate latency.

    python benchmarks/bench_scale.py [--quick | --runs N] [--json] [--stock-server] [--address HOST:PORT]
    make bench-scale BENCH_SCALE_ARGS=--quick

A growth loop spends nearly all its life parked: at the approval gate, then asleep between looks.
What a worker can hold is therefore "how many parked runs, at what memory", and what it must
absorb is "many runs resuming at once" (every weekly loop's timer firing on Monday 09:00). This
benchmark parks N runs of a growth-loop-shaped workflow on one worker process and measures them
against a hand-written Temporal workflow of the same shape (same activities, the same update, the
same timer):

    analyst (tool) -> approval (human gate) -> executor (tool) -> monitor (wait) -> results (tool) -> done

Each side gets its own, fresh worker process (`worker.build_worker(..., offline=True)` with the
hand-written workflow added, Temporal's default worker settings), started by this script, whose
RSS is read from /proc. Per side:

1. start: N runs are started (50 start calls in flight); each runs `analyst` and parks at the
   gate. Start throughput = N / (first WorkflowExecutionStarted -> last run parked), from history.
   Worker RSS idle (after one warm-up run) and with N runs parked at the gate.
2. answer: the gates are answered at a steady rate (`--answer-rate`, default 20/s, open loop: one
   answer every 1/rate s whatever the earlier ones are doing). Gate latency = the `answer` update
   sent (client clock) -> the executor's ActivityTaskStarted (server clock, same host), p50/p99
   over every answer. Each run then sleeps at `monitor`; the timers are set so that they all fire
   at the SAME instant (run k, answered at slot k, waits H - k/rate, see `timer_ms`). Worker RSS
   with N runs parked at the timer.
3. resume: the timers fire together; resume throughput = N / (first TimerFired -> last run
   completed), from history. The spread of the TimerFired events is printed as a check.

Memory per parked run = (RSS with N parked - RSS idle) / N. Targets (issue 17): memory per parked
run <= 1.2x hand-written, start and resume throughput >= 0.8x hand-written.

The worker's workflow cache (`max_cached_workflows`, Temporal's default 1000) decides what a parked
run costs: a cached run keeps its workflow object (and, for GraphRun, its sandbox and run state) in
memory; an evicted one costs nothing until its next task, which then replays its whole history. The
benchmark uses the defaults and prints the setting; with N above it, memory stops growing and
resumes pay a replay.

The dev server (in memory, the fast-dispatch settings of bench_runtime.py unless --stock-server) is
started by the script; `--address` uses a running server instead (e.g. a cluster), which must have
the iterloop search attributes. Quick mode (200 runs) takes about 2 minutes, the full 1,000 runs
about 6 on 2 cores (the answers alone take N / rate seconds a side). Exit status 0 whatever the
figures.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":  # not when the workflow sandbox re-imports this file
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.contract import messages as M
    from workflows.contract.state import Answer, AnswerRecord

HAND_WRITTEN_TYPE = "bench.HandWrittenParked"
PAYLOAD = "hello"
GATE = "approval"

# GraphRun's options for a `call:` tool node with default RunOptions (as bench_runtime.py's baseline).
_TIMEOUT = timedelta(seconds=600)
_RETRY_ERRORS = [M.ERR_BAD_REQUEST, M.ERR_SCHEMA, M.ERR_COMMAND_FAILED, M.ERR_POLICY, M.ERR_UNKNOWN_TOOL, M.ERR_SCRIPT,
                 "PayloadSizeError"]


@workflow.defn(name=HAND_WRITTEN_TYPE, sandboxed=True)
class HandWrittenParked:
    """The baseline: the parked shape written by hand (three echo calls, an `answer` update, a timer)."""

    def __init__(self) -> None:
        self.answer_given: Answer | None = None

    async def call(self, node: str, arguments: dict[str, Any]) -> dict[str, Any]:
        from temporalio.common import RetryPolicy

        req = M.ToolCallRequest(run_id=workflow.info().workflow_id, node_id=node, tool="echo", arguments=arguments)
        res = await workflow.execute_activity(
            M.TOOL_CALL, req, result_type=M.ToolCallResult, start_to_close_timeout=_TIMEOUT,
            retry_policy=RetryPolicy(maximum_attempts=3, initial_interval=timedelta(seconds=1),
                                     maximum_interval=timedelta(seconds=30),
                                     non_retryable_error_types=_RETRY_ERRORS),
            summary=f"{node} · call echo")
        return res.output

    @workflow.run
    async def run(self, wait_ms: int) -> dict[str, Any]:
        await self.call("analyst", {"payload": PAYLOAD})
        await workflow.wait_condition(lambda: self.answer_given is not None)
        assert self.answer_given is not None
        await self.call("executor", {"approved": self.answer_given.answers.get("approved")})
        await workflow.sleep(timedelta(milliseconds=wait_ms), summary="monitor · wait")
        return await self.call("results", {"payload": PAYLOAD})

    @workflow.update(name="answer")
    async def answer(self, answer: Answer) -> AnswerRecord:
        self.answer_given = answer
        return AnswerRecord(gate=answer.gate, interaction_id="", answers=answer.answers,
                            answered_by=answer.answered_by, answered_at=workflow.now().isoformat())


# Everything below runs outside the sandbox only.

TARGET_MEMORY_RATIO = 1.2
TARGET_THROUGHPUT_RATIO = 0.8
START_CONCURRENCY = 50
POLL_CONCURRENCY = 50

PARKED_SOURCE = """\
schema decision:
  approved: bool
vars:
  payload: string = "hello"
tool analyst:
  call: echo
human approval:
  output: decision
tool executor:
  call: echo
wait monitor:
  duration: "1s"
tool results:
  call: echo
workflow parked:
  entry: analyst
  analyst -> approval
  approval -> executor with { approved: "{{outputs.approval.approved}}" }
  executor -> monitor
  monitor -> results with { payload: "{{vars.payload}}" }
  results -> done
"""


class BenchError(Exception):
    """The benchmark could not measure (a worker that does not start, a run that ends too early): the
    message says what happened; `main` prints it and exits 1. Figures that miss a target are no error."""


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def timer_ms(slot: int, runs: int, rate: float, margin_s: float) -> int:
    """How long run ``slot`` sleeps so that every run's timer fires at the same instant.

    Run k is answered at A + k/rate (A: when answering starts) and enters its wait right after
    (plus the executor's round trip), so waiting H - k/rate, with H = runs/rate + margin, makes
    every timer fire at A + H, whenever A turns out to be."""
    horizon = runs / rate + margin_s
    return max(1, round((horizon - slot / rate) * 1000))


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1), nearest rank: p99 of 200 values is the 198th smallest."""
    import math

    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


# -- the worker process ----------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    """Resident set size of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/{pid}/status has no VmRSS line")


def default_cache_size() -> int:
    """Temporal's default `max_cached_workflows`, which `worker.build_worker` keeps."""
    import inspect

    from temporalio.worker import Worker

    return int(inspect.signature(Worker.__init__).parameters["max_cached_workflows"].default)


async def serve_worker(address: str, namespace: str, task_queue: str) -> None:
    """The worker process: the production worker plus the baselines, until SIGTERM. Prints `ready`."""
    import asyncio
    import signal

    import bench_runtime
    from temporalio.client import Client

    from runtime.connect import DATA_CONVERTER
    from worker import build_worker

    # bench_runtime.py's baselines too (the chain and fan-out ones bench_cluster.py and bench_peer.py run).
    baselines = [getattr(bench_runtime, name) for name in ("HandWrittenChain", "HandWrittenLocalChain",
                                                            "HandWrittenFanOut") if hasattr(bench_runtime, name)]
    client = await Client.connect(address, namespace=namespace, data_converter=DATA_CONVERTER)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with build_worker(client, task_queue, offline=True, extra_workflows=[HandWrittenParked, *baselines]):
        print("ready", flush=True)
        await stop.wait()


class WorkerProcess:
    """A worker in its own process (so its memory is its own), started and stopped by the benchmark."""

    started = 0  # numbers the log files of this process's workers

    def __init__(self, address: str, namespace: str, task_queue: str, log_dir: Path) -> None:
        self.args = [sys.executable, str(Path(__file__).resolve()), "--serve-worker", "--address", address,
                     "--namespace", namespace, "--task-queue", task_queue]
        WorkerProcess.started += 1
        self.log_path = log_dir / f"worker-{WorkerProcess.started}-{task_queue}.log"
        self.cwd = log_dir
        self.proc: Any = None

    async def start(self, timeout: float = 180.0) -> WorkerProcess:
        """Start it and wait for its `ready` (importing everything takes a while on a busy machine)."""
        import asyncio

        log = self.log_path.open("wb")
        self.proc = await asyncio.create_subprocess_exec(*self.args, stdout=asyncio.subprocess.PIPE, stderr=log,
                                                         cwd=self.cwd)
        log.close()
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        except TimeoutError:
            line = b""
        if line.strip() != b"ready":
            await self.stop()
            raise BenchError(f"the benchmark's worker did not say `ready` within {timeout:.0f} s; its log "
                             f"({self.log_path}):\n{self.log_path.read_text()[-3000:] or '(empty)'}")
        return self

    @property
    def pid(self) -> int:
        return int(self.proc.pid)

    def rss_mb(self) -> float:
        return rss_mb(self.pid)

    async def stop(self) -> None:
        import asyncio

        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.terminate()
        try:
            await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()


async def start_workers(address: str, namespace: str, task_queue: str, log_dir: Path, count: int) -> list[WorkerProcess]:
    """``count`` worker processes on one task queue, started together; all stopped if one fails."""
    import asyncio

    procs = [WorkerProcess(address, namespace, task_queue, log_dir) for _ in range(count)]
    results = await asyncio.gather(*(p.start() for p in procs), return_exceptions=True)
    problems = [r for r in results if isinstance(r, BaseException)]
    if problems:
        await asyncio.gather(*(p.stop() for p in procs))
        raise problems[0]
    return procs


# -- histories ---------------------------------------------------------------------------------


class RunTimes:
    """What the benchmark reads from one run's history (server timestamps, seconds since the epoch)."""

    def __init__(self, events: list[Any]) -> None:
        from temporalio.api.enums.v1 import EventType

        self.events = len(events)
        self.bytes = sum(e.ByteSize() for e in events)
        names = [EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in events]
        at = [e.event_time.ToDatetime().timestamp() for e in events]

        def first(name: str, after: int = 0) -> int | None:
            return next((i for i in range(after, len(names)) if names[i] == name), None)

        self.started = at[0]
        done = first("ACTIVITY_TASK_COMPLETED")
        parked = first("WORKFLOW_TASK_COMPLETED", done) if done is not None else None
        self.parked_at_gate = at[parked] if parked is not None else None
        accepted = first("WORKFLOW_EXECUTION_UPDATE_ACCEPTED")
        executor = first("ACTIVITY_TASK_STARTED", accepted) if accepted is not None else None
        self.executor_started = at[executor] if executor is not None else None
        fired = first("TIMER_FIRED")
        self.timer_fired = at[fired] if fired is not None else None
        completed = first("WORKFLOW_EXECUTION_COMPLETED")
        self.completed = at[completed] if completed is not None else None


async def gather_limited(coros: list[Any], limit: int) -> list[Any]:
    import asyncio

    gate = asyncio.Semaphore(limit)

    async def one(c: Any) -> Any:
        async with gate:
            return await c

    return await asyncio.gather(*(one(c) for c in coros))


async def run_times(handles: list[Any]) -> list[RunTimes]:
    async def one(h: Any) -> RunTimes:
        return RunTimes(list((await h.fetch_history()).events))

    return await gather_limited([one(h) for h in handles], POLL_CONCURRENCY)


async def wait_parked(handles: list[Any], what: str, timeout: float, *, ended_ok: bool = False) -> bool:
    """Until every run waits with nothing to do: running, no workflow task and no activity pending.

    Asks the server (DescribeWorkflowExecution), never the worker, one run at a time in start order
    (runs are served roughly in that order): while the runs are still busy it asks about one run
    every 0.2 s, so the polling adds next to nothing to the load being measured. False when a run
    has already ended and ``ended_ok`` (its timer fired before all were parked), else an error."""
    import asyncio
    import time

    from temporalio.client import WorkflowExecutionStatus

    deadline = time.monotonic() + timeout
    for h in handles:
        while True:
            d = await h.describe()
            if d.status != WorkflowExecutionStatus.RUNNING:
                if ended_ok and d.status == WorkflowExecutionStatus.COMPLETED:
                    return False
                raise BenchError(f"run {h.id} ended ({d.status.name}) while it should wait {what}")
            raw = d.raw_description
            if not raw.pending_activities and not raw.HasField("pending_workflow_task"):
                break
            if time.monotonic() > deadline:
                raise BenchError(f"run {h.id} (and maybe others) not parked {what} after {timeout:.0f} s")
            await asyncio.sleep(0.2)
    return True


# -- one side ------------------------------------------------------------------------------------


class Side:
    """How to start and answer runs of one engine: the interpreter or the hand-written workflow."""

    def __init__(self, name: str, client: Any, task_queue: str) -> None:
        self.name = name
        self.client = client
        self.task_queue = task_queue
        self.wf: Any = None
        if name == "iterloop":
            import dsl

            checked = dsl.check_source(PARKED_SOURCE)
            if not checked.ok:
                raise BenchError("\n".join(d.render() for d in checked.diagnostics))
            self.wf = checked.workflow

    async def start(self, run_id: str, wait_ms: int) -> Any:
        if self.name == "iterloop":
            from workflows.contract.state import WORKFLOW_TYPE, RunInput, RunOptions, RunResult

            wf = self.wf.model_copy(deep=True)
            monitor = wf.nodes["monitor"]
            monitor.duration, monitor.duration_seconds = f"{wait_ms}ms", wait_ms / 1000
            # Ordinary activities, as the growth loop's connector and flag calls are (`echo` alone
            # would run as a local activity, and the comparison would not be of the same shape).
            inp = RunInput(workflow=wf, source="parked.iter", options=RunOptions(local_tools=False))
            return await self.client.start_workflow(WORKFLOW_TYPE, inp,
                                                    id=run_id, task_queue=self.task_queue, result_type=RunResult)
        return await self.client.start_workflow(HAND_WRITTEN_TYPE, wait_ms, id=run_id, task_queue=self.task_queue,
                                                result_type=dict)

    async def answer(self, handle: Any) -> float:
        """Send the gate's answer; returns when it was sent (epoch seconds, client clock)."""
        import time

        from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError

        update_id = f"answer-{handle.id}"
        sent = time.time()
        try:
            await handle.execute_update("answer", Answer(gate=GATE, answers={"approved": True}, answered_by="bench"),
                                        id=update_id, result_type=AnswerRecord)
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            # A worker far behind (answers faster than it can serve): the update stays admitted; wait on.
            await handle.get_update_handle(update_id, result_type=AnswerRecord).result()
        return sent

    async def check_result(self, handle: Any) -> None:
        result = await handle.result()
        if self.name == "iterloop" and result.status != "finished":
            raise BenchError(f"run {handle.id} ended {result.status}: {result.reason}")


async def measure_side(side: Side, worker: WorkerProcess, runs: int, rate: float, margin_s: float,
                       settle_s: float) -> dict[str, Any]:
    import asyncio
    import time
    import uuid

    prefix = f"scale-{side.name}-{uuid.uuid4().hex[:6]}"
    # Warm-up: one whole run (first sandbox imports, first polls), so "idle" is a worker that has worked.
    warm = await side.start(f"{prefix}-warm", 1)
    await wait_parked([warm], "at the gate (warm-up)", 60)
    await side.answer(warm)
    await side.check_result(warm)
    await asyncio.sleep(settle_s)
    rss_idle = worker.rss_mb()

    # 1. start N runs; each runs `analyst` and parks at the gate.
    t0 = time.perf_counter()
    handles = await gather_limited(
        [side.start(f"{prefix}-{k}", timer_ms(k, runs, rate, margin_s)) for k in range(runs)], START_CONCURRENCY)
    start_calls_s = time.perf_counter() - t0
    await wait_parked(handles, "at the gate", 120 + runs * 0.5)
    await asyncio.sleep(settle_s)
    rss_gate = worker.rss_mb()

    # 2. answer the gates at a steady rate, open loop; then they all sleep until the same instant.
    answer_start = time.monotonic()
    tasks = []
    for k, h in enumerate(handles):
        delay = answer_start + k / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(side.answer(h)))
    sent = await asyncio.gather(*tasks)
    fire_in = answer_start + runs / rate + margin_s - time.monotonic()
    all_parked = await wait_parked(handles, "at the timer", max(5.0, fire_in), ended_ok=True)
    fire_in = answer_start + runs / rate + margin_s - time.monotonic()
    # Not measured when the timers fire first (answers slower than --answer-rate: raise --margin).
    rss_timer = worker.rss_mb() if all_parked and fire_in > 0.2 else None

    # 3. the timers fire together; wait for every run to end.
    await gather_limited([side.check_result(h) for h in handles], POLL_CONCURRENCY)
    rss_end = worker.rss_mb()
    times = await run_times(handles)

    missing = [h.id for h, t in zip(handles, times, strict=True)
               if None in (t.parked_at_gate, t.executor_started, t.timer_fired, t.completed)]
    if missing:
        raise BenchError(f"{len(missing)} runs lack an expected history event (e.g. {missing[0]})")
    latencies = [(t.executor_started - s) * 1000 for t, s in zip(times, sent, strict=True)]  # type: ignore[operator]
    first_start = min(t.started for t in times)
    last_parked = max(t.parked_at_gate for t in times)  # type: ignore[type-var]
    fired = [t.timer_fired for t in times]
    last_done = max(t.completed for t in times)  # type: ignore[type-var]
    return {
        "runs": runs,
        "rss_idle_mb": rss_idle, "rss_parked_gate_mb": rss_gate, "rss_parked_timer_mb": rss_timer,
        "rss_end_mb": rss_end,
        "kb_per_parked_run_gate": (rss_gate - rss_idle) * 1024 / runs,
        "kb_per_parked_run_timer": None if rss_timer is None else (rss_timer - rss_idle) * 1024 / runs,
        "start_calls_s": start_calls_s,
        "starts_per_s": runs / (last_parked - first_start),
        "resumes_per_s": runs / (last_done - min(fired)),  # type: ignore[type-var]
        "timer_fire_spread_ms": (max(fired) - min(fired)) * 1000,  # type: ignore[type-var]
        "gate_p50_ms": percentile(latencies, 0.5), "gate_p99_ms": percentile(latencies, 0.99),
        "gate_max_ms": max(latencies), "answers": len(latencies), "answer_rate": rate,
        "history_events": statistics_median([t.events for t in times]),
        "history_bytes": statistics_median([t.bytes for t in times]),
    }


def statistics_median(values: list[int]) -> float:
    import statistics

    return float(statistics.median(values))


# -- the whole benchmark ---------------------------------------------------------------------------


async def connect_or_start(address: str | None, namespace: str, stock: bool) -> tuple[Any, Any, str]:
    """(client, env to shut down or None, address): a running server, or an in-memory dev server."""
    if address:
        from temporalio.client import Client

        from runtime.connect import DATA_CONVERTER

        return await Client.connect(address, namespace=namespace, data_converter=DATA_CONVERTER), None, address
    from bench_runtime import start_server

    env = await start_server(stock)
    return env.client, env, env.client.service_client.config.target_host


async def run(runs: int, rate: float, margin_s: float, address: str | None, namespace: str,
              stock: bool, settle_s: float = 1.0) -> dict[str, Any]:
    import asyncio
    import tempfile
    import time
    import uuid

    t_start = time.perf_counter()
    client, env, target = await connect_or_start(address, namespace, stock)
    server = (f"server {target}" if address else
              f"dev server {'(stock settings)' if stock else '(fast dispatch)'} up in {time.perf_counter() - t_start:.1f} s")
    print(server, flush=True)
    out: dict[str, Any] = {"runs": runs, "answer_rate": rate, "max_cached_workflows": default_cache_size(),
                           "server": target if address else ("dev-stock" if stock else "dev-fast")}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
            # Both workers start together (their start-up overlaps); the second idles while the first is measured.
            sides = {name: f"scale-{uuid.uuid4().hex[:8]}" for name in ("iterloop", "hand-written")}
            workers = [WorkerProcess(target, namespace, tq, Path(tmp)) for tq in sides.values()]
            try:
                started = await asyncio.gather(*(w.start() for w in workers), return_exceptions=True)
                for problem in (r for r in started if isinstance(r, BaseException)):
                    raise problem
                for (name, task_queue), worker in zip(sides.items(), workers, strict=True):
                    print(f"{name}: {runs} runs on one worker process (pid {worker.pid}) ...", flush=True)
                    out[name] = await measure_side(Side(name, client, task_queue), worker, runs, rate, margin_s,
                                                   settle_s=settle_s)
                    await worker.stop()
            finally:
                await asyncio.gather(*(w.stop() for w in workers))
    finally:
        if env is not None:
            await env.shutdown()
    out["total_s"] = time.perf_counter() - t_start
    return out


def checks(fig: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    g, h = fig["iterloop"], fig["hand-written"]
    rows = []
    for state in ("gate", "timer"):
        gk, hk = g[f"kb_per_parked_run_{state}"], h[f"kb_per_parked_run_{state}"]
        if gk is None or hk is None:
            rows.append((f"memory per run parked at the {state}", "not measured (timers fired first)",
                         f"<= x{TARGET_MEMORY_RATIO}", False))
            continue
        ratio = gk / hk if hk > 0 else float("inf")
        rows.append((f"memory per run parked at the {state}", f"{gk:.1f} / {hk:.1f} KB = x{ratio:.2f}",
                     f"<= x{TARGET_MEMORY_RATIO}", ratio <= TARGET_MEMORY_RATIO))
    for key, label in (("starts_per_s", "start throughput (start -> parked)"),
                       ("resumes_per_s", "resume throughput (timers fire together)")):
        ratio = g[key] / h[key]
        rows.append((label, f"{g[key]:.0f} / {h[key]:.0f} runs/s = x{ratio:.2f}", f">= x{TARGET_THROUGHPUT_RATIO}",
                     ratio >= TARGET_THROUGHPUT_RATIO))
    return rows


def report(fig: dict[str, Any]) -> None:
    g, h = fig["iterloop"], fig["hand-written"]
    print()
    print(f"{fig['runs']} parked runs per side, one worker process each (max_cached_workflows "
          f"{fig['max_cached_workflows']}, Temporal's default), server: {fig['server']}")
    print(f"{'figure (iterloop / hand-written)':<44} {'measured':<34} {'target':<8}")
    print("-" * 94)
    rows = checks(fig)
    for name, value, target, ok in rows:
        print(f"{name:<44} {value:<34} {target:<8} {verdict(ok)}")
    print("-" * 94)
    print(f"{sum(ok for *_, ok in rows)}/{len(rows)} targets met")
    print()
    for name, s in (("iterloop", g), ("hand-written", h)):
        timer = "-" if s["rss_parked_timer_mb"] is None else f"{s['rss_parked_timer_mb']:.0f}"
        print(f"{name}: worker RSS {s['rss_idle_mb']:.0f} MB idle, {s['rss_parked_gate_mb']:.0f} MB with "
              f"{s['runs']} at the gate, {timer} MB at the timer, {s['rss_end_mb']:.0f} MB after; "
              f"gate answer -> next activity p50 {s['gate_p50_ms']:.0f} ms, p99 {s['gate_p99_ms']:.0f} ms "
              f"(max {s['gate_max_ms']:.0f}, {s['answers']} answers at {s['answer_rate']:g}/s); timers fired "
              f"within {s['timer_fire_spread_ms']:.0f} ms; history {s['history_events']:.0f} events, "
              f"{s['history_bytes'] / 1024:.1f} KB per run; {s['start_calls_s']:.1f} s of start calls")
    print(f"total {fig['total_s']:.0f} s")


def main() -> None:
    import argparse
    import asyncio
    import json
    import os

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 runs per side instead of 1,000 (about a minute)")
    parser.add_argument("--runs", type=int, help="parked runs per side (default 1000, --quick 200)")
    parser.add_argument("--answer-rate", type=float, default=20.0,
                        help="gate answers per second, open loop (default 20: below what one worker serves on 2 "
                        "cores, so the latency is that of a worker keeping up)")
    parser.add_argument("--margin", type=float, default=5.0,
                        help="seconds between the last answer and the timers firing (default 5)")
    parser.add_argument("--settle", type=float, default=1.0,
                        help="seconds the worker is left alone before its RSS is read (default 1)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON document")
    parser.add_argument("--stock-server", action="store_true", help="keep the dev server's dispatch defaults")
    parser.add_argument("--address", help="use this running Temporal server instead of starting a dev server")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--serve-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--task-queue", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_worker:
        asyncio.run(serve_worker(args.address, args.namespace, args.task_queue))
        return
    runs = args.runs or (200 if args.quick else 1000)
    if runs < 1 or args.answer_rate <= 0 or args.margin <= 0 or args.settle < 0:
        parser.error("--runs, --answer-rate and --margin must be positive, --settle not negative")
    if not args.json:
        print(f"iterloop scale benchmark: {runs} parked runs, Python {sys.version.split()[0]} on {sys.platform}")
    if args.json:  # progress lines go to stderr so stdout is one JSON document
        sys.stdout = sys.stderr
    try:
        fig = asyncio.run(run(runs, args.answer_rate, args.margin, args.address, args.namespace, args.stock_server,
                              args.settle))
    except BenchError as exc:
        sys.stdout = sys.__stdout__
        print(f"bench_scale: {exc}", file=sys.stderr)
        sys.stderr.flush()
        os._exit(1)
    if args.json:
        sys.stdout = sys.__stdout__
        fig["checks"] = [{"figure": n, "measured": v, "target": t, "met": ok} for n, v, t, ok in checks(fig)]
        print(json.dumps(fig, indent=2))
    else:
        report(fig)
    # As bench_runtime.py: skip interpreter teardown (temporalio/sdk-python#300).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()

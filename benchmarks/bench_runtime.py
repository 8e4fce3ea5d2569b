"""How much the GraphRun interpreter costs on a real Temporal dev server, against its own targets.

    python benchmarks/bench_runtime.py [--quick] [--stock-server]      (or: make bench)

It starts a headless, in-memory dev server itself (WorkflowEnvironment.start_local, with the
iterloop search attributes, as the tests do) and one offline worker: the activities, sandbox
runner and settings of `worker.build_worker(..., offline=True)`, plus a hand-written baseline
workflow defined here.

Four figures with targets, and one without:
1. per-node overhead: a linear chain of N `call: echo` tool nodes interpreted by GraphRun, against
   a hand-written `@workflow.defn` calling the same activity (`iterloop.tool_call`) N times with
   the same requests, timeouts and retry policy. Wall time per run (start -> result, client side),
   median of several runs, interleaved; reported per node. Target: ratio <= 1.15. Also shown: the
   worker time per node (workflow-task started -> completed, from history), the cost of the
   workflow code itself.
2. history events per node (all events of the run / N), interpreter against hand-written.
   Target: ratio <= 1.15.
3. a 50-branch fan-out/join (fan_out_all router -> 50 `call: echo` nodes -> wait_all join ->
   done): wall time per run (median) and branches/s. Target <= 3 s.
4. gate answer -> next activity: a run waiting at a human gate followed by a `call: echo` node;
   from sending the `answer` update (client clock) to the next ActivityTaskStarted event (server
   clock; same host). Median of several runs. Target <= 200 ms. Broken down into send -> update
   accepted, accepted -> activity scheduled, scheduled -> started.
5. LLM nodes on the scripted model (no target; shows what the model layer adds around a provider
   call): per one-turn agent in a chain of N, and per round of a tool loop (one model turn that
   asks for a tool, then the tool call), each a separate activity.

By default the dev server runs with two dispatch settings changed (FAST_DISPATCH below), because
its defaults add server-side waits that dwarf and mask the workflow's own cost; `--stock-server`
keeps the defaults. `--quick` runs fewer repetitions (about 20 s). Exit status is 0 whatever the
figures: this is a measurement, not a test.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":  # not when the workflow sandbox re-imports this file
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import contextlib
import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.contract import messages as M

from runtime.devserver import FAST_DISPATCH_ARGS

HAND_WRITTEN_TYPE = "bench.HandWrittenChain"
PAYLOAD = "hello"

# GraphRun's activity options for a `call:` tool node with default RunOptions (graph_run.py
# `activity`, nodes/tool.py), so both sides ask Temporal for exactly the same thing.
_TIMEOUT = timedelta(seconds=600)
_RETRY = RetryPolicy(maximum_attempts=3, initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30),
                     non_retryable_error_types=[M.ERR_BAD_REQUEST, M.ERR_SCHEMA, M.ERR_COMMAND_FAILED, M.ERR_POLICY,
                                                M.ERR_UNKNOWN_TOOL, M.ERR_SCRIPT, "PayloadSizeError"])


@workflow.defn(name=HAND_WRITTEN_TYPE, sandboxed=True)
class HandWrittenChain:
    """The baseline: N sequential `iterloop.tool_call` echo calls, output passed to the next call."""

    @workflow.run
    async def run(self, nodes: int) -> dict[str, Any]:
        run_id = workflow.info().workflow_id
        arguments: dict[str, Any] = {"payload": PAYLOAD}
        for i in range(nodes):
            req = M.ToolCallRequest(run_id=run_id, node_id=f"t{i}", tool="echo", arguments=arguments)
            res = await workflow.execute_activity(
                M.TOOL_CALL, req, result_type=M.ToolCallResult, start_to_close_timeout=_TIMEOUT,
                retry_policy=_RETRY, summary=f"t{i} · call echo")
            arguments = {"payload": res.output["payload"]}
        return arguments


# Everything below runs outside the sandbox only.

TARGET_NODE_RATIO = 1.15
TARGET_EVENT_RATIO = 1.15
TARGET_FAN_OUT_S = 3.0
TARGET_GATE_MS = 200.0

CHAIN_NODES = 20
TOOL_TURNS = 10  # model turns that call a tool, then one that answers
FAN_BRANCHES = 50


def chain_source(n: int) -> str:
    tools = "".join(f"tool t{i}:\n  call: echo\n" for i in range(n))
    edges = "".join(f'  t{i} -> t{i + 1} with {{ payload: "{{{{outputs.t{i}.payload}}}}" }}\n' for i in range(n - 1))
    return (f'vars:\n  payload: string = "{PAYLOAD}"\n{tools}workflow chain:\n  entry: t0\n{edges}'
            f"  t{n - 1} -> done\n")


def fan_source(n: int) -> str:
    tools = "".join(f"tool b{i}:\n  call: echo\n" for i in range(n))
    edges = "".join(f"  split -> b{i}\n" for i in range(n)) + "".join(f"  b{i} -> merge\n" for i in range(n))
    return (f"router split:\n  mode: fan_out_all\n{tools}join merge:\n  strategy: wait_all\n"
            f"workflow fan:\n  entry: split\n{edges}  merge -> done\n")


GATE_SOURCE = """\
schema decision:
  approved: bool
human approval:
  output: decision
tool next:
  call: echo
workflow gate:
  entry: approval
  approval -> next with { approved: "{{outputs.approval.approved}}" }
  next -> done
"""


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


class Bench:
    def __init__(self, env: Any, task_queue: str) -> None:
        import dsl

        self.env = env
        self.client = env.client
        self.task_queue = task_queue
        self.dsl = dsl

    def compile(self, src: str) -> Any:
        result = self.dsl.check_source(src)
        if not result.ok:
            rendered = "\n".join(d.render() for d in result.diagnostics)
            raise SystemExit(f"benchmark workflow does not compile:\n{rendered}")
        return result.workflow

    async def start_graph(self, wf: Any, prefix: str, script: dict[str, Any] | None = None) -> Any:
        import uuid

        from workflows.contract.state import WORKFLOW_TYPE, RunInput, RunOptions, RunResult

        return await self.client.start_workflow(
            WORKFLOW_TYPE, RunInput(workflow=wf, source=f"{prefix}.iter", options=RunOptions(script=script)),
            id=f"{prefix}-{uuid.uuid4().hex[:10]}", task_queue=self.task_queue, result_type=RunResult)

    async def timed_graph(self, wf: Any, prefix: str, script: dict[str, Any] | None = None) -> tuple[float, Any]:
        import time

        t0 = time.perf_counter()
        handle = await self.start_graph(wf, prefix, script)
        result = await handle.result()
        elapsed = time.perf_counter() - t0
        if result.status != "finished":
            raise SystemExit(f"{prefix} run ended {result.status}: {result.reason}")
        return elapsed, handle

    async def timed_hand(self, nodes: int) -> tuple[float, Any]:
        import time
        import uuid

        t0 = time.perf_counter()
        handle = await self.client.start_workflow(
            HAND_WRITTEN_TYPE, nodes, id=f"hand-{uuid.uuid4().hex[:10]}", task_queue=self.task_queue,
            result_type=dict)
        result = await handle.result()
        elapsed = time.perf_counter() - t0
        assert result == {"payload": PAYLOAD}, result
        return elapsed, handle


async def history_of(handle: Any) -> tuple[list[str], float]:
    """The run's event types, and the time its workflow tasks spent on the worker (ms).

    Worker time = sum of WORKFLOW_TASK_STARTED -> WORKFLOW_TASK_COMPLETED (server timestamps):
    what the workflow code (interpreter or hand-written) costs, whatever the server's dispatch.
    """
    from temporalio.api.enums.v1 import EventType

    names: list[str] = []
    worker_ms = 0.0
    started = None
    for e in (await handle.fetch_history()).events:
        name = EventType.Name(e.event_type).removeprefix("EVENT_TYPE_")
        names.append(name)
        if name == "WORKFLOW_TASK_STARTED":
            started = e.event_time.ToDatetime()
        elif name == "WORKFLOW_TASK_COMPLETED" and started is not None:
            worker_ms += (e.event_time.ToDatetime() - started).total_seconds() * 1000
            started = None
    return names, worker_ms


async def bench_chain(b: Bench, reps: int) -> dict[str, Any]:
    import statistics
    from collections import Counter

    wf = b.compile(chain_source(CHAIN_NODES))
    # Warm-up: first sandbox imports, first task-queue polls.
    await b.timed_graph(wf, "chain")
    await b.timed_hand(CHAIN_NODES)
    runs: dict[str, list[tuple[float, Any]]] = {"g": [], "h": []}
    for i in range(reps):  # interleaved, alternating who goes first, so drift hits both alike
        pair = [("g", lambda: b.timed_graph(wf, "chain")), ("h", lambda: b.timed_hand(CHAIN_NODES))]
        for who, fn in (pair if i % 2 == 0 else pair[::-1]):
            runs[who].append(await fn())
    out: dict[str, Any] = {}
    for who, done in runs.items():
        times = [t for t, _ in done]
        histories = [await history_of(h) for _, h in done]
        out[who] = {"run_s": statistics.median(times), "min_s": min(times),
                    "ms_node": statistics.median(times) * 1000 / CHAIN_NODES,
                    "worker_ms_node": statistics.median(ms for _, ms in histories) / CHAIN_NODES,
                    "events": histories[-1][0]}
    extra = Counter(out["g"]["events"])
    extra.subtract(Counter(out["h"]["events"]))
    out["ratio"] = out["g"]["ms_node"] / out["h"]["ms_node"]
    out["extra_events"] = {k: v for k, v in sorted(extra.items()) if v}
    return out


def agent_chain_source(n: int) -> str:
    agents = "".join(f"agent a{i}:\n  model: \"scripted\"\n" for i in range(n))
    edges = "".join(f"  a{i} -> a{i + 1}\n" for i in range(n - 1))
    return f"{agents}workflow agents:\n  entry: a0\n{edges}  a{n - 1} -> done\n"


TOOL_LOOP_SOURCE = """
agent looper:
  model: "scripted"
  tools: [echo]
  tool_max_steps: 50
workflow looping:
  entry: looper
  looper -> done
"""


async def bench_llm(b: Bench, reps: int) -> dict[str, Any]:
    """LLM nodes on the scripted model: a chain of one-turn agents, and one agent's tool loop."""
    import statistics

    chain = b.compile(agent_chain_source(CHAIN_NODES))
    loop = b.compile(TOOL_LOOP_SOURCE)
    turns = [{"tool_calls": [{"name": "echo", "arguments": {"step": k}}]} for k in range(TOOL_TURNS)]
    script = {"looper": {"turns": [*turns, {"text": "done"}]}}
    await b.timed_graph(chain, "agents", {})  # warm-up
    chain_times = [(await b.timed_graph(chain, "agents", {}))[0] for _ in range(reps)]
    loop_times: list[float] = []
    handle = None
    for _ in range(reps):
        elapsed, handle = await b.timed_graph(loop, "toolloop", script)
        loop_times.append(elapsed)
    events, _ = await history_of(handle)
    return {"agent_ms": statistics.median(chain_times) * 1000 / CHAIN_NODES,
            "round_ms": statistics.median(loop_times) * 1000 / TOOL_TURNS,
            "round_events": (len(events) - 10) / TOOL_TURNS}


async def bench_fan(b: Bench, reps: int) -> dict[str, Any]:
    import statistics

    wf = b.compile(fan_source(FAN_BRANCHES))
    times: list[float] = []
    handle = None
    for _ in range(reps):
        elapsed, handle = await b.timed_graph(wf, "fan")
        times.append(elapsed)
    outputs = (await handle.result()).outputs
    assert all(f"b{i}" in outputs for i in range(FAN_BRANCHES)), sorted(outputs)
    events, worker_ms = await history_of(handle)
    med = statistics.median(times)
    return {"total_s": med, "min_s": min(times), "per_s": FAN_BRANCHES / med, "events": len(events),
            "worker_ms": worker_ms, "tasks": events.count("WORKFLOW_TASK_COMPLETED")}


async def bench_gate(b: Bench, reps: int) -> dict[str, Any]:
    import asyncio
    import statistics
    import time
    from datetime import datetime, timezone

    from temporalio.api.enums.v1 import EventType

    from workflows.contract.state import Answer, RunResult, RunView

    wf = b.compile(GATE_SOURCE)
    rows: list[dict[str, float]] = []
    for _ in range(reps + 1):  # the first is a warm-up
        started = await b.start_graph(wf, "gate")
        handle = b.client.get_workflow_handle(started.id, result_type=RunResult)
        deadline = time.monotonic() + 30
        while (await handle.query("state", result_type=RunView)).status != "waiting_human":
            if time.monotonic() > deadline:
                raise SystemExit("gate run never reached waiting_human")
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)  # let the worker go idle: the answer arrives at a quiet run
        sent = datetime.now(timezone.utc)
        t0 = time.perf_counter()
        await handle.execute_update("answer", Answer(gate="approval", answers={"approved": True}, answered_by="bench"))
        update_rtt = time.perf_counter() - t0
        result = await handle.result()
        if result.status != "finished" or result.outputs.get("next") != {"approved": True}:
            raise SystemExit(f"gate run ended {result.status}: {result.reason} {result.outputs}")
        times: dict[str, datetime] = {}
        for e in (await handle.fetch_history()).events:
            name = EventType.Name(e.event_type)
            key = {"EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED": "accepted",
                   "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED": "scheduled",
                   "EVENT_TYPE_ACTIVITY_TASK_STARTED": "started"}.get(name)
            if key and key not in times:
                times[key] = e.event_time.ToDatetime(tzinfo=timezone.utc)
        if len(times) != 3:
            raise SystemExit(f"gate run history lacks events: {sorted(times)}")
        ms = lambda a, z: (z - a).total_seconds() * 1000  # noqa: E731
        rows.append({"total": ms(sent, times["started"]), "to_accepted": ms(sent, times["accepted"]),
                     "to_scheduled": ms(times["accepted"], times["scheduled"]),
                     "to_started": ms(times["scheduled"], times["started"]), "update_rtt": update_rtt * 1000})
    rows = rows[1:]
    return {k: statistics.median(r[k] for r in rows) for k in rows[0]} | {"max_total": max(r["total"] for r in rows)}


def bench_worker(client: Any, task_queue: str) -> Any:
    """The production worker (worker.build_worker) with the baseline workflow added."""
    from worker import build_worker

    return build_worker(client, task_queue, offline=True, extra_workflows=[HandWrittenChain])


#: Two dev-server defaults put server-side waits into the figures that are not the workflow's:
#: - a history shard's transfer queue (which hands new activity and workflow tasks to matching)
#:   is read at most 20 times a second (history.transferProcessorMaxPollRPS); in a sequential run
#:   nearly every hop then waits for the next 50 ms slot, so a node costs ~100 ms whatever the
#:   workflow code does, and that rounding hides the code's own cost;
#: - with the default 4 task-queue partitions, now and then an activity task waits ~2 s before a
#:   poller gets it (about one 20-node run in 15 here; never seen with one partition).
#: The benchmark changes both unless --stock-server is given.
FAST_DISPATCH = list(FAST_DISPATCH_ARGS)


@contextlib.contextmanager
def stdout_to_devnull() -> Iterator[None]:
    """Keep the dev server's start-up banner (it inherits fd 1) out of the report."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


async def start_server(stock: bool) -> Any:
    from temporalio.common import SearchAttributeKey
    from temporalio.testing import WorkflowEnvironment

    from runtime.connect import DATA_CONVERTER
    from runtime.devserver import find_temporal_binary
    from runtime.settings import Settings
    from workflows.contract.state import SEARCH_ATTRIBUTES

    makers = {"Keyword": SearchAttributeKey.for_keyword, "KeywordList": SearchAttributeKey.for_keyword_list,
              "Double": SearchAttributeKey.for_float}
    with stdout_to_devnull():
        return await WorkflowEnvironment.start_local(  # headless (ui=False) and in memory (no database file)
            data_converter=DATA_CONVERTER,
            dev_server_existing_path=str(find_temporal_binary(Settings.from_env())),
            search_attributes=[makers[t](name) for name, t in SEARCH_ATTRIBUTES.items()],
            dev_server_log_level="error",
            dev_server_startup_timeout=timedelta(seconds=60),
            dev_server_extra_args=["--dynamic-config-value", "system.forceSearchAttributesCacheRefreshOnRead=true",
                                   *([] if stock else FAST_DISPATCH)],
        )


async def run(quick: bool, stock: bool) -> None:
    import time
    import uuid

    reps = {"chain": 11, "fan": 3, "gate": 7} if quick else {"chain": 40, "fan": 10, "gate": 25}
    if stock:
        reps["chain"] = max(3, reps["chain"] // 3)
    t_start = time.perf_counter()
    env = await start_server(stock)
    settings = "stock settings" if stock else "fast dispatch: transfer-queue poll limit lifted, 1 task-queue partition"
    print(f"dev server up in {time.perf_counter() - t_start:.1f} s (headless, in memory, {settings})")
    try:
        task_queue = f"bench-{uuid.uuid4().hex[:8]}"
        b = Bench(env, task_queue)
        async with bench_worker(env.client, task_queue):
            print(f"1+2. chain of {CHAIN_NODES} echo nodes, {reps['chain']} runs each (+1 warm-up) ...", flush=True)
            chain = await bench_chain(b, reps["chain"])
            print(f"3.   fan-out of {FAN_BRANCHES} branches, {reps['fan']} runs ...", flush=True)
            fan = await bench_fan(b, reps["fan"])
            print(f"4.   gate answer -> next activity, {reps['gate']} runs (+1 warm-up) ...", flush=True)
            gate = await bench_gate(b, reps["gate"])
            print(f"5.   LLM nodes on the scripted model, {reps['fan']} runs each (+1 warm-up) ...", flush=True)
            llm = await bench_llm(b, reps["fan"])
    finally:
        await env.shutdown()
    report(chain, fan, gate, reps)
    print(f"LLM nodes (scripted model, median of {reps['fan']}): {llm['agent_ms']:.1f} ms per one-turn agent "
          f"(vs {chain['g']['ms_node']:.1f} ms per echo tool node: the turn also stores its conversation); "
          f"{llm['round_ms']:.1f} ms and {llm['round_events']:.1f} history events per tool-loop round "
          f"(a model turn + a tool call, {TOOL_TURNS} rounds)")
    print(f"total {time.perf_counter() - t_start:.0f} s")


def report(chain: dict[str, Any], fan: dict[str, Any], gate: dict[str, Any], reps: dict[str, int]) -> None:
    n = CHAIN_NODES
    g, h = chain["g"], chain["h"]
    g_ev, h_ev = len(g["events"]) / n, len(h["events"]) / n
    checks = [
        ("per-node time, interpreter / hand-written",
         f"{g['ms_node']:.1f} / {h['ms_node']:.1f} ms = x{chain['ratio']:.2f}",
         f"<= x{TARGET_NODE_RATIO:.2f}", chain["ratio"] <= TARGET_NODE_RATIO),
        ("history events per node, interp. / hand-written",
         f"{g_ev:.2f} / {h_ev:.2f} = x{g_ev / h_ev:.2f}",
         f"<= x{TARGET_EVENT_RATIO:.2f}", g_ev / h_ev <= TARGET_EVENT_RATIO),
        (f"fan-out/join of {FAN_BRANCHES} branches",
         f"{fan['total_s']:.2f} s ({fan['per_s']:.0f} branches/s)", f"<= {TARGET_FAN_OUT_S:.1f} s",
         fan["total_s"] <= TARGET_FAN_OUT_S),
        ("gate answer -> next activity started", f"{gate['total']:.0f} ms", f"<= {TARGET_GATE_MS:.0f} ms",
         gate["total"] <= TARGET_GATE_MS),
    ]
    print()
    print(f"{'figure':<48} {'measured':<32} {'target':<10}")
    print("-" * 97)
    for name, value, target, ok in checks:
        print(f"{name:<48} {value:<32} {target:<10} {verdict(ok)}")
    print("-" * 97)
    print(f"{sum(ok for *_, ok in checks)}/{len(checks)} targets met")
    print()
    print(f"chain ({n} nodes, median of {reps['chain']}): run {g['run_s'] * 1000:.0f} ms interpreter "
          f"(fastest {g['min_s'] * 1000:.0f}), {h['run_s'] * 1000:.0f} ms hand-written "
          f"(fastest {h['min_s'] * 1000:.0f}); overhead {g['ms_node'] - h['ms_node']:+.1f} ms/node")
    print(f"  worker time (workflow tasks) per node: {g['worker_ms_node']:.1f} ms interpreter, "
          f"{h['worker_ms_node']:.1f} ms hand-written (x{g['worker_ms_node'] / h['worker_ms_node']:.2f})")
    print(f"  history: {len(g['events'])} events interpreter, {len(h['events'])} hand-written; "
          f"extra in the interpreter: {chain['extra_events'] or 'none'}")
    print(f"fan-out (median of {reps['fan']}): fastest {fan['min_s']:.2f} s, {fan['events']} history events, "
          f"worker time {fan['worker_ms']:.0f} ms in {fan['tasks']} workflow tasks")
    print(f"gate (median of {reps['gate']}): send -> update accepted {gate['to_accepted']:.0f} ms, accepted -> "
          f"activity scheduled {gate['to_scheduled']:.0f} ms, scheduled -> started {gate['to_started']:.0f} ms; "
          f"update round trip {gate['update_rtt']:.0f} ms; worst total {gate['max_total']:.0f} ms")


def main() -> None:
    import argparse
    import asyncio

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (about 20 s)")
    parser.add_argument("--stock-server", action="store_true",
                        help="keep the dev server's dispatch defaults (20 transfer-queue reads/s, 4 partitions), "
                        "see FAST_DISPATCH")
    args = parser.parse_args()
    print(f"iterloop runtime benchmark{' (quick)' if args.quick else ''}, Python {sys.version.split()[0]} "
          f"on {sys.platform}")
    asyncio.run(run(args.quick, args.stock_server))
    # Skip interpreter teardown: the Temporal bridge's Rust threads can abort it now and then
    # ("PyGILState_Release: thread state ... must be current", temporalio/sdk-python#300).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()

"""How much the GraphRun interpreter costs on a real Temporal dev server, against its own targets.

    python benchmarks/bench_runtime.py [--quick] [--stock-server]      (or: make bench)

It starts a headless, in-memory dev server itself (WorkflowEnvironment.start_local, with the
iterloop search attributes, as the tests do) and two offline workers, one of which never asks for
eager activity execution: the activities, sandbox runner and settings of
`worker.build_worker(..., offline=True)`, plus the hand-written baseline workflows defined here.

Figures 1-4 are the interpreter with every tool call an ordinary activity (RunOptions
local_tools=False), comparable with the figures measured before the fast path:
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
6. the fast path (`echo` as a local activity, no server round trip per node; measured with a
   payload holding `=`, which keeps echo off the inline path, see LOCAL_PAYLOAD):
   the chain per node and the fan-out, against hand-written workflows whose calls are local
   activities (the best hand-written shape). Target: ratio <= 1.15, fan-out <= 3 s.
7. what costs a server round trip: every contender side by side (interpreter fast / ordinary,
   hand-written local / ordinary, ordinary without eager dispatch), chain per node and fan-out with
   its workflow tasks (no target; docs/runtime.md quotes it).
8. inline pure tools (the default: `echo` evaluated inside the workflow, no activity at all): the
   chain per node and the fan-out against the LangGraph + PostgresSaver figures issue 17 quotes.

By default the dev server runs with its dispatch settings changed and eager activity execution
allowed (FAST_DISPATCH below), because its defaults add server-side waits that dwarf and mask the
workflow's own cost; `--stock-server` keeps the defaults. `--quick` runs fewer repetitions (about a
minute). Exit status is 0 whatever the
figures: this is a measurement, not a test.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":  # not when the workflow sandbox re-imports this file
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncio
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
HAND_WRITTEN_LOCAL_TYPE = "bench.HandWrittenLocalChain"
HAND_WRITTEN_FAN_TYPE = "bench.HandWrittenFanOut"
PAYLOAD = "hello"
#: What the local-activity rows send instead: echo and sum_values are evaluated inside the workflow
#: (workflows/contract/inline_tools.py) unless a string holds text the activity's redaction might
#: change, such as `=`; this harmless `=` keeps the "fast path (local activities)" rows measuring
#: local activities now that "inline pure tools" is the default.
LOCAL_PAYLOAD = "hello=1"

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


# GraphRun's options for a local tool (graph_run.py `_LOCAL_BUDGET`): the best hand-written shape
# of the same chain, for the interpreter's fast path to be measured against.
_LOCAL_BUDGET = timedelta(seconds=5)


@workflow.defn(name=HAND_WRITTEN_LOCAL_TYPE, sandboxed=True)
class HandWrittenLocalChain:
    """The same chain with each call a local activity: no server round trip per call."""

    @workflow.run
    async def run(self, nodes: int) -> dict[str, Any]:
        run_id = workflow.info().workflow_id
        arguments: dict[str, Any] = {"payload": PAYLOAD}
        for i in range(nodes):
            req = M.ToolCallRequest(run_id=run_id, node_id=f"t{i}", tool="echo", arguments=arguments)
            res = await workflow.execute_local_activity(
                M.TOOL_CALL, req, result_type=M.ToolCallResult, schedule_to_close_timeout=_LOCAL_BUDGET,
                retry_policy=_RETRY, summary=f"t{i} · call echo")
            arguments = {"payload": res.output["payload"]}
        return arguments


@workflow.defn(name=HAND_WRITTEN_FAN_TYPE, sandboxed=True)
class HandWrittenFanOut:
    """N `echo` calls started together and awaited together (``local``: as local activities)."""

    @workflow.run
    async def run(self, branches: int, local: bool) -> int:
        run_id = workflow.info().workflow_id

        async def call(i: int) -> M.ToolCallResult:
            req = M.ToolCallRequest(run_id=run_id, node_id=f"b{i}", tool="echo", arguments={"i": i})
            if local:
                return await workflow.execute_local_activity(
                    M.TOOL_CALL, req, result_type=M.ToolCallResult, schedule_to_close_timeout=_LOCAL_BUDGET,
                    retry_policy=_RETRY, summary=f"b{i} · call echo")
            return await workflow.execute_activity(
                M.TOOL_CALL, req, result_type=M.ToolCallResult, start_to_close_timeout=_TIMEOUT,
                retry_policy=_RETRY, summary=f"b{i} · call echo")

        results = await asyncio.gather(*(call(i) for i in range(branches)))
        return len(results)


# Everything below runs outside the sandbox only.

TARGET_NODE_RATIO = 1.15
TARGET_EVENT_RATIO = 1.15
TARGET_FAN_OUT_S = 3.0
TARGET_GATE_MS = 200.0

#: Not measured here (benchmarks of the peer on PostgreSQL are the cluster benchmarks'): the figures
#: issue 17 quotes for LangGraph 1.2.22 + PostgresSaver, durability "sync", shown for orientation.
LANGGRAPH_MS_NODE = 1.75
LANGGRAPH_FAN_MS = 57

CHAIN_NODES = 20
TOOL_TURNS = 10  # model turns that call a tool, then one that answers
FAN_BRANCHES = 50


def chain_source(n: int, payload: str = PAYLOAD) -> str:
    tools = "".join(f"tool t{i}:\n  call: echo\n" for i in range(n))
    edges = "".join(f'  t{i} -> t{i + 1} with {{ payload: "{{{{outputs.t{i}.payload}}}}" }}\n' for i in range(n - 1))
    return (f'vars:\n  payload: string = "{payload}"\n{tools}workflow chain:\n  entry: t0\n{edges}'
            f"  t{n - 1} -> done\n")


def fan_source(n: int, payload: str | None = None) -> str:
    tools = "".join(f"tool b{i}:\n  call: echo\n" for i in range(n))
    given = f' with {{ payload: "{payload}" }}' if payload is not None else ""
    edges = "".join(f"  split -> b{i}{given}\n" for i in range(n)) + "".join(f"  b{i} -> merge\n" for i in range(n))
    return (f"router split:\n  mode: fan_out_all\n{tools}join merge:\n  strategy: wait_all\n"
            f"workflow fan:\n  entry: split\n{edges}  merge -> done\n")


#: The same builder under the name the cluster benchmarks may import.
fan_out_source = fan_source


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
    """Starts and times runs on two task queues served by the same worker build: ``task_queue`` asks
    for eager activity execution (the default), ``no_eager_queue`` never does."""

    def __init__(self, env: Any, task_queue: str, no_eager_queue: str) -> None:
        import dsl

        self.env = env
        self.client = env.client
        self.task_queue = task_queue
        self.no_eager_queue = no_eager_queue
        self.dsl = dsl

    def compile(self, src: str) -> Any:
        result = self.dsl.check_source(src)
        if not result.ok:
            rendered = "\n".join(d.render() for d in result.diagnostics)
            raise SystemExit(f"benchmark workflow does not compile:\n{rendered}")
        return result.workflow

    async def start_graph(self, wf: Any, prefix: str, script: dict[str, Any] | None = None, *,
                          queue: str | None = None, **options: Any) -> Any:
        """Start a GraphRun of ``wf``; ``options`` are `RunOptions` fields (``local_tools=False``: the
        run's tool calls are ordinary activities)."""
        import uuid

        from workflows.contract.state import WORKFLOW_TYPE, RunInput, RunOptions, RunResult

        return await self.client.start_workflow(
            WORKFLOW_TYPE, RunInput(workflow=wf, source=f"{prefix}.iter", options=RunOptions(script=script, **options)),
            id=f"{prefix}-{uuid.uuid4().hex[:10]}", task_queue=queue or self.task_queue, result_type=RunResult)

    async def timed_graph(self, wf: Any, prefix: str, script: dict[str, Any] | None = None, *,
                          queue: str | None = None, **options: Any) -> tuple[float, Any]:
        import time

        t0 = time.perf_counter()
        handle = await self.start_graph(wf, prefix, script, queue=queue, **options)
        result = await handle.result()
        elapsed = time.perf_counter() - t0
        if result.status != "finished":
            raise SystemExit(f"{prefix} run ended {result.status}: {result.reason}")
        return elapsed, handle

    async def timed_hand(self, nodes: int, *, local: bool = False, queue: str | None = None) -> tuple[float, Any]:
        """A hand-written chain of ``nodes`` echo calls (``local``: as local activities)."""
        import time
        import uuid

        t0 = time.perf_counter()
        handle = await self.client.start_workflow(
            HAND_WRITTEN_LOCAL_TYPE if local else HAND_WRITTEN_TYPE, nodes, id=f"hand-{uuid.uuid4().hex[:10]}",
            task_queue=queue or self.task_queue, result_type=dict)
        result = await handle.result()
        elapsed = time.perf_counter() - t0
        assert result == {"payload": PAYLOAD}, result
        return elapsed, handle

    async def timed_hand_fan(self, branches: int, *, local: bool) -> tuple[float, Any]:
        """A hand-written fan-out of ``branches`` echo calls (``local``: as local activities)."""
        import time
        import uuid

        t0 = time.perf_counter()
        handle = await self.client.start_workflow(
            HAND_WRITTEN_FAN_TYPE, args=[branches, local], id=f"handfan-{uuid.uuid4().hex[:10]}",
            task_queue=self.task_queue, result_type=int)
        result = await handle.result()
        elapsed = time.perf_counter() - t0
        assert result == branches, result
        return elapsed, handle


#: The contenders of the chain and fan-out figures: the interpreter on its fast path (local
#: activities for fast builtin tools) and with every tool call an ordinary activity, each beside the
#: hand-written workflow of the same shape; and the ordinary-activity runs without eager dispatch.
CONTENDERS = {
    "inline": "interpreter, inline pure tools",
    "fast": "interpreter, fast path (local activities)",
    "hand_local": "hand-written, local activities",
    "regular": "interpreter, ordinary activities",
    "hand": "hand-written, ordinary activities",
    "regular_no_eager": "interpreter, ordinary activities, no eager dispatch",
    "hand_no_eager": "hand-written, ordinary activities, no eager dispatch",
}


async def interleaved(runners: dict[str, Any], reps: int) -> dict[str, list[tuple[float, Any]]]:
    """Each runner once to warm up, then ``reps`` rounds, the order rotated every round, so drift on a
    shared machine hits every contender alike."""
    for fn in runners.values():
        await fn()
    order = list(runners)
    runs: dict[str, list[tuple[float, Any]]] = {who: [] for who in order}
    for i in range(reps):
        k = i % len(order)
        for who in order[k:] + order[:k]:
            runs[who].append(await runners[who]())
    return runs


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
    """The chain of `call: echo` nodes, every contender of `CONTENDERS`, interleaved."""
    import statistics
    from collections import Counter

    wf = b.compile(chain_source(CHAIN_NODES))
    local_wf = b.compile(chain_source(CHAIN_NODES, LOCAL_PAYLOAD))
    runners = {
        "inline": lambda: b.timed_graph(wf, "chain"),
        "fast": lambda: b.timed_graph(local_wf, "chain"),
        "hand_local": lambda: b.timed_hand(CHAIN_NODES, local=True),
        "regular": lambda: b.timed_graph(wf, "chain", local_tools=False),
        "hand": lambda: b.timed_hand(CHAIN_NODES),
        "regular_no_eager": lambda: b.timed_graph(wf, "chain", queue=b.no_eager_queue, local_tools=False),
        "hand_no_eager": lambda: b.timed_hand(CHAIN_NODES, queue=b.no_eager_queue),
    }
    out: dict[str, Any] = {}
    for who, done in (await interleaved(runners, reps)).items():
        times = [t for t, _ in done]
        histories = [await history_of(h) for _, h in done]
        out[who] = {"run_s": statistics.median(times), "min_s": min(times),
                    "ms_node": statistics.median(times) * 1000 / CHAIN_NODES,
                    "worker_ms_node": statistics.median(ms for _, ms in histories) / CHAIN_NODES,
                    "events": histories[-1][0], "tasks": histories[-1][0].count("WORKFLOW_TASK_COMPLETED")}
    extra = Counter(out["regular"]["events"])
    extra.subtract(Counter(out["hand"]["events"]))
    out["ratio"] = out["regular"]["ms_node"] / out["hand"]["ms_node"]
    out["fast_ratio"] = out["fast"]["ms_node"] / out["hand_local"]["ms_node"]
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
    """The 50-branch fan-out/join, every contender of `CONTENDERS` but the hand-written one without
    eager dispatch, interleaved; a GraphRun must have every branch's output."""
    import statistics

    wf = b.compile(fan_source(FAN_BRANCHES))
    local_wf = b.compile(fan_source(FAN_BRANCHES, LOCAL_PAYLOAD))
    runners = {
        "inline": lambda: b.timed_graph(wf, "fan"),
        "fast": lambda: b.timed_graph(local_wf, "fan"),
        "hand_local": lambda: b.timed_hand_fan(FAN_BRANCHES, local=True),
        "regular": lambda: b.timed_graph(wf, "fan", local_tools=False),
        "hand": lambda: b.timed_hand_fan(FAN_BRANCHES, local=False),
        "regular_no_eager": lambda: b.timed_graph(wf, "fan", queue=b.no_eager_queue, local_tools=False),
    }
    out: dict[str, Any] = {}
    for who, done in (await interleaved(runners, reps)).items():
        times = [t for t, _ in done]
        handle = done[-1][1]
        if who in ("inline", "fast", "regular", "regular_no_eager"):
            outputs = (await handle.result()).outputs
            assert all(f"b{i}" in outputs for i in range(FAN_BRANCHES)), sorted(outputs)
        events, worker_ms = await history_of(handle)
        med = statistics.median(times)
        out[who] = {"total_s": med, "min_s": min(times), "per_s": FAN_BRANCHES / med, "events": len(events),
                    "worker_ms": worker_ms, "tasks": events.count("WORKFLOW_TASK_COMPLETED")}
    return out


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
        # The node after the gate is an ordinary activity (its ActivityTaskStarted is the figure's end).
        started = await b.start_graph(wf, "gate", local_tools=False)
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


def bench_worker(client: Any, task_queue: str, *, eager_activities: bool = True) -> Any:
    """The production worker (worker.build_worker) with the baseline workflows added."""
    from worker import build_worker

    return build_worker(client, task_queue, offline=True, eager_activities=eager_activities,
                        extra_workflows=[HandWrittenChain, HandWrittenLocalChain, HandWrittenFanOut])


#: Two dev-server defaults put server-side waits into the figures that are not the workflow's:
#: - a history shard's transfer queue (which hands new activity and workflow tasks to matching)
#:   is read at most 20 times a second (history.transferProcessorMaxPollRPS); in a sequential run
#:   nearly every hop then waits for the next 50 ms slot, so a node costs ~100 ms whatever the
#:   workflow code does, and that rounding hides the code's own cost;
#: - with the default 4 task-queue partitions, now and then an activity task waits ~2 s before a
#:   poller gets it (about one 20-node run in 15 here; never seen with one partition).
#: It also lets the server execute activities eagerly (system.enableActivityEagerExecution): an
#: activity scheduled by a workflow task is handed back in the answer to that task, not through
#: matching; the figures "no eager dispatch" come from a worker that never asks for it.
#: The benchmark changes all three unless --stock-server is given.
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

    reps = {"chain": 9, "fan": 6, "gate": 7, "llm": 3} if quick else {"chain": 30, "fan": 15, "gate": 25, "llm": 10}
    if stock:
        reps["chain"] = max(3, reps["chain"] // 3)
    t_start = time.perf_counter()
    env = await start_server(stock)
    settings = "stock settings" if stock else ("fast dispatch: transfer-queue poll limit lifted, 1 task-queue "
                                               "partition, eager activities allowed")
    print(f"dev server up in {time.perf_counter() - t_start:.1f} s (headless, in memory, {settings})")
    try:
        tag = uuid.uuid4().hex[:8]
        b = Bench(env, f"bench-{tag}", f"bench-no-eager-{tag}")
        async with bench_worker(env.client, b.task_queue), \
                bench_worker(env.client, b.no_eager_queue, eager_activities=False):
            print(f"1+2. chain of {CHAIN_NODES} echo nodes, {len(CONTENDERS)} contenders, {reps['chain']} runs each "
                  "(+1 warm-up) ...", flush=True)
            chain = await bench_chain(b, reps["chain"])
            print(f"3.   fan-out of {FAN_BRANCHES} branches, 6 contenders, {reps['fan']} runs each (+1 warm-up) ...",
                  flush=True)
            fan = await bench_fan(b, reps["fan"])
            print(f"4.   gate answer -> next activity, {reps['gate']} runs (+1 warm-up) ...", flush=True)
            gate = await bench_gate(b, reps["gate"])
            print(f"5.   LLM nodes on the scripted model, {reps['llm']} runs each (+1 warm-up) ...", flush=True)
            llm = await bench_llm(b, reps["llm"])
    finally:
        await env.shutdown()
    report(chain, fan, gate, reps)
    print(f"LLM nodes (scripted model, median of {reps['llm']}): {llm['agent_ms']:.1f} ms per one-turn agent "
          f"(vs {chain['regular']['ms_node']:.1f} ms per echo tool node as an ordinary activity: the turn also "
          f"stores its conversation); {llm['round_ms']:.1f} ms and {llm['round_events']:.1f} history events per "
          f"tool-loop round (a model turn + a tool call, {TOOL_TURNS} rounds)")
    print(f"total {time.perf_counter() - t_start:.0f} s")


def report(chain: dict[str, Any], fan: dict[str, Any], gate: dict[str, Any], reps: dict[str, int]) -> None:
    n = CHAIN_NODES
    g, h = chain["regular"], chain["hand"]
    fast, hand_local = chain["fast"], chain["hand_local"]
    g_ev, h_ev = len(g["events"]) / n, len(h["events"]) / n
    f_ev, hl_ev = len(fast["events"]) / n, len(hand_local["events"]) / n
    checks = [
        ("per-node time, interpreter / hand-written",
         f"{g['ms_node']:.1f} / {h['ms_node']:.1f} ms = x{chain['ratio']:.2f}",
         f"<= x{TARGET_NODE_RATIO:.2f}", chain["ratio"] <= TARGET_NODE_RATIO),
        ("history events per node, interp. / hand-written",
         f"{g_ev:.2f} / {h_ev:.2f} = x{g_ev / h_ev:.2f}",
         f"<= x{TARGET_EVENT_RATIO:.2f}", g_ev / h_ev <= TARGET_EVENT_RATIO),
        (f"fan-out/join of {FAN_BRANCHES} branches",
         f"{fan['regular']['total_s']:.2f} s ({fan['regular']['per_s']:.0f} branches/s)",
         f"<= {TARGET_FAN_OUT_S:.1f} s", fan["regular"]["total_s"] <= TARGET_FAN_OUT_S),
        ("gate answer -> next activity started", f"{gate['total']:.0f} ms", f"<= {TARGET_GATE_MS:.0f} ms",
         gate["total"] <= TARGET_GATE_MS),
        ("fast path: per node, interp. / hand-written local",
         f"{fast['ms_node']:.2f} / {hand_local['ms_node']:.2f} ms = x{chain['fast_ratio']:.2f}",
         f"<= x{TARGET_NODE_RATIO:.2f}", chain["fast_ratio"] <= TARGET_NODE_RATIO),
        ("fast path: fan-out, interp. / hand-written local",
         (f"{fan['fast']['total_s'] * 1000:.0f} / {fan['hand_local']['total_s'] * 1000:.0f} ms = "
          f"x{fan['fast']['total_s'] / fan['hand_local']['total_s']:.2f}"),
         f"<= {TARGET_FAN_OUT_S:.1f} s", fan["fast"]["total_s"] <= TARGET_FAN_OUT_S),
        ("inline pure tools: per node (LangGraph: issue 17)", f"{chain['inline']['ms_node']:.2f} ms",
         f"<= {LANGGRAPH_MS_NODE} ms", chain["inline"]["ms_node"] <= LANGGRAPH_MS_NODE),
        ("inline pure tools: fan-out (LangGraph: issue 17)", f"{fan['inline']['total_s'] * 1000:.0f} ms",
         f"<= {LANGGRAPH_FAN_MS} ms", fan["inline"]["total_s"] * 1000 <= LANGGRAPH_FAN_MS),
    ]
    print()
    print("The first four figures are the interpreter with every tool call an ordinary activity (RunOptions")
    print("local_tools=False), as before the fast path; the next two its local activities, the last two its inline")
    print("pure tools (the default).")
    print(f"{'figure':<48} {'measured':<32} {'target':<10}")
    print("-" * 97)
    for name, value, target, ok in checks:
        print(f"{name:<48} {value:<32} {target:<10} {verdict(ok)}")
    print("-" * 97)
    print(f"{sum(ok for *_, ok in checks)}/{len(checks)} targets met")
    print()
    print(f"chain ({n} nodes, median of {reps['chain']}), ordinary activities: run {g['run_s'] * 1000:.0f} ms "
          f"interpreter (fastest {g['min_s'] * 1000:.0f}), {h['run_s'] * 1000:.0f} ms hand-written "
          f"(fastest {h['min_s'] * 1000:.0f}); overhead {g['ms_node'] - h['ms_node']:+.1f} ms/node")
    print(f"  worker time (workflow tasks) per node: {g['worker_ms_node']:.1f} ms interpreter, "
          f"{h['worker_ms_node']:.1f} ms hand-written (x{g['worker_ms_node'] / h['worker_ms_node']:.2f})")
    print(f"  history: {len(g['events'])} events interpreter, {len(h['events'])} hand-written; "
          f"extra in the interpreter: {chain['extra_events'] or 'none'}")
    print(f"  fast path: {f_ev:.2f} history events per node ({hand_local['tasks']} workflow tasks hand-written local, "
          f"{fast['tasks']} interpreter; {hl_ev:.2f} events per node hand-written local); worker time per node "
          f"{fast['worker_ms_node']:.2f} ms interpreter, {hand_local['worker_ms_node']:.2f} ms hand-written")
    inline = chain["inline"]
    print(f"  inline pure tools: {len(inline['events']) / n:.2f} history events per node, {inline['tasks']} workflow "
          f"task(s), worker time per node {inline['worker_ms_node']:.2f} ms; run {inline['run_s'] * 1000:.0f} ms "
          f"(fastest {inline['min_s'] * 1000:.0f}), start -> result, client side")
    print(f"fan-out (median of {reps['fan']}), ordinary activities: fastest {fan['regular']['min_s']:.2f} s, "
          f"{fan['regular']['events']} history events, worker time {fan['regular']['worker_ms']:.0f} ms in "
          f"{fan['regular']['tasks']} workflow tasks")
    print(f"gate (median of {reps['gate']}): send -> update accepted {gate['to_accepted']:.0f} ms, accepted -> "
          f"activity scheduled {gate['to_scheduled']:.0f} ms, scheduled -> started {gate['to_started']:.0f} ms; "
          f"update round trip {gate['update_rtt']:.0f} ms; worst total {gate['max_total']:.0f} ms")
    print()
    print(f"What costs a server round trip (medians, interleaved; per node of the {n}-node `call: echo` chain, and the "
          f"whole {FAN_BRANCHES}-branch fan-out/join with its workflow tasks):")
    print(f"  {'contender':<54} {'chain ms/node':>13} {'fan-out ms':>11} {'fan tasks':>10}")
    for who, label in CONTENDERS.items():
        c, f = chain[who], fan.get(who)
        fan_cells = f"{f['total_s'] * 1000:>11.0f} {f['tasks']:>10}" if f else f"{'-':>11} {'-':>10}"
        print(f"  {label:<54} {c['ms_node']:>13.2f} {fan_cells}")
    print(f"  reference (issue 17, measured 2026-12-07 elsewhere): LangGraph + PostgresSaver {LANGGRAPH_MS_NODE} ms/node, "
          f"fan-out {LANGGRAPH_FAN_MS} ms")


def main() -> None:
    import argparse
    import asyncio

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (about a minute)")
    parser.add_argument("--stock-server", action="store_true",
                        help="keep the dev server's defaults (20 transfer-queue reads/s, 4 partitions, no eager activities), "
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

"""iterloop on a Temporal cluster beside LangGraph with its PostgreSQL checkpointer, in one run.

    python benchmarks/bench_peer.py [--quick] [--json] [--settings fast,default]     (or: make bench-peer)

The peer a Python team would pick for a durable graph is LangGraph (PyPI `langgraph`) with
`langgraph-checkpoint-postgres`. Both engines run the same two graphs here, on the SAME PostgreSQL
server (`runtime/local_cluster.py`; LangGraph in its own database, Temporal in its two):

- the 20-node chain: each node returns its input's `payload` (iterloop: `call: echo` nodes,
  bench_runtime.py's `chain_source`);
- the 50-branch fan-out/join (iterloop: `fan_out_all` router -> 50 `call: echo` -> `wait_all` join;
  LangGraph: a node with edges to 50 nodes whose outputs a reducer merges, and one node waiting
  for all 50).

LangGraph is invoked with `durability="sync"`: every step's checkpoint is written before the next
step starts, which is what iterloop's history gives (a node's result is durable before the graph
goes on). Both sides run interleaved in the same process and loop, one run at a time.

Figures, per engine: per-node time of the chain (median wall time / 20), the fan-out's wall time,
and storage per chain run: the bytes of the rows the run wrote (LangGraph: its `checkpoints`,
`checkpoint_blobs` and `checkpoint_writes` rows for the thread; Temporal: the run's `history_node`
rows and its `executions` row), and the growth of the databases over all chain runs, per run (pages,
indexes and visibility included; coarse). Also shown: Temporal's own measure, the serialized size
of the run's history events. Target (issue 17): iterloop per node <= LangGraph per node.

iterloop runs on the cluster with the fast settings (bench_cluster.FAST_CLUSTER_CONFIG) unless
`--settings` says otherwise (`default`: Temporal's defaults; both: `fast,default`, one cluster
each). Needs `make temporal-server` and the `bench` extra (`make bench-peer` installs both).
Quick mode (3 chain runs, 2 fan-outs a side) takes about a minute, the full mode (11, 5) about
2. Exit status 0 whatever the figures.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import operator
from typing import Annotated, Any, TypedDict

from bench_scale import BenchError

LANGGRAPH_DB = "langgraph"
CHECKPOINT_TABLES = ("checkpoints", "checkpoint_blobs", "checkpoint_writes")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


# -- LangGraph --------------------------------------------------------------------------------------


class ChainState(TypedDict):
    payload: str


class FanState(TypedDict):
    outputs: Annotated[dict[str, Any], operator.or_]  # each branch adds its own key


def langgraph_chain(nodes: int, checkpointer: Any) -> Any:
    from langgraph.graph import END, START, StateGraph

    graph = StateGraph(ChainState)
    for i in range(nodes):
        graph.add_node(f"t{i}", lambda state: {"payload": state["payload"]})
    graph.add_edge(START, "t0")
    for i in range(nodes - 1):
        graph.add_edge(f"t{i}", f"t{i + 1}")
    graph.add_edge(f"t{nodes - 1}", END)
    return graph.compile(checkpointer=checkpointer)


def langgraph_fan(branches: int, checkpointer: Any) -> Any:
    from langgraph.graph import END, START, StateGraph

    def branch(i: int) -> Any:
        return lambda state: {"outputs": {f"b{i}": {"i": i}}}

    graph = StateGraph(FanState)
    graph.add_node("split", lambda state: {"outputs": {}})
    names = [f"b{i}" for i in range(branches)]
    for i, name in enumerate(names):
        graph.add_node(name, branch(i))
        graph.add_edge("split", name)
    graph.add_node("merge", lambda state: {"outputs": {}})
    graph.add_edge(names, "merge")  # waits for every branch
    graph.add_edge(START, "split")
    graph.add_edge("merge", END)
    return graph.compile(checkpointer=checkpointer)


class LangGraphSide:
    """The two graphs with a PostgresSaver on their own database, invoked synchronously (in a thread)."""

    def __init__(self, dsn: str, chain_nodes: int, branches: int) -> None:
        from langgraph.checkpoint.postgres import PostgresSaver

        self._cm = PostgresSaver.from_conn_string(dsn)
        self.saver = self._cm.__enter__()
        self.saver.setup()
        self.conn = self.saver.conn
        self.chain = langgraph_chain(chain_nodes, self.saver)
        self.fan = langgraph_fan(branches, self.saver)
        self.chain_nodes = chain_nodes
        self.branches = branches
        self.last_thread = ""

    def close(self) -> None:
        self._cm.__exit__(None, None, None)

    def run_chain(self) -> float:
        import time
        import uuid

        self.last_thread = f"chain-{uuid.uuid4().hex}"
        t0 = time.perf_counter()
        out = self.chain.invoke({"payload": "hello"}, {"configurable": {"thread_id": self.last_thread}},
                                durability="sync")
        elapsed = time.perf_counter() - t0
        if out != {"payload": "hello"}:
            raise BenchError(f"LangGraph chain returned {out!r}")
        return elapsed

    def run_fan(self) -> float:
        import time
        import uuid

        t0 = time.perf_counter()
        out = self.fan.invoke({"outputs": {}}, {"configurable": {"thread_id": f"fan-{uuid.uuid4().hex}"}},
                              durability="sync")
        elapsed = time.perf_counter() - t0
        if len(out["outputs"]) != self.branches:
            raise BenchError(f"LangGraph fan-out merged {len(out['outputs'])} of {self.branches} branches")
        return elapsed

    def thread_bytes(self, thread_id: str) -> int:
        """Bytes of the checkpointer's rows for one thread (row sizes as stored, TOAST included)."""
        total = 0
        for table in CHECKPOINT_TABLES:
            row = self.conn.execute(
                f"SELECT coalesce(sum(pg_column_size(t.*)), 0) AS n FROM {table} t WHERE thread_id = %s",
                (thread_id,)).fetchone()
            total += int(row["n"])
        return total


# -- Temporal's storage ------------------------------------------------------------------------------


def temporal_run_bytes(pg: Any, database: str, run_id: str) -> int:
    """Bytes of one run's rows in Temporal's store: its history tree and its mutable-state row."""
    hex_id = run_id.replace("-", "")
    history = pg.psql(f"SELECT coalesce(sum(pg_column_size(h.*)), 0) FROM history_node h "
                      f"WHERE tree_id = decode('{hex_id}', 'hex')", dbname=database)
    state = pg.psql(f"SELECT coalesce(sum(pg_column_size(e.*)), 0) FROM executions e "
                    f"WHERE run_id = decode('{hex_id}', 'hex')", dbname=database)
    return int(history or 0) + int(state or 0)


def database_bytes(pg: Any, databases: tuple[str, ...]) -> int:
    names = ", ".join(f"'{d}'" for d in databases)
    return int(pg.psql(f"SELECT sum(pg_database_size(datname)) FROM pg_database WHERE datname IN ({names})"))


# -- the benchmark ------------------------------------------------------------------------------------


async def measure(pg: Any, cluster: Any, lg: LangGraphSide, reps: dict[str, int], log_dir: Path) -> dict[str, Any]:
    """Both engines, interleaved: chain per node, fan-out, storage per chain run."""
    import asyncio
    import statistics
    import uuid

    import bench_runtime as R
    from bench_cluster import NAMESPACE, _Env
    from bench_scale import RunTimes, WorkerProcess

    task_queue = f"peer-{uuid.uuid4().hex[:8]}"
    worker = await WorkerProcess(cluster.address, NAMESPACE, task_queue, log_dir).start()
    try:
        b = R.Bench(_Env(cluster.client), task_queue, task_queue)
        chain = b.compile(R.chain_source(R.CHAIN_NODES))
        fan = b.compile(R.fan_source(R.FAN_BRANCHES))
        # Warm-up: first sandbox imports and polls; LangGraph's first statements and connection.
        await b.timed_graph(chain, "chain")
        await b.timed_graph(fan, "fan")
        await asyncio.to_thread(lg.run_chain)
        await asyncio.to_thread(lg.run_fan)

        lg_before = await asyncio.to_thread(database_bytes, pg, (LANGGRAPH_DB,))
        t_before = await asyncio.to_thread(database_bytes, pg, cluster.databases)
        times: dict[str, list[float]] = {"iterloop": [], "langgraph": []}
        rows: dict[str, list[int]] = {"iterloop": [], "langgraph": []}
        history_bytes: list[int] = []
        for i in range(reps["chain"]):
            for who in (("iterloop", "langgraph") if i % 2 == 0 else ("langgraph", "iterloop")):
                if who == "iterloop":
                    elapsed, handle = await b.timed_graph(chain, "chain")
                    desc = await handle.describe()
                    rows[who].append(await asyncio.to_thread(temporal_run_bytes, pg, cluster.databases[0],
                                                             desc.run_id))
                    history_bytes.append(RunTimes(list((await handle.fetch_history()).events)).bytes)
                else:
                    elapsed = await asyncio.to_thread(lg.run_chain)
                    rows[who].append(await asyncio.to_thread(lg.thread_bytes, lg.last_thread))
                times[who].append(elapsed)
        lg_growth = (await asyncio.to_thread(database_bytes, pg, (LANGGRAPH_DB,)) - lg_before) / reps["chain"]
        t_growth = (await asyncio.to_thread(database_bytes, pg, cluster.databases) - t_before) / reps["chain"]
        fans: dict[str, list[float]] = {"iterloop": [], "langgraph": []}
        for i in range(reps["fan"]):
            for who in (("iterloop", "langgraph") if i % 2 == 0 else ("langgraph", "iterloop")):
                if who == "iterloop":
                    fans[who].append((await b.timed_graph(fan, "fan"))[0])
                else:
                    fans[who].append(await asyncio.to_thread(lg.run_fan))
    finally:
        await worker.stop()
    return {
        who: {"ms_node": statistics.median(times[who]) * 1000 / R.CHAIN_NODES,
              "fan_s": statistics.median(fans[who]),
              "row_bytes_per_run": statistics.median(rows[who]),
              "db_growth_per_run": lg_growth if who == "langgraph" else t_growth,
              **({"history_bytes_per_run": statistics.median(history_bytes)} if who == "iterloop" else {})}
        for who in ("iterloop", "langgraph")}


async def run(quick: bool, settings: list[str]) -> dict[str, Any]:
    import asyncio
    import importlib.metadata as md
    import time

    from bench_cluster import FAST_CLUSTER_CONFIG, bench_root, postgres, temporal_cluster

    try:
        versions = {p: md.version(p) for p in ("langgraph", "langgraph-checkpoint-postgres", "psycopg")}
    except md.PackageNotFoundError as exc:
        raise BenchError(f"{exc.name} is not installed: the peer is an optional dependency; run `make bench-peer` "
                         "(or `.venv/bin/pip install -e '.[bench]'`)") from None
    reps = {"chain": 3, "fan": 2} if quick else {"chain": 11, "fan": 5}
    t_start = time.perf_counter()
    out: dict[str, Any] = {"reps": reps, "versions": versions, "settings": {}}
    with bench_root("iterloop-bench-peer-") as root:
        print("starting PostgreSQL ...", file=sys.stderr, flush=True)
        async with postgres(root) as pg:
            await asyncio.to_thread(pg.psql, f"CREATE DATABASE {LANGGRAPH_DB}")
            import bench_runtime as R

            lg = await asyncio.to_thread(LangGraphSide, pg.dsn(LANGGRAPH_DB), R.CHAIN_NODES, R.FAN_BRANCHES)
            try:
                for name in settings:
                    config = FAST_CLUSTER_CONFIG if name == "fast" else {}
                    t0 = time.perf_counter()
                    async with temporal_cluster(pg, root, f"temporal_{name}", config) as cluster:
                        print(f"Temporal Server ({name} settings) at {cluster.address} up in "
                              f"{time.perf_counter() - t0:.0f} s; {reps['chain']} chains and {reps['fan']} fan-outs "
                              "a side ...", file=sys.stderr, flush=True)
                        out["settings"][name] = await measure(pg, cluster, lg, reps, root)
            finally:
                await asyncio.to_thread(lg.close)
    out["total_s"] = time.perf_counter() - t_start
    return out


def checks(fig: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    rows = []
    for name, s in fig["settings"].items():
        g, lg = s["iterloop"]["ms_node"], s["langgraph"]["ms_node"]
        rows.append((f"per node, iterloop ({name} settings) / LangGraph", f"{g:.2f} / {lg:.2f} ms = x{g / lg:.2f}",
                     "<= x1.00", g <= lg))
    return rows


def report(fig: dict[str, Any]) -> None:
    import bench_runtime as R

    v = fig["versions"]
    print()
    print(f"LangGraph {v['langgraph']} + langgraph-checkpoint-postgres {v['langgraph-checkpoint-postgres']} "
          f"(psycopg {v['psycopg']}), durability \"sync\", beside iterloop on Temporal Server 1.29.1; one PostgreSQL")
    print(f"{'engine':<40} {'per node':>10} {f'{R.FAN_BRANCHES}-branch fan-out':>20} {'rows per chain run':>19} "
          f"{'db growth per run':>18}")
    print("-" * 111)
    for name, s in fig["settings"].items():
        for who, label in (("langgraph", "LangGraph + PostgresSaver"), ("iterloop", f"iterloop, cluster ({name})")):
            r = s[who]
            print(f"{label:<40} {r['ms_node']:>7.2f} ms {r['fan_s'] * 1000:>17.0f} ms "
                  f"{r['row_bytes_per_run'] / 1024:>16.1f} KB {r['db_growth_per_run'] / 1024:>15.1f} KB")
        print(f"  (iterloop's history: {s['iterloop']['history_bytes_per_run'] / 1024:.1f} KB of serialized events "
              "per chain run)")
    print("-" * 111)
    rows = checks(fig)
    for name, value, target, ok in rows:
        print(f"{name:<52} {value:<32} {target:<9} {verdict(ok)}")
    print(f"{sum(ok for *_, ok in rows)}/{len(rows)} targets met; medians of {fig['reps']['chain']} chain runs and "
          f"{fig['reps']['fan']} fan-outs a side, interleaved")
    print(f"total {fig['total_s']:.0f} s")


def main() -> None:
    import argparse
    import asyncio
    import json
    import os

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs (about a minute)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON document")
    parser.add_argument("--settings", default="fast",
                        help="the cluster's dynamic config: fast, default, or both as fast,default (default fast)")
    args = parser.parse_args()
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    if not settings or set(settings) - {"fast", "default"}:
        parser.error(f"--settings {args.settings!r}: give fast, default, or fast,default")
    if not args.json:
        print(f"iterloop beside LangGraph{' (quick)' if args.quick else ''}, Python {sys.version.split()[0]}")
    try:
        fig = asyncio.run(run(args.quick, settings))
    except BenchError as exc:
        print(f"bench_peer: {exc}", file=sys.stderr)
        sys.stderr.flush()
        os._exit(1)
    if args.json:
        fig["checks"] = [{"figure": n, "measured": v, "target": t, "met": ok} for n, v, t, ok in checks(fig)]
        print(json.dumps(fig, indent=2))
    else:
        report(fig)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # as bench_runtime.py (temporalio/sdk-python#300)


if __name__ == "__main__":
    main()

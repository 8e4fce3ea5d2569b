"""The chain, the fan-out and node steps per second with 1, 2, 4 workers, on a real Temporal cluster.

    python benchmarks/bench_cluster.py [--quick] [--json] [--workers 1,2,4]     (or: make bench-cluster)

bench_runtime.py measures the interpreter on the dev server (one process over SQLite, in memory).
Users who outgrow a laptop run Temporal Server over PostgreSQL, where every server round trip is a
database transaction. This benchmark starts one PostgreSQL and Temporal Server 1.29.1 on loopback
ports (`runtime/local_cluster.py`, binaries from `make temporal-server`), sets the namespace up with
`iterloop server setup`, and measures, next to the in-memory dev server:

1. the 20-node `call: echo` chain, per node (median of interleaved runs): GraphRun as a user runs
   it (default RunOptions: builtin tools such as echo run as local activities), and the
   hand-written workflows of bench_runtime.py (ordinary activities, and local activities when
   bench_runtime.py has that baseline);
2. the 50-branch fan-out/join (median wall time);
3. node steps per second with 1, 2 and 4 worker processes on one task queue: many chain runs
   started together (`--load` runs of 20 nodes), nodes finished / wall time.

Each is measured on three servers, one after the other: the dev server with bench_runtime.py's fast
dispatch settings; the cluster with Temporal's default dynamic config; the cluster with the same
settings as dynamic config (`FAST_CLUSTER_CONFIG`: the transfer queue read without a rate limit,
one task-queue partition, eager activity execution; docs/deploy.md, "Sizing"). A worker is a
separate process (`bench_scale.WorkerProcess`: `worker.build_worker(..., offline=True)` plus the
baselines). Everything is started and stopped by the script, PostgreSQL included.

Quick mode (2 chain runs each, 1 fan-out, 10 load runs) takes about 3 minutes on a quiet 2-core
machine, most of it starting servers and worker processes; the full mode (11, 5, 100) about 8.
No targets here but the issue's reference figures (a chain node on the cluster at default settings
was about 53 ms); bench_peer.py compares with LangGraph. Exit 0
whatever the figures.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from runtime.devserver import FAST_DISPATCH_ARGS

REPO = Path(__file__).resolve().parent.parent
NAMESPACE = "default"


def dynamic_config_of(args: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """The dev server's `--dynamic-config-value KEY=JSON` pairs as a cluster's dynamic config."""
    values = [a for a in args if a != "--dynamic-config-value"]
    out: dict[str, Any] = {}
    for pair in values:
        key, _, value = pair.partition("=")
        out[key] = json.loads(value)
    return out


#: The dev server's fast-dispatch settings, as a cluster's dynamic config (one source of truth).
FAST_CLUSTER_CONFIG = dynamic_config_of(FAST_DISPATCH_ARGS)


# -- PostgreSQL and the cluster ------------------------------------------------------------------


@contextlib.contextmanager
def bench_root(prefix: str) -> Any:
    """A scratch directory PostgreSQL can use when we are root (it then runs as `nobody`)."""
    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o711)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.asynccontextmanager
async def postgres(root: Path) -> AsyncIterator[Any]:
    import asyncio

    from runtime.local_cluster import PostgresServer

    pg = await asyncio.to_thread(PostgresServer.start, root / "postgresql")
    try:
        yield pg
    finally:
        await asyncio.to_thread(pg.stop)


@dataclass
class Cluster:
    """A running Temporal Server over the benchmark's PostgreSQL, set up for iterloop."""

    server: Any  # runtime.local_cluster.TemporalCluster
    client: Any
    databases: tuple[str, str]

    @property
    def address(self) -> str:
        return str(self.server.address)


async def setup_namespace(address: str) -> None:
    """`iterloop server setup --address …`: the namespace and iterloop's search attributes, as a user does."""
    import asyncio
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "ITERLOOP_"))}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli", "server", "setup", "--address", address, "--json", cwd=REPO, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"`iterloop server setup --address {address}` failed:\n{out.decode(errors='replace')}")


@contextlib.asynccontextmanager
async def temporal_cluster(pg: Any, root: Path, name: str, dynamic_config: dict[str, Any]) -> AsyncIterator[Cluster]:
    """Temporal Server on ``pg`` (databases ``name`` and ``name``_visibility), set up, with a client."""
    import asyncio
    import functools

    from temporalio.client import Client

    from runtime.connect import DATA_CONVERTER
    from runtime.local_cluster import TemporalCluster

    server = await asyncio.to_thread(functools.partial(
        TemporalCluster.start, pg, root / name, database_prefix=name, dynamic_config=dynamic_config))
    try:
        await setup_namespace(server.address)
        client = await Client.connect(server.address, namespace=NAMESPACE, data_converter=DATA_CONVERTER)
        yield Cluster(server=server, client=client, databases=(name, f"{name}_visibility"))
    finally:
        await asyncio.to_thread(server.stop)


# -- measurements ---------------------------------------------------------------------------------


class _Env:
    """What bench_runtime.Bench needs of a WorkflowEnvironment: a client."""

    def __init__(self, client: Any) -> None:
        self.client = client


#: The contenders of the chain and fan-out figures (bench_runtime.py's names): GraphRun as a user runs
#: it (pure builtin tools such as echo evaluated in the workflow), GraphRun with every tool call an ordinary
#: activity, and the hand-written workflows of the same two kinds.
CONTENDERS = {
    "fast": "iterloop (default)",
    "regular": "iterloop, activities",
    "hand_local": "hand, local acts",
    "hand": "hand, activities",
}


async def interleaved(runners: dict[str, Any], reps: int) -> dict[str, list[float]]:
    """Each runner once to warm up, then ``reps`` rounds in a rotated order (drift hits all alike)."""
    for fn in runners.values():
        await fn()
    order = list(runners)
    times: dict[str, list[float]] = {who: [] for who in order}
    for i in range(reps):
        k = i % len(order)
        for who in order[k:] + order[:k]:
            times[who].append((await runners[who]())[0])
    return times


async def chain_and_fan(b: Any, reps_chain: int, reps_fan: int) -> dict[str, Any]:
    """Per-node time of the 20-node chain and the 50-branch fan-out's wall time, every contender."""
    import statistics

    import bench_runtime as R

    chain = b.compile(R.chain_source(R.CHAIN_NODES))
    fan = b.compile(R.fan_source(R.FAN_BRANCHES))
    chain_times = await interleaved({
        "fast": lambda: b.timed_graph(chain, "chain"),
        "regular": lambda: b.timed_graph(chain, "chain", local_tools=False),
        "hand_local": lambda: b.timed_hand(R.CHAIN_NODES, local=True),
        "hand": lambda: b.timed_hand(R.CHAIN_NODES)}, reps_chain)
    fan_times = await interleaved({
        "fast": lambda: b.timed_graph(fan, "fan"),
        "regular": lambda: b.timed_graph(fan, "fan", local_tools=False),
        "hand_local": lambda: b.timed_hand_fan(R.FAN_BRANCHES, local=True),
        "hand": lambda: b.timed_hand_fan(R.FAN_BRANCHES, local=False)}, reps_fan)
    return {"chain_ms_node": {k: statistics.median(v) * 1000 / R.CHAIN_NODES for k, v in chain_times.items()},
            "fan_s": {k: statistics.median(v) for k, v in fan_times.items()}}


async def node_steps(b: Any, workers: int, runs: int) -> dict[str, Any]:
    """Node steps per second of the workers on ``b``'s task queue, ``runs`` chains started at once."""
    import asyncio
    import time

    import bench_runtime as R

    chain = b.compile(R.chain_source(R.CHAIN_NODES))
    await asyncio.gather(*(b.timed_graph(chain, "warm") for _ in range(2 * workers)))  # every worker warm
    t0 = time.perf_counter()
    await asyncio.gather(*(b.timed_graph(chain, "load") for _ in range(runs)))
    wall = time.perf_counter() - t0
    return {"workers": workers, "runs": runs, "steps": runs * R.CHAIN_NODES, "wall_s": wall,
            "steps_per_s": runs * R.CHAIN_NODES / wall}


async def measure(name: str, client: Any, address: str, sizes: dict[str, int], worker_counts: list[int],
                  log_dir: Path) -> dict[str, Any]:
    """One server: the chain and fan-out on one worker process, then node steps/s as workers are added
    to the same task queue (1, then 2, then 4: each count's figure is taken with exactly that many)."""
    import asyncio
    import uuid

    import bench_runtime as R
    from bench_scale import start_workers

    task_queue = f"cluster-{uuid.uuid4().hex[:8]}"
    b = R.Bench(_Env(client), task_queue, task_queue)
    workers = await start_workers(address, NAMESPACE, task_queue, log_dir, 1)
    try:
        print(f"{name}: chain x{sizes['chain']}, fan-out x{sizes['fan']} ...", file=sys.stderr, flush=True)
        out = await chain_and_fan(b, sizes["chain"], sizes["fan"])
        out["steps"] = []
        for n in sorted(worker_counts):
            if n > len(workers):
                workers += await start_workers(address, NAMESPACE, task_queue, log_dir, n - len(workers))
            print(f"{name}: {sizes['load']} chains at once on {n} worker process(es) ...", file=sys.stderr,
                  flush=True)
            out["steps"].append(await node_steps(b, n, sizes["load"]))
    finally:
        await asyncio.gather(*(w.stop() for w in workers))
    return out


async def run(quick: bool, worker_counts: list[int], servers: list[str]) -> dict[str, Any]:
    import time

    import bench_runtime as R

    sizes = {"chain": 2, "fan": 1, "load": 10} if quick else {"chain": 11, "fan": 5, "load": 100}
    t_start = time.perf_counter()
    out: dict[str, Any] = {"sizes": sizes, "fast_cluster_config": FAST_CLUSTER_CONFIG, "servers": {}}
    with bench_root("iterloop-bench-cluster-") as root:
        if "dev" in servers:
            env = await R.start_server(False)
            try:
                out["servers"]["dev server, fast dispatch"] = await measure(
                    "dev server", env.client, env.client.service_client.config.target_host, sizes, worker_counts,
                    root)
            finally:
                await env.shutdown()
        if "cluster-default" in servers or "cluster-fast" in servers:
            print("starting PostgreSQL ...", file=sys.stderr, flush=True)
            async with postgres(root) as pg:
                for key, label, config in (("cluster-default", "cluster, default settings", {}),
                                           ("cluster-fast", "cluster, fast settings", FAST_CLUSTER_CONFIG)):
                    if key not in servers:
                        continue
                    t0 = time.perf_counter()
                    async with temporal_cluster(pg, root, key.replace("-", "_"), config) as cluster:
                        print(f"{label}: Temporal Server at {cluster.address} up and set up in "
                              f"{time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
                        out["servers"][label] = await measure(label, cluster.client, cluster.address, sizes,
                                                              worker_counts, root)
    out["total_s"] = time.perf_counter() - t_start
    return out


def report(fig: dict[str, Any]) -> None:
    import bench_runtime as R

    servers = fig["servers"]
    print()
    print(f"{R.CHAIN_NODES}-node `call: echo` chain, ms per node (median of {fig['sizes']['chain']}, interleaved)")
    header = f"{'server':<28}" + "".join(f"{label:>22}" for label in CONTENDERS.values())
    print(header)
    print("-" * len(header))
    for name, s in servers.items():
        print(f"{name:<28}" + "".join(f"{s['chain_ms_node'][k]:>19.2f} ms" for k in CONTENDERS))
    print()
    print(f"{R.FAN_BRANCHES}-branch fan-out/join, wall time (median of {fig['sizes']['fan']})")
    print(header)
    print("-" * len(header))
    for name, s in servers.items():
        print(f"{name:<28}" + "".join(f"{s['fan_s'][k]:>20.2f} s" for k in CONTENDERS))
    print("iterloop (default): GraphRun as users run it, pure builtin tools such as echo evaluated in the workflow; "
          "activities: every tool call an ordinary activity (RunOptions local_tools=False); hand: "
          "bench_runtime.py's hand-written workflows with local activities / ordinary activities")
    print()
    print(f"node steps per second, {fig['sizes']['load']} chains of {R.CHAIN_NODES} nodes started together "
          "(GraphRun, default run options), by worker processes on one task queue")
    counts = [row["workers"] for row in next(iter(servers.values()))["steps"]] if servers else []
    header = f"{'server':<28}" + "".join(f"{f'{n} worker(s)':>14}" for n in counts)
    print(header)
    print("-" * len(header))
    for name, s in servers.items():
        print(f"{name:<28}" + "".join(f"{row['steps_per_s']:>14.0f}" for row in s["steps"]))
    print()
    print("fast settings (cluster dynamic config, the dev server's fast dispatch): "
          + ", ".join(f"{k}={json.dumps(v)}" for k, v in fig["fast_cluster_config"].items()))
    print(f"total {fig['total_s']:.0f} s")


def main() -> None:
    import argparse
    import asyncio
    import os

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs (about 3 minutes)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON document")
    parser.add_argument("--workers", default="1,2,4", help="worker process counts for node steps/s (default 1,2,4)")
    parser.add_argument("--servers", default="dev,cluster-default,cluster-fast",
                        help="which servers, comma-separated (default dev,cluster-default,cluster-fast)")
    args = parser.parse_args()
    try:
        counts = [int(n) for n in args.workers.split(",") if n.strip()]
    except ValueError:
        parser.error(f"--workers {args.workers!r}: give worker counts like 1,2,4")
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = set(servers) - {"dev", "cluster-default", "cluster-fast"}
    if unknown or not counts or min(counts) < 1:
        parser.error(f"--servers takes dev, cluster-default, cluster-fast (got {args.servers!r}); "
                     "--workers positive counts")
    if not args.json:
        print(f"iterloop cluster benchmark{' (quick)' if args.quick else ''}, Python {sys.version.split()[0]}")
    from bench_scale import BenchError

    try:
        fig = asyncio.run(run(args.quick, counts, servers))
    except BenchError as exc:
        print(f"bench_cluster: {exc}", file=sys.stderr)
        sys.stderr.flush()
        os._exit(1)
    if args.json:
        print(json.dumps(fig, indent=2))
    else:
        report(fig)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # as bench_runtime.py (temporalio/sdk-python#300)


if __name__ == "__main__":
    main()

"""Run metrics recorded from workflow code (runs, node durations, tokens, cost, gate waits).

They go through `workflow.metric_meter()`, so the SDK drops them while a history is replayed and
each is counted once however often a worker restarts; the worker exports them with the SDK's
own metrics (Prometheus, see docs/observability.md). Names start with `iterloop_` and labels stay
low-cardinality: workflow name, node id, node kind, status — never a run id.
"""

from __future__ import annotations

from temporalio import workflow

from workflows.contract.messages import Usage


def _meter(workflow_name: str):  # type: ignore[no-untyped-def]
    return workflow.metric_meter().with_additional_attributes({"workflow": workflow_name})


def run_started(workflow_name: str) -> None:
    _meter(workflow_name).create_counter("iterloop_runs_started", "Runs started", "1").add(1)


def run_ended(workflow_name: str, status: str) -> None:
    _meter(workflow_name).create_counter("iterloop_runs_ended", "Runs that ended, by final status", "1").add(
        1, {"status": status})


def node_finished(workflow_name: str, node_id: str, kind: str, seconds: float, status: str) -> None:
    _meter(workflow_name).create_histogram_float(
        "iterloop_node_duration", "Wall time of one node execution", "s").record(
        max(seconds, 0.0), {"node": node_id, "kind": kind, "status": status})


def llm_usage(workflow_name: str, node_id: str, usage: Usage) -> None:
    meter = _meter(workflow_name)
    labels = {"node": node_id, "model": usage.model or "unknown"}
    for kind, count in (("input", usage.input_tokens), ("output", usage.output_tokens),
                        ("cached", usage.cached_tokens), ("reasoning", usage.reasoning_tokens)):
        if count:
            meter.create_counter("iterloop_llm_tokens", "Model tokens, by kind", "1").add(
                count, {**labels, "kind": kind})
    if usage.cost_usd:
        meter.create_histogram_float("iterloop_llm_cost", "USD cost of one model turn", "USD").record(
            usage.cost_usd, labels)


def gate_answered(workflow_name: str, gate: str, wait_seconds: float) -> None:
    _meter(workflow_name).create_histogram_float(
        "iterloop_gate_wait", "Time a human gate stayed open before its answer", "s").record(
        max(wait_seconds, 0.0), {"gate": gate})

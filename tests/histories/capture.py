"""Record the replay corpus: run representative workflows to the end and save their histories.

    .venv/bin/python tests/histories/capture.py            # every scenario
    .venv/bin/python tests/histories/capture.py gate_update # only some

It starts its own dev server and an in-process worker (offline, scripted model), runs each
scenario under the workflow id `corpus-<name>`, and writes `tests/histories/<name>.json` (a
continued-as-new chain is written as `<name>.1.json`, `<name>.2.json`, …). `test_replay.py`
replays every file with the current GraphRun code. See README.md for when to re-run this.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from runs import all_runs_history, finish, running_worker, start, start_local_env, wait_for  # noqa: E402
from temporalio.client import Client, WorkflowFailureError, WorkflowHistory, WorkflowUpdateFailedError  # noqa: E402

from workflows.contract.state import Answer  # noqa: E402

#: Workflow ids are `corpus-<scenario>`; test_replay.py derives them from the file names.
ID_PREFIX = "corpus-"

REVIEW = """
schema verdict:
  approved: bool
  summary: string
agent writer:
  model: "scripted"
  output: verdict
judge reviewer:
  model: "scripted"
  output: verdict
workflow review:
  entry: writer
  writer -> reviewer with { draft: "{{outputs.writer.summary}}" }
  reviewer -> done when approved
  reviewer -> writer when not approved as revise(2)
  reviewer -> fail
"""

FAN = """
vars:
  marker: string
schema r:
  score: int
agent a:
  model: "scripted"
  output: r
agent b:
  model: "scripted"
  output: r
tool broken:
  command: "test -f {{vars.marker}}"
router split:
  mode: fan_out_all
join merge:
  strategy: STRATEGY
  require: [a, b]
workflow fan:
  entry: split
  split -> a
  split -> b
  split -> broken
  a -> merge with { ra: "{{outputs.a.score}}" }
  b -> merge with { rb: "{{outputs.b.score}}" }
  broken -> merge
  merge -> done
"""

GATE = """
schema decision:
  approved: bool
  level: string [enum: "low", "high"]
prompt ask:
  Approve {{input.plan}}?
agent planner:
  model: "scripted"
human approval:
  instructions: ask
  output: decision
workflow gated:
  entry: planner
  planner -> approval with { plan: "{{outputs.planner.text}}" }
  approval -> done when approved
  approval -> fail when not approved
"""

EARLY_GATE = GATE.replace('agent planner:\n  model: "scripted"', 'wait planner:\n  duration: "1s"').replace(
    'planner -> approval with { plan: "{{outputs.planner.text}}" }', "planner -> approval")

ROUTERS = """
agent a:
  model: "scripted"
agent b:
  model: "scripted"
agent c:
  model: "scripted"
router rr:
  mode: round_robin
router smart:
  mode: llm
  model: "scripted"
  multi: true
agent gather:
  model: "scripted"
  await: wait_all
workflow routes:
  entry: smart
  smart -> a
  smart -> b
  a -> gather
  b -> gather
  gather -> rr
  rr -> c
  rr -> done
  c -> rr as again(3)
"""

LOOP = """
schema tick:
  more: bool
agent step:
  model: "scripted"
  output: tick
workflow long:
  entry: step
  step -> step when more as spin(12)
  step -> done
"""

TOOLS_AND_SESSIONS = """
schema finding:
  summary: string
agent analyst:
  model: "scripted"
  output: finding
  tools: [sum_values, echo]
  tool_policy: [sum_values]
agent critic:
  model: "scripted"
  session: inherit
agent forked:
  model: "scripted"
  session: fork
workflow tooled:
  entry: analyst
  analyst -> critic
  critic -> forked with { _session_id: "{{outputs.analyst._session_id}}" }
  forked -> done
"""

APPROVE = Answer(gate="approval", answers={"approved": True, "level": "high"}, answered_by="ada")


async def linear_loop_judge(client: Client, tq: str, wid: str, tmp: Path) -> None:
    handle = await start(client, tq, REVIEW, workflow_id=wid, script={
        "reviewer": [{"approved": False, "summary": "too short"}, {"approved": True, "summary": "good"}]})
    assert (await finish(handle)).status == "finished"


async def fan_out_best_effort(client: Client, tq: str, wid: str, tmp: Path) -> None:
    handle = await start(client, tq, FAN.replace("STRATEGY", "best_effort"), workflow_id=wid, max_attempts=1,
                         inputs={"marker": str(tmp / "missing")}, script={"a": {"score": 1}, "b": {"score": 2}})
    result = await finish(handle)
    assert result.status == "finished" and result.outputs["merge"]["_failed_branches"], result


EACH = """
vars:
  numbers: json = [1, 2, 3, 4, 5, 6]
schema squared:
  sq: int
router each_number:
  mode: fan_out_each
  over: "{{vars.numbers}}"
  parallelism: 2
tool square:
  command: `n={{input.n}}; [ $n -ne 4 ] || exit 3; printf '{"sq": %d}' $((n*n))`
  output: squared
join collect:
  strategy: best_effort
workflow squares:
  entry: each_number
  each_number -> square with { n: "{{input.item}}" }
  square -> collect
  collect -> done
"""


async def fan_out_each_best_effort(client: Client, tq: str, wid: str, tmp: Path) -> None:
    """Six items, two at a time, one failing (a `fan_out_each` router, best_effort join)."""
    handle = await start(client, tq, EACH, workflow_id=wid, max_attempts=1)
    result = await finish(handle)
    assert result.status == "finished" and len(result.outputs["collect"]["results"]) == 5, result


FOREACH = """
vars:
  numbers: json = [1, 2, 3]
  marker: string
router each_number:
  mode: foreach
  over: "{{vars.numbers}}"
tool add:
  command: `n={{input.n}}; [ $n -ne 2 ] || [ -e {{vars.marker}} ] || exit 3; printf '{"n": %d, "before": %s}' $n {{input.before}}`
join collect:
  strategy: wait_all
workflow totals:
  entry: each_number
  each_number -> add with { n: "{{input.item}}", before: "{{input.results}}" }
  add -> collect
  collect -> done
"""


async def foreach_parked_then_retried(client: Client, tq: str, wid: str, tmp: Path) -> None:
    """Three items one after another (a `foreach` router); the second parks until retried."""
    marker = tmp / "marker"
    handle = await start(client, tq, FOREACH, workflow_id=wid, max_attempts=1, inputs={"marker": str(marker)})
    await wait_for(handle, lambda v: v.status == "failed_resumable")
    marker.write_text("fixed")
    await handle.signal("retry", "add")
    result = await finish(handle)
    assert result.status == "finished" and [r["item"] for r in result.outputs["collect"]["results"]] == [1, 2, 3], result


async def subbot_child_run(client: Client, tq: str, wid: str, tmp: Path) -> None:
    """A `subbot` node running another file as a child workflow (`execute_child_workflow`)."""
    import dsl

    (tmp / "child.iter").write_text(
        'vars:\n  n: int = 1\nschema squared:\n  sq: int\ntool square:\n'
        "  command: `n={{vars.n}}; printf '{\"sq\": %d}' $((n*n))`\n  output: squared\n"
        "workflow child:\n  entry: square\n  square -> done\n")
    (tmp / "parent.iter").write_text(
        'subbot squarer:\n  bot: "child.iter"\nworkflow parent:\n  entry: squarer\n  squarer -> done\n')
    wf = dsl.check_file(tmp / "parent.iter").workflow
    assert wf is not None
    handle = await start(client, tq, wf, workflow_id=wid, inputs={"n": 3})
    result = await finish(handle)
    assert result.status == "finished" and result.outputs["squarer"]["square"] == {"sq": 9}, result


async def parallel_shell_branches(client: Client, tq: str, wid: str, tmp: Path) -> None:
    """Two shell branches of a fan-out run at the same time (the `parallel-shell-branches` marker)."""
    src = FAN.replace('agent b:\n  model: "scripted"\n  output: r\n', 'tool b:\n  command: "sleep 0.3; echo 2"\n')
    src = src.replace('tool broken:\n  command: "test -f {{vars.marker}}"', 'tool broken:\n  command: "sleep 0.3"')
    src = src.replace('"{{outputs.b.score}}"', '"{{outputs.b.result}}"')
    handle = await start(client, tq, src.replace("STRATEGY", "wait_all"), workflow_id=wid,
                         inputs={"marker": "unused"}, script={"a": {"score": 1}})
    assert (await finish(handle)).status == "finished"


async def wait_all_parked_then_retried(client: Client, tq: str, wid: str, tmp: Path) -> None:
    marker = tmp / "marker"
    handle = await start(client, tq, FAN.replace("STRATEGY", "wait_all"), workflow_id=wid, max_attempts=1,
                         inputs={"marker": str(marker)}, script={"a": {"score": 1}, "b": {"score": 2}})
    await wait_for(handle, lambda v: v.status == "failed_resumable")
    marker.write_text("fixed")
    await handle.signal("retry", "")
    assert (await finish(handle)).status == "finished"


async def gate_answered_by_update(client: Client, tq: str, wid: str, tmp: Path) -> None:
    handle = await start(client, tq, GATE, workflow_id=wid, script={"planner": {"text": "ship v2"}})
    await wait_for(handle, lambda v: v.status == "waiting_human")
    await handle.execute_update("answer", APPROVE)
    assert (await finish(handle)).status == "finished"


async def gate_answered_by_early_signal(client: Client, tq: str, wid: str, tmp: Path) -> None:
    handle = await start(client, tq, EARLY_GATE, workflow_id=wid)
    await handle.signal("answer", APPROVE.model_copy(update={"answered_by": "slack:U1", "in_advance": True}))
    assert (await finish(handle)).status == "finished"
    events = await handle.query("events", 0)
    assert "answer_queued" in [e["type"] for e in events], "the answer should arrive before the gate opens"


async def gate_answers_refused_then_in_advance(client: Client, tq: str, wid: str, tmp: Path) -> None:
    """One answer per opening: a bare answer before the gate opens is refused (the
    `one-answer-per-opening` patch marker), one sent in advance answers it, a late one is refused."""
    handle = await start(client, tq, EARLY_GATE, workflow_id=wid)
    await handle.signal("answer", APPROVE.model_copy(update={"answered_by": "slack:U1"}))
    await handle.signal("answer", APPROVE.model_copy(update={"answered_by": "slack:U2", "in_advance": True}))
    assert (await finish(handle)).status == "finished"
    events = await handle.query("events", 0)
    rejected = [e["data"]["by"] for e in events if e["type"] == "answer_rejected"]
    assert rejected == ["slack:U1"] and "answer_queued" in [e["type"] for e in events], events


async def llm_router_multi_round_robin(client: Client, tq: str, wid: str, tmp: Path) -> None:
    handle = await start(client, tq, ROUTERS, workflow_id=wid, script={"smart": [["a", "b"]]})
    assert (await finish(handle)).status == "finished"


async def budget_stop(client: Client, tq: str, wid: str, tmp: Path) -> None:
    src = REVIEW.replace("  entry: writer", "  entry: writer\n  budget:\n    max_iterations: 3")
    handle = await start(client, tq, src, workflow_id=wid, script={"reviewer": {"approved": False, "summary": "no"}})
    assert (await finish(handle)).status == "budget_exceeded"


async def budget_parked_then_raised(client: Client, tq: str, wid: str, tmp: Path) -> None:
    """A budget stop parks the run (waiting_budget); a refused raise, then a raise, and it finishes
    without running its finished nodes again."""
    from workflows.contract.state import BudgetRaise

    src = REVIEW.replace("revise(2)", "revise(3)").replace("  entry: writer", "  entry: writer\n  budget:\n"
                                                           "    max_cost_usd: 0.025")
    script = {"cost_per_call_usd": 0.01, "reviewer": [{"approved": False, "summary": "no"},
                                                      {"approved": True, "summary": "yes"}]}
    handle = await start(client, tq, src, workflow_id=wid, script=script, on_budget="park")
    await wait_for(handle, lambda v: v.status == "waiting_budget")
    try:
        await handle.execute_update("raise_budget", BudgetRaise(max_cost_usd=0.01))
        raise AssertionError("a lower limit should be refused")
    except WorkflowUpdateFailedError:
        pass
    await handle.execute_update("raise_budget", BudgetRaise(max_cost_usd=0.1, by="ada"))
    assert (await finish(handle)).status == "finished"


async def paused_granted_guarded(client: Client, tq: str, wid: str, tmp: Path) -> None:
    """Pause while a gate waits, a loop grant, the hold at the next node, resume; then the loop
    budget guard leaves the loop for its exit when another round would not fit the budget."""
    from workflows.contract.state import LoopGrant, PauseRequest

    src = GATE_THEN_LOOP
    handle = await start(client, tq, src, workflow_id=wid, on_budget="park",
                         script={"cost_per_call_usd": 0.01, "reviewer": {"approved": False, "summary": "no"}})
    await wait_for(handle, lambda v: v.status == "waiting_human")
    await handle.execute_update("pause", PauseRequest(by="ada"))
    await handle.execute_update("grant_iterations", LoopGrant(loop="revise", iterations=2, by="ada"))
    await handle.execute_update("answer", Answer(gate="go", answers={"approved": True}))
    await wait_for(handle, lambda v: v.status == "paused")
    await handle.execute_update("resume", PauseRequest(by="ada"))
    assert (await finish(handle)).status == "finished"
    assert "loop_budget_guard" in [e["type"] for e in await handle.query("events", 0)]


GATE_THEN_LOOP = """
schema verdict:
  approved: bool
  summary: string
schema decision:
  approved: bool
human go:
  output: decision
agent writer:
  model: "scripted"
  output: verdict
judge reviewer:
  model: "scripted"
  output: verdict
workflow gated_loop:
  entry: go
  budget:
    max_cost_usd: 0.055
  go -> writer
  writer -> reviewer with { draft: "{{outputs.writer.summary}}" }
  reviewer -> done when approved
  reviewer -> writer when not approved as revise(1)
  reviewer -> done
"""


async def cancelled_at_gate(client: Client, tq: str, wid: str, tmp: Path) -> None:
    handle = await start(client, tq, GATE, workflow_id=wid, script={"planner": {"text": "ship v2"}})
    await wait_for(handle, lambda v: v.status == "waiting_human")
    await handle.cancel()
    try:
        await finish(handle)
    except WorkflowFailureError:
        return
    raise AssertionError("the cancelled run finished")


async def continue_as_new(client: Client, tq: str, wid: str, tmp: Path) -> None:
    handle = await start(client, tq, LOOP, workflow_id=wid, continue_as_new_after_events=30,
                         script={"step": {"more": True}})
    assert (await finish(handle)).status == "finished"


async def tool_loop_and_sessions(client: Client, tq: str, wid: str, tmp: Path) -> None:
    turns = [{"tool_calls": [{"name": "sum_values", "arguments": {"values": [1, 2]}},
                             {"name": "echo", "arguments": {"x": 1}}]},  # echo: denied by the policy
             {"tool_calls": [{"name": "sum_values", "arguments": {"values": [3]}}]},
             {"summary": "three and three"}]
    handle = await start(client, tq, TOOLS_AND_SESSIONS, workflow_id=wid, script={"analyst": {"turns": turns}})
    result = await finish(handle)
    assert result.status == "finished" and result.outputs["critic"]["_session_id"] == "analyst#1", result
    events = [e["type"] for e in await handle.query("events", 0)]
    assert events.count("tool_called") == 2 and events.count("tool_denied") == 1, events


async def preset_gate_stop_after_notify(client: Client, tq: str, wid: str, tmp: Path) -> None:
    """A gate answered by the run's options, a webhook notification, and --stop-after."""
    import http.server
    import threading

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        handle = await start(client, tq, GATE, workflow_id=wid, script={"planner": {"text": "ship v2"}},
                             gate_answers={"approval": {"approved": True, "level": "low"}}, stop_after=["approval"],
                             notify={"webhooks": [f"http://127.0.0.1:{server.server_port}/hook"]})
        result = await finish(handle)
    finally:
        server.shutdown()
    assert result.status == "finished" and "stopped after 'approval'" in result.reason, result
    events = [e["type"] for e in await handle.query("events", 0)]
    assert "notified" in events, events


NESTED = """
schema look:
  more: bool
schema round:
  again: bool
agent watch:
  model: "scripted"
  output: look
agent wrap:
  model: "scripted"
  output: round
workflow nested:
  entry: watch
  watch -> watch when more as looks(1)
  watch -> wrap
  wrap -> watch when again as cycle(1)
  wrap -> done
"""


async def nested_loops_reset(client: Client, tq: str, wid: str, tmp: Path) -> None:
    handle = await start(client, tq, NESTED, workflow_id=wid, script={"watch": {"more": True}, "wrap": {"again": True}})
    assert (await finish(handle)).status == "finished"
    assert (await handle.query("state")).get("nodes", {}).get("watch", {}).get("visits") == 4


SLOW = """
tool slow:
  command: "sleep 30"
workflow slow:
  entry: slow
  slow -> done
"""


async def cancelled_during_activity(client: Client, tq: str, wid: str, tmp: Path) -> None:
    handle = await start(client, tq, SLOW, workflow_id=wid)
    await wait_for(handle, lambda v: "slow" in v.current_nodes)
    await handle.cancel()
    try:
        await finish(handle)
    except WorkflowFailureError:
        return
    raise AssertionError("the cancelled run finished")


REWIND = """
schema plan:
  flag_key: string
schema decision:
  approved: bool
agent planner:
  model: "scripted"
  output: plan
human approval:
  output: decision
tool apply:
  command: "echo applied {{outputs.planner.flag_key}}"
workflow rewind:
  entry: planner
  planner -> approval
  approval -> apply when approved
  approval -> fail when not approved
  apply -> done
"""


async def rewound_to_before_a_gate(client: Client, tq: str, wid: str, tmp: Path) -> None:
    """A run answered at its gate, then rewound to the planner with a new script: a new execution of
    the same id (`RunInput.resume`), its gate re-opened and answered again."""
    from runtime.run_rewind import read_source, resumed_input, start_resumed
    from runtime.settings import Settings
    from workflows.contract.rewind import rewound
    from workflows.contract.state import RunResult

    handle = await start(client, tq, REWIND, workflow_id=wid, script={"planner": {"flag_key": "first"}})
    await wait_for(handle, lambda v: bool(v.open_gates))
    await handle.execute_update("answer", Answer(gate="approval", answers={"approved": True}))
    assert (await finish(handle)).status == "finished"
    settings = Settings(address=client.service_client.config.target_host, task_queue=tq)
    source = await read_source(client, handle, settings, wid)
    carried = rewound(source.state, source.run_input.workflow, "planner", vars={}, events_kept=500)
    run_input = resumed_input(source, carried, kind="rewind", node="planner", from_run=wid, by="capture",
                              overrides={}, script={"planner": {"flag_key": "second"}})
    await start_resumed(client, settings, run_input, run_id=wid, task_queue=tq, replace=handle, running=False,
                        details="rewound to planner by capture")
    again = client.get_workflow_handle(wid, result_type=RunResult)
    await wait_for(again, lambda v: bool(v.open_gates))
    await again.execute_update("answer", Answer(gate="approval", answers={"approved": True}))
    assert "applied second" in str((await finish(again)).outputs["apply"])


async def mcp_tool_node(client: Client, tq: str, wid: str, tmp: Path) -> None:
    """A tool node calling an MCP server's tool (`iterloop.mcp_call`, the `mcp-tool-nodes` marker)."""
    src = f"""
mcp_server time:
  transport: stdio
  command: "{sys.executable}"
  args: ["-m", "mcp_server_time", "--local-timezone", "UTC"]
vars:
  timezone: string = "Europe/Paris"
tool now:
  call: mcp.time.get_current_time
workflow clock:
  entry: now
  now -> done
"""
    result = await finish(await start(client, tq, src, workflow_id=wid, shell_cwd=str(tmp)))
    assert result.status == "finished" and "Europe/Paris" in str(result.outputs["now"]), result


async def delegated_node(client: Client, tq: str, wid: str, tmp: Path) -> None:
    """A `backend: "claude_code"` agent in a loop, continuing its session (`iterloop.delegate`, the
    `delegation-backends` marker); offline, the script answers it and no CLI runs."""
    src = """
schema change:
  summary: string
schema verdict:
  approved: bool
agent implementer:
  backend: "claude_code"
  output: change
  session: inherit
judge reviewer:
  model: "anthropic/claude-test"
  output: verdict
  readonly: true
workflow w:
  entry: implementer
  implementer -> reviewer
  reviewer -> done when approved
  reviewer -> implementer when not approved as revise(2) with {
    _session_id: "{{outputs.implementer._session_id}}"
  }
  reviewer -> fail
"""
    handle = await start(client, tq, src, workflow_id=wid, shell_cwd=str(tmp), script={
        "implementer": [{"summary": "v1"}, {"summary": "v2"}], "reviewer": [{"approved": False}, {"approved": True}]})
    result = await finish(handle)
    assert result.status == "finished" and result.outputs["implementer"]["summary"] == "v2", result
    events = [e["type"] for e in await handle.query("events", 0)]
    assert events.count("delegate_step") == 2, events


async def delegated_node_asks_a_person(client: Client, tq: str, wid: str, tmp: Path) -> None:
    """A tool node calling an MCP server, then a delegated agent with `interaction:`: the server is
    checked before the first node (`iterloop.mcp_check`, the `mcp-health-check` marker; an offline run
    checks its tool nodes' servers only), the agent asks, its gate is answered, it is resumed (the
    `delegated-interaction` marker)."""
    src = f"""
mcp_server time:
  transport: stdio
  command: "{sys.executable}"
  args: ["-m", "mcp_server_time", "--local-timezone", "UTC"]
vars:
  timezone: string = "UTC"
schema change:
  summary: string
tool now:
  call: mcp.time.get_current_time
agent implementer:
  backend: "claude_code"
  interaction: human
  tool_max_steps: 5
  tools: [mcp.time.*]
  output: change
workflow w:
  entry: now
  now -> implementer
  implementer -> done
"""
    handle = await start(client, tq, src, workflow_id=wid, shell_cwd=str(tmp), script={
        "implementer": {"summary": "renamed", "_needs_interaction": True, "_interaction_questions": ["Name?"]}})
    await wait_for(handle, lambda v: bool(v.open_gates))
    await handle.execute_update("answer", Answer(gate="implementer", answers={"name": "trunk"}))
    result = await finish(handle)
    assert result.status == "finished" and result.outputs["implementer"]["summary"] == "renamed", result


TOOL_APPROVAL = """
schema finding:
  summary: string
agent analyst:
  model: "scripted"
  output: finding
  tools: [sum_values]
  tool_approval: [sum_values]
workflow approving:
  entry: analyst
  analyst -> done
"""


async def tool_calls_approved_edited_rejected(client: Client, tq: str, wid: str, tmp: Path) -> None:
    """`tool_approval:`: three tool calls wait at the node's gate (the `tool-call-approval` marker);
    one is approved, one edited, one rejected with a message for the model."""
    turns = [{"tool_calls": [{"name": "sum_values", "arguments": {"values": [1, 2]}},
                             {"name": "sum_values", "arguments": {"values": [3]}}]},
             {"tool_calls": [{"name": "sum_values", "arguments": {"values": [4]}}]},
             {"summary": "reviewed"}]
    handle = await start(client, tq, TOOL_APPROVAL, workflow_id=wid, script={"analyst": {"turns": turns}})
    answered: set[str] = set()
    for answers in ({"decision": "approve"}, {"decision": "edit", "arguments": {"values": [30]}},
                    {"decision": "reject", "message": "enough sums"}):
        view = await wait_for(handle, lambda v: any(g.interaction_id not in answered for g in v.open_gates))
        gate = next(g for g in view.open_gates if g.interaction_id not in answered)
        answered.add(gate.interaction_id)
        await handle.execute_update("answer", Answer(gate="analyst", answers=answers, answered_by="ada",
                                                     interaction_id=gate.interaction_id))
    result = await finish(handle)
    assert result.status == "finished" and result.outputs["analyst"]["summary"] == "reviewed", result
    events = [e["data"]["decision"] for e in await handle.query("events", 0) if e["type"] == "tool_call_reviewed"]
    assert events == ["approved", "edited", "rejected"], events


COMPUTE = """
vars:
  looks: int = 3
schema readout:
  rate: float
  users: int
agent analyst:
  model: "scripted"
  output: readout
compute verdict:
  expr:
    enough: "outputs.analyst.users >= 1000"
    lift: "round(outputs.analyst.rate / 0.04 - 1, 3)"
    look: "loop.looks.iteration"
compute ship:
  expr:
    note: "concat('ship at ', join([outputs.verdict.lift], ''), ' after ', join([loop.looks.iteration], ''))"
workflow w:
  entry: analyst
  analyst -> verdict
  verdict -> ship when "enough && lift > 0.02"
  verdict -> analyst when "!enough" as looks("{{vars.looks}}")
  verdict -> fail when else
  ship -> done
"""


async def compute_and_expression_edges(client: Client, tq: str, wid: str, tmp: Path) -> None:
    handle = await start(client, tq, COMPUTE, workflow_id=wid, script={
        "analyst": [{"rate": 0.041, "users": 300}, {"rate": 0.0436, "users": 1500}]})
    result = await finish(handle)
    assert result.status == "finished" and result.outputs["ship"] == {"note": "ship at 0.09 after 1"}, result


BUILTIN_TOOLS = """
vars:
  values: json = [1, 2.5]
schema totals:
  total: float
  count: int
tool first:
  call: echo
tool add:
  call: sum_values
  output: totals
router split:
  mode: fan_out_all
tool left:
  call: echo
tool right:
  call: echo
join merge:
  strategy: wait_all
tool shout:
  command: "echo hi"
workflow builtins:
  entry: first
  first -> add with { values: "{{vars.values}}" }
  add -> split
  split -> left with { total: "{{outputs.add.total}}" }
  split -> right with { count: "{{outputs.add.count}}" }
  left -> merge with { l: "{{outputs.left.total}}" }
  right -> merge with { r: "{{outputs.right.count}}" }
  merge -> shout
  shout -> done
"""


async def _builtin_tool_nodes(client: Client, tq: str, wid: str, **options: object) -> None:
    handle = await start(client, tq, BUILTIN_TOOLS, workflow_id=wid, **options)
    result = await finish(handle)
    assert result.status == "finished" and result.outputs["merge"] == {"l": 3.5, "r": 2}, result


async def builtin_tool_nodes_regular(client: Client, tq: str, wid: str, tmp: Path) -> None:
    """`call:` nodes of builtin tools, each an `iterloop.tool_call` activity: the file was recorded
    before the `local-builtin-tools` patch (no marker); re-recorded, the run asks for that path."""
    await _builtin_tool_nodes(client, tq, wid, local_tools=False)


async def builtin_tool_nodes_local(client: Client, tq: str, wid: str, tmp: Path) -> None:
    """The same run with its echo/sum_values nodes as local activities (markers, the
    `local-builtin-tools` patch marker), a fan-out of two of them, then a shell node (an activity)."""
    await _builtin_tool_nodes(client, tq, wid)


INLINE_TOOL_NODES = """
vars:
  values: json = [1, 2.5]
schema totals:
  total: float
  count: int
tool first:
  call: echo
tool add:
  call: sum_values
  output: totals
router split:
  mode: fan_out_all
tool left:
  call: echo
tool right:
  call: echo
join merge:
  strategy: wait_all
tool link:
  call: echo
workflow inline:
  entry: first
  first -> add with { values: "{{vars.values}}" }
  add -> split
  split -> left with { total: "{{outputs.add.total}}" }
  split -> right with { count: "{{outputs.add.count}}" }
  left -> merge with { l: "{{outputs.left.total}}" }
  right -> merge with { r: "{{outputs.right.count}}" }
  merge -> link with { url: "https://h/x?token={{outputs.merge.r}}" }
  link -> done
"""


async def builtin_tool_nodes_inline(client: Client, tq: str, wid: str, tmp: Path) -> None:
    """echo/sum_values nodes evaluated in the workflow (the `inline-pure-tools` patch marker, no
    activity): a chain, a fan-out of two, a join; then an echo of secret-shaped text, which the
    workflow leaves to the tool's local activity (the `local-builtin-tools` marker) to redact."""
    handle = await start(client, tq, INLINE_TOOL_NODES, workflow_id=wid)
    result = await finish(handle)
    assert result.status == "finished" and result.outputs["merge"] == {"l": 3.5, "r": 2}, result
    assert result.outputs["link"] == {"url": "https://h/x?token=[redacted]"}, result


Scenario = Callable[[Client, str, str, Path], Awaitable[None]]
SCENARIOS: dict[str, Scenario] = {f.__name__: f for f in (
    linear_loop_judge, fan_out_best_effort, wait_all_parked_then_retried, gate_answered_by_update,
    gate_answered_by_early_signal, gate_answers_refused_then_in_advance, llm_router_multi_round_robin, budget_stop, cancelled_at_gate, continue_as_new,
    tool_loop_and_sessions, preset_gate_stop_after_notify, nested_loops_reset, cancelled_during_activity,
    rewound_to_before_a_gate, parallel_shell_branches, mcp_tool_node, delegated_node,
    delegated_node_asks_a_person, tool_calls_approved_edited_rejected, fan_out_each_best_effort,
    subbot_child_run, foreach_parked_then_retried,
    budget_parked_then_raised, paused_granted_guarded, compute_and_expression_edges,
    builtin_tool_nodes_regular, builtin_tool_nodes_local, builtin_tool_nodes_inline)}


def write_histories(name: str, chain: list[WorkflowHistory]) -> list[Path]:
    for old in [*HERE.glob(f"{name}.json"), *HERE.glob(f"{name}.*.json")]:
        old.unlink()
    if len(chain) == 1:
        paths = [HERE / f"{name}.json"]
    else:
        paths = [HERE / f"{name}.{i}.json" for i in range(1, len(chain) + 1)]
    for path, history in zip(paths, chain):
        path.write_text(history.to_json() + "\n")
    return paths


async def capture(names: list[str]) -> None:
    logging.getLogger("temporalio.activity").setLevel(logging.ERROR)  # the failing branches are on purpose
    env = await start_local_env()
    task_queue = f"capture-{uuid.uuid4().hex[:8]}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            async with running_worker(env.client, task_queue):
                for name in names:
                    wid = ID_PREFIX + name
                    await SCENARIOS[name](env.client, task_queue, wid, Path(tmp))
                    chain = await all_runs_history(env.client, wid)
                    for path in write_histories(name, chain):
                        print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size // 1024} KiB)")
    finally:
        await env.shutdown()


def main(argv: list[str]) -> int:
    unknown = [n for n in argv if n not in SCENARIOS]
    if unknown:
        print(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    asyncio.run(capture(argv or list(SCENARIOS)))
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    # Skip interpreter shutdown: the SDK's Rust threads can abort it ("Fatal Python error:
    # PyGILState_Release", temporalio/sdk-python#300) and turn success into exit code 134.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

"""Every property each block of the language accepts, as data: name, what its value is, what it does.

The parser keeps its readers next to the code that reads each value (`dsl/parser.py`); this
table is what documentation is generated from (the agent skill's `references/properties.md`,
`runtime/skill.py`), so a reader of the docs and the parser cannot disagree:
tests/dsl/test_properties.py records the property names the parser accepts for every block and
compares them with this table. Adding a property means a reader in the parser and a line here.
"""

from __future__ import annotations

from dataclasses import dataclass

from .ir import REASONING_EFFORTS
from .parser import AWAIT_MODES, HUMAN_MODES, INTERACTIONS, ROUTER_MODES, SESSION_MODES, TRANSPORTS


@dataclass(frozen=True, slots=True)
class Property:
    """One property: ``value`` says what to write, ``meaning`` what it does (one sentence)."""

    name: str
    value: str
    meaning: str


def _choice(values: tuple[str, ...] | list[str]) -> str:
    return " | ".join(f"`{v}`" for v in values)


_AWAIT = Property("await", _choice(AWAIT_MODES),
                  "Makes the node a convergence point for parallel branches (wait for all, or tolerate failures).")
_MODEL = Property("model", 'string, e.g. `"anthropic/claude-sonnet-4-5"` or `"${MODEL}"`',
                  "The model as provider/model-id; `${ENV}` is resolved on the worker.")
_BACKEND = Property("backend", 'string (`"claude_code"`, `"codex"`)',
                    "Delegation backend: a coding agent's CLI does the agent's or judge's work "
                    "(docs/tools.md, Delegation); another name warns (C111).")
_DELEGATE = Property("delegate", "string", "Same as `backend` (README spelling).")
_SYSTEM = Property("system", "prompt name", "System prompt.")
_USER = Property("user", "prompt name", "User message.")
_PUBLISH = Property("publish", "artifact name",
                    "Publish the node's output as an artifact, read as `{{artifacts.NAME}}`.")
_INPUT = Property("input", "schema name", "Shape of the node's input; `{{input.X}}` is checked against it (C034).")
_OUTPUT = Property("output", "schema name",
                   "Shape of the node's output; its bool fields drive `when`, its fields are what "
                   "`{{outputs.NODE.FIELD}}` reads.")
_INTERACTION_PROMPT = Property("interaction_prompt", "prompt name", "Guidance on when to ask (C109 if undeclared).")
_INTERACTION_MODEL = Property("interaction_model", "string", "Model that answers in the `llm` interaction modes.")

_AGENT = (
    _MODEL, _BACKEND, _DELEGATE, _INPUT, _OUTPUT, _PUBLISH, _SYSTEM, _USER,
    Property("session", _choice(SESSION_MODES),
             "Conversation continuity: a new conversation (`fresh`, the default), or continue / fork the one "
             "whose `_session_id` arrives in the input."),
    Property("tools", "list of tool names (`get_funnel_data`, `mcp.SERVER.TOOL`, `mcp.SERVER.*`)",
             "Tools the model may call."),
    Property("tool_policy", "list of tool patterns (`name`, `ns.*`, `*`)",
             "Allowlist for this node, replacing the workflow's."),
    Property("tool_max_steps", "integer ≥ 0", "Most model ↔ tool round trips in one execution (0: runtime default)."),
    Property("tool_approval", "list of tool patterns (`name`, `ns.*`, `*`)",
             "Each call of a matching tool waits for a person: approve, edit its arguments, or reject "
             "with a message the model reads (docs/tools.md, Approving tool calls)."),
    Property("max_tokens", "integer ≥ 0",
             "Most tokens in one model reply (Iterion's): the limit of the node's model calls; unset, the "
             "worker's ITERLOOP_LLM_MAX_OUTPUT_TOKENS."),
    Property("reasoning_effort",
             _choice(REASONING_EFFORTS) + ' (Iterion\'s `xhigh` and `max` run as `extra_high`), or `"${VAR:-high}"`',
             "Extended thinking budget; the quoted form is read from the worker's environment."),
    Property("readonly", "`true` | `false`", "The node changes nothing, so it may run beside other branches."),
    Property("interaction", _choice(INTERACTIONS),
             "Lets a delegated agent ask questions mid-task (needs a backend, C029)."),
    _INTERACTION_PROMPT, _INTERACTION_MODEL, _AWAIT,
    Property("mcp", "nested block (`inherit`, `servers`, `disable`)", "MCP servers for this node."),
)

#: Block kind → its properties, in the order the reference lists them. `judge` takes exactly the
#: properties of `agent`; `mcp` is the nested block of agents, judges and the workflow.
BLOCK_PROPERTIES: dict[str, tuple[Property, ...]] = {
    "agent": _AGENT,
    "judge": _AGENT,
    "router": (
        Property("mode", _choice(ROUTER_MODES),
                 "`fan_out_all` runs every target in parallel, `condition` follows `when`, `round_robin` "
                 "alternates, `llm` lets a model pick, `fan_out_each` runs its one target once per item of a list, "
                 "`foreach` does so one item after another, in list order."),
        Property("over", 'string holding one reference, e.g. `"{{outputs.planner.items}}"`',
                 "`fan_out_each` and `foreach` only: the list mapped over; each item starts a branch (C123)."),
        Property("parallelism", "integer ≥ 0",
                 "`fan_out_each` only: items in flight at once (0: the budget's `max_parallel_branches`; "
                 "`foreach` runs one: C133)."),
        Property("multi", "`true` | `false`", "`llm` mode only: the model may pick several targets (run in parallel)."),
        Property("model", "string", "`llm` mode only: the routing model."),
        Property("backend", "string", "`llm` mode only: route through a delegation backend."),
        _DELEGATE,
        Property("system", "prompt name", "`llm` mode only: routing instructions."),
        Property("user", "prompt name", "`llm` mode only: the routing question."),
    ),
    "join": (
        Property("strategy", _choice(AWAIT_MODES), "Wait for every branch, or tolerate failed ones."),
        Property("await", _choice(AWAIT_MODES), "Same as `strategy`."),
        Property("require", "list of node names", "Branches that must succeed; each must lead into the join (C106)."),
        Property("output", "schema name", "Shape of the merged `with` values of the incoming edges."),
    ),
    "human": (
        Property("mode", _choice(list(HUMAN_MODES)),
                 "README spelling of `interaction`: always a person, a model, or a model that escalates."),
        Property("interaction", _choice(INTERACTIONS), "Who answers: `human` (default), `llm`, `llm_or_human`."),
        Property("instructions", "prompt name", "What the person (or model) is asked."),
        _INPUT,
        Property("output", "schema name",
                 "Shape of the answers; bool fields drive `when`. Required in the `llm` modes (C018)."),
        Property("publish", "artifact name", "Publish the answers as an artifact."),
        Property("min_answers", "integer ≥ 0", "How many people are meant to answer (informational)."),
        Property("timeout", 'duration string, e.g. `"48h"`, `"2d"`',
                 "How long the gate stays open; must be a positive duration (C100)."),
        Property("model", "string", "`llm` modes: the answering model."),
        _INTERACTION_MODEL,
        Property("system", "prompt name", "`llm` modes: the answering model's instructions."),
        _INTERACTION_PROMPT, _AWAIT,
    ),
    "tool": (
        Property("command", "string",
                 "Shell command (`sh -c` on the worker); every `{{…}}` reaches it as data and must stand outside "
                 "quotes (C116)."),
        Property("call", "builtin tool name",
                 "A builtin tool; its arguments are the `with` mapping of the incoming edge."),
        Property("script", "string (a `|` block)",
                 "Inline script (Iterion's), run by `language:`'s interpreter in the run's directory instead of "
                 "a `command:`; each `{{…}}` becomes code reading its value from the environment."),
        Property("language", "sh (default), bash, js/node, py/python/python3",
                 "The interpreter of `script:` (an unknown one is E020)."),
        _INPUT,
        Property("output", "schema name", "Shape of the result (declare the fields later nodes read)."),
        Property("publish", "artifact name", "Publish the result (or the command's JSON output) as an artifact."),
        _AWAIT,
    ),
    "wait": (
        Property("duration", 'duration string, e.g. `"30m"`, `"1d"`',
                 "How long the durable timer sleeps (required: C102; a bad value is C100)."),
        _AWAIT,
        Property("event", "event name", "Iterion's event wait; refused (C119): an iterloop wait is a timer."),
        Property("timeout", "duration string", "Goes with Iterion's `event:`; refused (C119)."),
    ),
    "compute": (
        Property("input", "schema name", "Shape of what the incoming edge maps in (read as `input.X`)."),
        Property("output", "schema name", "Shape of the computed fields; checked when the node runs."),
        _AWAIT,
        Property("expr", 'nested block of `FIELD: "expression"`',
                 "One output field per line, each a pure expression (docs/language.md, Expressions; C126, C127, "
                 "C128)."),
    ),
    "subbot": (
        Property("bot", 'string, e.g. `"review.iter"`',
                 "The workflow file this node runs as a child run, relative to this file (C131; C132 when it "
                 "cannot be read or compiled)."),
        Property("budget", "nested block (the `budget` properties)",
                 "The child run's budget, replacing the child file's own."),
        _AWAIT,
    ),
    "mcp_server": (
        Property("transport", _choice(list(TRANSPORTS)),
                 "How to reach the server: a program (`stdio`), streamable HTTP (`http`) or HTTP+SSE (`sse`)."),
        Property("command", "string", "stdio only: the program to start."),
        Property("args", "list of strings", "stdio only: its arguments."),
        Property("url", "string", "http and sse only: the endpoint."),
    ),
    "mcp": (
        Property("autoload_project", "`true` | `false`",
                 "Workflow level: also load the project's `.mcp.json` servers."),
        Property("inherit", "`true` | `false`", "Node level: start from the workflow's servers."),
        Property("servers", "list of server names", "Servers to add."),
        Property("disable", "list of server names", "Servers to remove."),
    ),
    "workflow": (
        Property("entry", "node name", "The first node; it receives the run's input (C008)."),
        Property("vars", "nested block of `NAME: TYPE [= DEFAULT]`", "Workflow-level variables."),
        Property("budget", "nested block", "Limits for the whole run."),
        Property("default_backend", "string", "Backend for nodes that set none."),
        Property("tool_policy", "list of tool patterns", "Allowlist of tools for the run."),
        Property("interaction", _choice(INTERACTIONS), "Default `interaction` for agents, judges and humans."),
        Property("mcp", "nested block (`autoload_project`, `servers`, `disable`)", "The run's MCP servers."),
    ),
    "budget": (
        Property("max_parallel_branches", "integer ≥ 0", "Branches running at the same time (0: no limit)."),
        Property("max_duration", 'duration string, e.g. `"90d"`', "Wall-clock limit (an unparsable value is C101)."),
        Property("max_cost_usd", "number ≥ 0", "Model spend in US dollars (0: no limit)."),
        Property("max_tokens", "integer ≥ 0", "Total tokens over all model calls (0: no limit)."),
        Property("max_iterations", "integer ≥ 0", "Total node executions (0: no limit)."),
    ),
}

"""The names of the builtin tools, and which of them change things, without loading them.

The registry (`activities/tools/registry.py`) imports the tools themselves, and with them
temporalio, the connectors, the flag providers and the statistics. `iterloop validate` must stay
light (it runs in editors and pre-commit hooks, and tests/test_cli.py checks that it loads neither
temporalio nor an LLM SDK), yet it needs the names to report a `call:` of an unknown tool (C105).
So the names live here as plain data too. tests/workflows/contract/test_tool_catalog.py checks that this
table and the registry agree: registering a tool means adding one line here.

This module imports nothing beyond the standard library; keep it that way.
"""

from __future__ import annotations

#: Builtin tool name → whether it changes something outside the run (a flag, a file). Mutating
#: tools are never offered to a `readonly` agent.
BUILTIN_TOOLS: dict[str, bool] = {
    # general purpose (activities/tools/builtins.py)
    "echo": False,
    "sum_values": False,
    # the growth-experimentation tools (activities/tools/: funnels, statistics, experiments, feature_flags, learning)
    "get_funnel_data": False,
    "detect_anomalies": False,
    "get_historical_experiments": False,
    "calculate_sample_size": False,
    "create_feature_flag": True,
    "get_experiment_results": False,
    "calculate_significance": False,
    "check_srm": False,
    "check_guardrails": False,
    "write_learning_doc": True,
}

#: Builtin tool name → its bound arguments, each with the run var it comes from (argument → var).
#: A model never sees nor sets these; when a model calls the tool, the workflow fills them from
#: the run's vars (activities/tools/registry.py, "Bound arguments"). Tools without any are absent.
BOUND_ARGUMENTS: dict[str, dict[str, str]] = {
    "get_funnel_data": {"connector": "connector"},
    "detect_anomalies": {"connector": "connector"},
    "get_historical_experiments": {"connector": "connector"},
    "get_experiment_results": {"connector": "connector"},
    "create_feature_flag": {"provider": "flag_provider"},
}

#: Builtin tools fast and free of side effects enough that a `call:` node runs them as a Temporal
#: *local activity* (in the worker running the workflow task, the result recorded in a marker: no
#: round trip through the server), each with the `workflow.patched` id it was added under: a run
#: recorded before a tool was listed here replays it as an ordinary activity, so adding a tool
#: needs a new id, and removing one breaks the runs in flight that ran it locally. Only tools that
#: neither read nor write anything outside their arguments belong here (not the connectors, flags,
#: notifications, MCP, shell); the tool's own declaration agrees (`ToolSet.tool(name, local=True)`,
#: checked by the registry). The rule for a node: docs/runtime.md, "What costs a server round trip".
LOCAL_TOOLS: dict[str, str] = {
    "echo": "local-builtin-tools",
    "sum_values": "local-builtin-tools",
    "calculate_sample_size": "local-builtin-tools",
    "calculate_significance": "local-builtin-tools",
    "check_srm": "local-builtin-tools",
    "check_guardrails": "local-builtin-tools",
}

#: Local tools that are also pure, deterministic and cheap Python, evaluated inside the workflow
#: itself with no activity at all (`workflows/contract/inline_tools.py` holds their functions,
#: which the registered tools call too), each with its `workflow.patched` id: a run recorded
#: before a tool was listed here replays its local activities, so adding a tool needs a new id,
#: and removing one breaks the runs in flight that evaluated it inline. Never a tool that imports
#: numpy/scipy (the statistics stay activities: heavy imports and float results that may differ
#: between library versions would make a replay compute something else).
INLINE_TOOLS: dict[str, str] = {
    "echo": "inline-pure-tools",
    "sum_values": "inline-pure-tools",
}


def builtin_tool_names() -> frozenset[str]:
    """Every builtin tool a tool node may `call:` (what the compiler checks C105 against)."""
    return frozenset(BUILTIN_TOOLS)


def mutating_tool_names() -> frozenset[str]:
    """The builtin tools that change things."""
    return frozenset(name for name, mutating in BUILTIN_TOOLS.items() if mutating)


def bound_run_vars(tool: str) -> list[str]:
    """The run vars a workflow needs for a model to call ``tool`` (empty for most tools)."""
    return list(BOUND_ARGUMENTS.get(tool, {}).values())

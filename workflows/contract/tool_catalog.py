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


def builtin_tool_names() -> frozenset[str]:
    """Every builtin tool a tool node may `call:` (what the compiler checks C105 against)."""
    return frozenset(BUILTIN_TOOLS)


def mutating_tool_names() -> frozenset[str]:
    """The builtin tools that change things."""
    return frozenset(name for name, mutating in BUILTIN_TOOLS.items() if mutating)


def bound_run_vars(tool: str) -> list[str]:
    """The run vars a workflow needs for a model to call ``tool`` (empty for most tools)."""
    return list(BOUND_ARGUMENTS.get(tool, {}).values())

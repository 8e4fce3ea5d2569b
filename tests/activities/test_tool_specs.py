"""What a model is shown of the builtin tools, and what the turn tells the workflow about them:
bound arguments (connector, flag provider) are never shown, the run vars that fill them are
reported, and each tool's schema is built once."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from activities.llm.activity import complete_turn
from activities.llm.settings import LLMSettings
from activities.llm.tool_specs import node_tools, tool_spec
from activities.tools.spec import Tool
from workflows.contract.messages import LLMTurnRequest


def request(**kw: Any) -> LLMTurnRequest:
    return LLMTurnRequest(**{"run_id": "run-s", "node_id": "analyst", "node_kind": "agent", "model": "scripted",
                             **kw})


def test_the_connector_and_the_flag_provider_are_not_shown_to_the_model() -> None:
    specs = {s.name: s for s in node_tools(request(tools=["get_funnel_data", "create_feature_flag", "sum_values"]))}
    funnel, flag = specs["get_funnel_data"].parameters, specs["create_feature_flag"].parameters
    assert "connector" not in funnel["properties"] and "funnel" in funnel["properties"]
    assert "provider" not in flag["properties"] and "flag_provider" not in flag["properties"]
    assert flag["required"] == ["flag_key"]
    assert "ConnectorChoice" not in str(funnel) and "FlagProviderChoice" not in str(flag)
    assert (specs["get_funnel_data"].bound, specs["create_feature_flag"].bound, specs["sum_values"].bound) == (
        ("connector",), ("flag_provider",), ())


def test_definitions_still_used_by_other_fields_are_kept() -> None:
    parameters = node_tools(request(tools=["get_experiment_results"]))[0].parameters
    assert "connector" not in parameters["properties"] and "GuardrailMetric" in parameters["$defs"]


async def test_the_turn_reports_the_run_vars_that_fill_bound_arguments() -> None:
    script = {"analyst": {"turns": [{"tool_calls": [{"name": "get_funnel_data", "arguments": {}}]}]}}
    result = await complete_turn(request(tools=["get_funnel_data", "create_feature_flag", "echo"], script=script),
                                 LLMSettings())
    assert {t.name: t.bound for t in result.tools} == {
        "get_funnel_data": ["connector"], "create_feature_flag": ["flag_provider"], "echo": []}


def test_a_tools_schema_is_built_once_and_shared_by_every_turn() -> None:
    built: list[str] = []

    class Query(BaseModel):
        metric: str = Field(description="what to read")

        @classmethod
        def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
            built.append(cls.__name__)
            return super().model_json_schema(*args, **kwargs)

    async def read(args: Query) -> Query:
        return args

    t = Tool("read_metric", "Read a metric.", Query, Query, read)
    assert tool_spec(t) is tool_spec(t) and built == ["Query"]
    first = node_tools(request(tools=["get_funnel_data"]))[0]
    assert node_tools(request(tools=["get_funnel_data"], turn=2))[0].parameters is first.parameters

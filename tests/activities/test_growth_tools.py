"""The growth tools end to end on the mock connector and the local flag store (real files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from activities.tools.registry import call_tool, registry

GROWTH_TOOLS = {"get_funnel_data", "detect_anomalies", "get_historical_experiments", "calculate_sample_size",
                "create_feature_flag", "get_experiment_results", "calculate_significance", "check_guardrails",
                "check_srm", "write_learning_doc"}


def test_every_growth_tool_is_registered_with_a_schema() -> None:
    tools = registry()
    assert GROWTH_TOOLS <= set(tools)
    for name in GROWTH_TOOLS:
        schema = tools[name].json_schema()
        assert schema["type"] == "object" and tools[name].description


async def test_detect_anomalies_finds_the_mobile_checkout_drop() -> None:
    report = await call_tool("detect_anomalies", {})
    top = report["top"]
    assert top["segment"] in ("platform=ios", "platform=android")
    assert top["relative_change"] < -0.15 and top["severity"] in ("high", "critical")
    assert all(a["segment"] != "platform=web" for a in report["anomalies"])


async def test_flag_is_created_disabled_and_idempotently(tmp_path: Path) -> None:
    provider = {"name": "local", "settings": {"path": str(tmp_path / "flags.json")}}
    first = await call_tool("create_feature_flag", {"flag_key": "mobile_fix", "provider": provider})
    again = await call_tool("create_feature_flag", {"flag_key": "mobile_fix", "provider": provider})
    assert (first["enabled"], first["created"], first["status"]) == (False, True, "created_disabled")
    assert (again["enabled"], again["created"]) == (False, False)


async def test_creating_the_flag_again_reports_when_it_was_first_created(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    provider = {"name": "local", "settings": {"path": str(tmp_path / "flags.json")}}
    monkeypatch.setattr("activities.flags.local._now", lambda: "2025-05-01T08:00:00+00:00")
    first = await call_tool("create_feature_flag", {"flag_key": "mobile_fix", "provider": provider})
    retried = await call_tool("create_feature_flag", {"flag_key": "mobile_fix", "provider": provider})
    assert first["created_at"] == retried["created_at"] == "2025-05-01T08:00:00Z"  # days_running does not restart


async def test_results_significance_and_srm_agree_on_the_mock_experiment() -> None:
    results = await call_tool("get_experiment_results", {"experiment_id": "mobile_fix"})
    verdict = await call_tool("calculate_significance", {"results": results, "days_running": 14})
    srm = await call_tool("check_srm", {"observed": [v["users"] for v in results["variants"]]})
    assert srm["srm_detected"] is False
    assert verdict["decision"] == "SHIP_WINNER"
    assert "improved" in verdict["reason"]


async def test_sample_size_is_planned_for_the_sequential_test_by_default() -> None:
    plan = await call_tool("calculate_sample_size", {"baseline_rate": 0.12, "mde": 0.1, "daily_users": 4000})
    fixed = await call_tool("calculate_sample_size", {"baseline_rate": 0.12, "mde": 0.1, "daily_users": 4000,
                                                      "method": "fixed_horizon"})
    # fixed horizon: n = (z_{0.975} + z_{0.8})^2 (p2 q2 + (p2/p1)^2 p1 q1) / (p2 - p1)^2 ~ 13,200 (the relative
    # lift's test); the always-valid test pays for daily looks with more units
    assert 12_700 < fixed["n_per_arm"] < 13_700 < plan["n_per_arm"]
    assert plan["method"] == "sequential" and plan["days_needed"] == -(-plan["total"] // 4000)


async def test_learning_doc_is_written(tmp_path: Path) -> None:
    out = await call_tool("write_learning_doc", {"title": "Mobile checkout fix", "body": "It worked.",
                                                 "directory": str(tmp_path)})
    assert Path(out["path"]).read_text() == out["markdown"] == "# Mobile checkout fix\n\nIt worked.\n"
    assert (out["title"], out["bytes"]) == ("Mobile checkout fix", len(out["markdown"].encode("utf-8")))


async def test_bad_arguments_are_a_non_retryable_error() -> None:
    from temporalio.exceptions import ApplicationError

    with pytest.raises(ApplicationError) as err:
        await call_tool("calculate_sample_size", {"baseline_rate": 2})
    assert err.value.non_retryable and "baseline_rate" in str(err.value)


# -- bound arguments: what a model's call gets from the run, never from the model -------------------

async def test_the_run_vars_flag_provider_replaces_one_a_model_slipped_in(tmp_path: Path) -> None:
    store = {"name": "local", "settings": {"path": str(tmp_path / "flags.json")}}
    injected = {"name": "growthbook", "settings": {"api_host": "https://attacker.example"}}
    out = await call_tool("create_feature_flag", {"flag_key": "mobile_fix", "provider": injected,
                                                  "flag_provider": store})
    assert out["provider"] == "local" and (tmp_path / "flags.json").exists()


@pytest.mark.parametrize(("tool", "arguments", "var"), [
    ("get_funnel_data", {"funnel": "checkout", "connector": None}, "connector"),
    ("create_feature_flag", {"flag_key": "mobile_fix", "flag_provider": None,
                             "provider": {"name": "local", "settings": {}}}, "flag_provider"),
])
async def test_a_bound_argument_the_run_cannot_fill_fails_instead_of_using_the_default(
        tool: str, arguments: dict[str, object], var: str) -> None:
    from temporalio.exceptions import ApplicationError

    with pytest.raises(ApplicationError) as err:
        await call_tool(tool, arguments)
    assert err.value.non_retryable and err.value.type == "BadRequest"
    assert f"run var '{var}'" in str(err.value) and f"Declare `{var}`" in str(err.value)


async def test_a_call_node_still_names_the_argument_itself(tmp_path: Path) -> None:
    store = {"name": "local", "settings": {"path": str(tmp_path / "flags.json")}}
    out = await call_tool("create_feature_flag", {"flag_key": "mobile_fix", "provider": store})
    funnel = await call_tool("get_funnel_data", {"funnel": "checkout", "connector": {"name": "mock"}})
    assert out["provider"] == "local" and funnel["funnel"] == "checkout"

"""What the growth loop's tool nodes rely on: the tools' workflow-facing fields (mock connector,
local flag store; no server). The tools' own statistics are tested in tests/activities/."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError

from activities.tools.registry import call_tool

GUARDRAILS = ["refund_rate", {"name": "revenue_per_user", "higher_is_better": True}]


async def readout(key: str = "ios-fix") -> dict[str, Any]:
    return await call_tool("get_experiment_results", {"experiment_id": key, "guardrails": GUARDRAILS})


async def test_detect_anomalies_gives_a_routable_flag_and_the_segment_as_a_filter() -> None:
    report = await call_tool("detect_anomalies", {})
    assert report["found"] is True
    assert report["top"]["segment_filter"] == {"platform": "ios"} and report["top"]["recent_daily_users"] > 0
    quiet = await call_tool("detect_anomalies", {"values": ["web"]})
    assert (quiet["found"], quiet["top"], quiet["anomalies"]) == (False, None, [])


async def test_results_carry_each_guardrail_with_its_direction() -> None:
    results = await readout()
    assert results["metric"] == "checkout_conversion"
    assert [(g["metric"], g["higher_is_better"]) for g in results["guardrails"]] == [
        ("refund_rate", False), ("revenue_per_user", True)]


async def test_srm_reads_the_readout_and_a_split_by_variant_name() -> None:
    results = await readout()
    by_results = await call_tool("check_srm", {"results": results, "expected_weights": {"treatment": 50, "control": 50}})
    by_counts = await call_tool("check_srm", {"observed": [v["users"] for v in results["variants"]]})
    assert by_results == by_counts
    with pytest.raises(ApplicationError, match="either observed"):
        await call_tool("check_srm", {})


async def test_guardrails_read_sequentially_agree_with_the_verdicts_guardrails() -> None:
    results = await readout()
    report = await call_tool("check_guardrails", {"results": results, "margin": 0.02, "method": "sequential"})
    verdict = await call_tool("calculate_significance", {"results": results, "guardrail_margin": 0.02,
                                                         "days_running": 10})
    assert report["results"] == verdict["guardrails"]
    assert report["passed"] is True


async def test_the_verdict_is_routable_and_its_interval_matches_its_method() -> None:
    results = await readout()
    seq = await call_tool("calculate_significance", {"results": results, "days_running": 10})
    assert (seq["decision"], seq["conclusive"], seq["ship"], seq["kill"]) == ("SHIP_WINNER", True, True, False)
    assert (seq["lift_ci_low"], seq["lift_ci_high"]) == tuple(seq["primary_sequential"]["relative_cs"])
    assert seq["p_value"] == seq["primary_p_value"] == seq["primary_sequential"]["p_value"]
    assert seq["headline"].startswith("SHIP_WINNER: checkout_conversion +") and "always-valid CI" in seq["headline"]
    fixed = await call_tool("calculate_significance", {"results": results, "days_running": 10,
                                                       "method": "fixed_horizon", "planned_n_per_arm": 5000})
    assert (fixed["lift_ci_low"], fixed["lift_ci_high"]) == tuple(fixed["primary"]["relative_ci"])
    assert fixed["p_value"] == fixed["primary"]["decision_p_value"] and "always-valid" not in fixed["headline"]


async def test_a_young_experiment_continues_until_its_minimum_runtime() -> None:
    results = await readout()
    just_created = datetime.now(timezone.utc) - timedelta(hours=1)
    young = await call_tool("calculate_significance", {"results": results, "started_at": just_created.isoformat()})
    assert (young["decision"], young["conclusive"]) == ("CONTINUE", False)
    assert 0.04 < young["days_running"] < 0.05
    ok = await call_tool("calculate_significance", {"results": results, "started_at": just_created.isoformat(),
                                                    "min_days": 0})
    assert ok["decision"] == "SHIP_WINNER"


async def test_a_flag_key_the_provider_refuses_is_a_permanent_error(tmp_path: Path) -> None:
    provider = {"name": "local", "settings": {"path": str(tmp_path / "flags.json")}}
    with pytest.raises(ApplicationError) as err:
        await call_tool("create_feature_flag", {"flag_key": "iOS fix!", "provider": provider})
    assert err.value.non_retryable and "cannot be created" in str(err.value) and "key" in str(err.value)
    created = await call_tool("create_feature_flag", {"flag_key": "ios-fix", "provider": provider})
    assert datetime.fromisoformat(created["created_at"]) <= datetime.now(timezone.utc)


async def test_the_learning_doc_appends_the_verdicts_numbers(tmp_path: Path) -> None:
    verdict = await call_tool("calculate_significance", {"results": await readout(), "days_running": 10})
    out = await call_tool("write_learning_doc", {"title": "iOS fix", "body": "It worked.", "verdict": verdict,
                                                 "directory": str(tmp_path)})
    text = Path(out["path"]).read_text()
    assert out["markdown"] == text
    assert text.startswith("# iOS fix\n\nIt worked.\n\n## Result (computed by calculate_significance)\n")
    assert f"- **{verdict['headline']}**" in text and f"- Sample ratio: {verdict['srm']['message']}" in text
    assert text.count("- Guardrail: ") == 2

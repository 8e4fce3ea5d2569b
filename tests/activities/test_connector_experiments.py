"""Experiment results at the connector boundary (issue 13): arms by name and none dropped, CUPED
pre-period statistics, ratio metrics, winsorisation, and non-finite numbers refused with a message
that names the connector, experiment, metric and field.

The warehouse runs real SQL on DuckDB and SQLite over per-unit tables built here, and its answers
are compared with numpy computed from the same units. GA4 and Mixpanel run their real clients
against the local wire-format fakes (tests/fakes/analytics_apis.py), which serve any answer given
to `fail_next(200, body)`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from fakes.analytics_apis import FakeGA4, FakeMixpanel

from activities.connectors import ConnectorError, InvalidQueryError, connector_from_config
from activities.connectors.mock import MockConnector
from activities.connectors.warehouse import TABLES, WarehouseConnector, load_mock_dataset
from activities.tools.experiments import ResultsQuery, get_experiment_results

PINNED = {"end_date": "2025-04-27"}
KEY = "exp_a3f7b9c2"
START = date(2025, 4, 1)


# ---------------------------------------------------------------------------------------------
# The mock connector
# ---------------------------------------------------------------------------------------------


async def test_mock_multi_arm_returns_every_arm_in_the_settings_order() -> None:
    mock = MockConnector({**PINNED, "variants": ["control", "blue_button", "green_button"]})
    res = await mock.experiment_results(KEY, "checkout_conversion")
    assert [v.variant for v in res.variants] == ["control", "blue_button", "green_button"]
    control, blue, green = res.variants
    assert all(19_500 < v.users < 20_500 for v in res.variants)
    # the first treatment gets the full lift (~+10 %), the second about half of it
    assert 0.08 < blue.conversion_rate / control.conversion_rate - 1 < 0.12
    assert 0.03 < green.conversion_rate / control.conversion_rate - 1 < 0.07


async def test_mock_two_arm_results_do_not_change_with_the_multi_arm_generator() -> None:
    res = await MockConnector(PINNED).experiment_results(KEY, "checkout_conversion")
    assert [(v.variant, v.users, v.conversions) for v in res.variants] == [
        ("control", 20_146, 6_004), ("treatment", 20_072, 6_629)]


@pytest.mark.parametrize(("metric", "rho"), [("checkout_conversion", 0.45), ("revenue_per_user", 0.55),
                                             ("p95_page_load_ms", 0.7), ("support_tickets_per_order", 0.5)])
async def test_mock_cuped_pre_period_statistics_have_a_realistic_correlation(metric: str, rho: float) -> None:
    res = await MockConnector(PINNED).experiment_results(KEY, metric)
    control = res.variants[0]
    for arm in res.variants:
        assert arm.pre_mean is not None and arm.pre_sd is not None and arm.pre_covariance is not None
        sd = arm.value_sd if arm.value_sd is not None else math.sqrt(arm.conversion_rate * (1 - arm.conversion_rate))
        assert arm.pre_covariance / (arm.pre_sd * sd) == pytest.approx(rho, abs=0.01)
        # randomisation: before the start every arm looks like the control (within 4 standard errors)
        control_mean = control.value_mean if control.value_mean is not None else control.conversion_rate
        assert abs(arm.pre_mean - control_mean) < 4 * arm.pre_sd / math.sqrt(arm.users)


async def test_mock_ratio_metric_carries_the_delta_method_parts() -> None:
    res = await MockConnector(PINNED).experiment_results(KEY, "aov")
    assert res.metric_kind == "ratio"
    for arm in res.variants:
        assert arm.numerator_mean and arm.denominator_mean and arm.numerator_sd and arm.denominator_sd
        assert arm.numerator_mean / arm.denominator_mean == pytest.approx(66.0, rel=0.02)  # the order value
        assert arm.denominator_mean == pytest.approx(arm.conversion_rate, abs=1e-4)  # orders per user
        corr = arm.numerator_denominator_covariance / (arm.numerator_sd * arm.denominator_sd)
        assert 0 < corr < 1


async def test_mock_cap_percentile_winsorises_revenue_at_the_pooled_quantile() -> None:
    mock = MockConnector(PINNED)
    plain = await mock.experiment_results(KEY, "revenue_per_user")
    capped = await mock.experiment_results(KEY, "revenue_per_user", cap_percentile=0.99)
    assert all(v.capped_at is None for v in plain.variants)
    caps = {v.capped_at for v in capped.variants}
    assert len(caps) == 1  # one cap for every arm
    cap = caps.pop()
    # an independent Monte Carlo of the same units: 0 for non-buyers, lognormal order values
    rng = np.random.default_rng(7)
    sigma2 = math.log(1 + (38 / 66) ** 2)
    pooled, per_arm = [], {}
    for arm in plain.variants:
        buyers = arm.value_mean / 66.0
        values = np.where(rng.random(400_000) < buyers,
                          rng.lognormal(math.log(66) - sigma2 / 2, math.sqrt(sigma2), 400_000), 0.0)
        pooled.append(values)
        per_arm[arm.variant] = values
    assert cap == pytest.approx(np.quantile(np.concatenate(pooled), 0.99), rel=0.02)
    for arm, before in zip(capped.variants, plain.variants, strict=True):
        simulated = np.minimum(per_arm[arm.variant], cap)
        assert arm.value_mean == pytest.approx(simulated.mean(), rel=0.01)
        assert arm.value_sd == pytest.approx(simulated.std(), rel=0.01)
        assert arm.value_mean < before.value_mean and arm.value_sd < before.value_sd


async def test_get_experiment_results_passes_cap_percentile_to_primary_and_guardrails() -> None:
    args = ResultsQuery.model_validate({
        "experiment_id": KEY, "metric": "revenue_per_user", "cap_percentile": 0.99,
        "guardrails": ["p95_page_load_ms", {"name": "support_tickets_per_order", "cap_percentile": 0.95}],
        "connector": {"name": "mock", "settings": PINNED}})
    out = await get_experiment_results(args)
    assert out.variants[0].capped_at is not None
    load, tickets = out.guardrails
    assert load.variants[0].capped_at is not None and tickets.variants[0].capped_at is not None
    assert tickets.variants[0].capped_at < (await MockConnector(PINNED).experiment_results(
        KEY, "support_tickets_per_order", cap_percentile=0.99)).variants[0].capped_at


# ---------------------------------------------------------------------------------------------
# The warehouse on per-unit tables (DuckDB and SQLite), against numpy
# ---------------------------------------------------------------------------------------------

ARMS = ["treatment_b", "control", "treatment_a"]  # first exposed in this order: not alphabetical


def unit_tables(seed: int = 3, n: int = 600) -> tuple[dict[str, list[tuple]], dict[str, dict[str, np.ndarray]]]:
    """Exposures and events of three arms, with a pre-period correlated with the experiment, and the
    per-unit values numpy will judge the SQL against."""
    rng = np.random.default_rng(seed)
    exposures, events = [], []
    truth: dict[str, dict[str, list]] = {a: {"y": [], "x": [], "orders": [], "conv": [], "pre_conv": []} for a in ARMS}
    for i in range(n):
        arm = ARMS[i % 3]
        unit = f"u{i:05d}"
        exposed = datetime(2025, 4, 1, 8) + timedelta(minutes=i)
        exposures.append(("exp_units", unit, arm, exposed))
        taste = rng.lognormal(3.0, 0.8)
        pre = float(np.round(taste * rng.lognormal(0, 0.5), 2)) if rng.random() < 0.6 else 0.0
        post = float(np.round(taste * rng.lognormal(0.1 if arm != "control" else 0.0, 0.5), 2)) \
            if rng.random() < 0.5 else 0.0
        orders = int(rng.integers(1, 3)) if post > 0 else 0
        if pre:  # before the start (a 28-day pre-period) and one outside it, which must not count
            events.append((unit, "revenue", pre, datetime(2025, 3, 20, 12)))
            events.append((unit, "revenue", 999.0, datetime(2025, 2, 1, 12)))
        if post:
            events.append((unit, "revenue", post, exposed + timedelta(days=2)))
            events.append((unit, "orders", float(orders), exposed + timedelta(days=2)))
        events.append((unit, "revenue", 5000.0, exposed - timedelta(hours=1)))  # before exposure: not counted
        t = truth[arm]
        t["y"].append(post)
        t["x"].append(pre)
        t["orders"].append(orders)
    # a unit exposed to two arms is left out of both (its spend must not count anywhere)
    exposures += [("exp_units", "u_both", "control", datetime(2025, 4, 2)),
                  ("exp_units", "u_both", "treatment_a", datetime(2025, 4, 3))]
    events.append(("u_both", "revenue", 10_000.0, datetime(2025, 4, 5)))
    tables = {"experiments": [("exp_units", START)], "exposures": exposures, "unit_events": events}
    return tables, {a: {k: np.array(v, dtype=float) for k, v in t.items()} for a, t in truth.items()}


def create_duckdb(path: Path, tables: dict[str, list[tuple]]) -> None:
    import duckdb

    con = duckdb.connect(str(path))
    for name, rows in tables.items():
        con.execute(f"CREATE TABLE {name} ({', '.join(f'{c} {t}' for c, t in TABLES[name])})")
        row = f"({', '.join('?' for _ in TABLES[name])})"
        for i in range(0, len(rows), 500):  # multi-row VALUES: DuckDB's executemany is slow
            chunk = rows[i:i + 500]
            con.execute(f"INSERT INTO {name} VALUES {', '.join(row for _ in chunk)}", [v for r in chunk for v in r])
    con.close()


def create_sqlite(path: Path, tables: dict[str, list[tuple]]) -> None:
    import sqlite3

    con = sqlite3.connect(path)
    for name, rows in tables.items():
        con.execute(f"CREATE TABLE {name} ({', '.join(f'{c} {t}' for c, t in TABLES[name])})")
        text_rows = [tuple(str(v) if isinstance(v, date | datetime) else v for v in r) for r in rows]
        con.executemany(f"INSERT INTO {name} VALUES ({', '.join('?' for _ in TABLES[name])})", text_rows)
    con.commit()
    con.close()


UNITS = {"experiment_data": "units", "ratio_metrics": {"revenue_per_order": {"numerator": "revenue",
                                                                             "denominator": "orders"}}}


@pytest.fixture(params=["duckdb", "sqlite"])
def units_warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[dict, dict]]:
    tables, truth = unit_tables()
    if request.param == "duckdb":
        create_duckdb(tmp_path / "units.duckdb", tables)
        settings = {**UNITS, "duckdb_path": str(tmp_path / "units.duckdb")}
    else:
        create_sqlite(tmp_path / "units.db", tables)
        settings = {**UNITS, "url": f"sqlite:///{tmp_path / 'units.db'}"}
    yield settings, truth


async def test_warehouse_units_keep_every_arm_in_first_exposure_order(units_warehouse: tuple[dict, dict]) -> None:
    settings, truth = units_warehouse
    async with WarehouseConnector(settings) as wh:
        res = await wh.experiment_results("exp_units", "revenue")
    assert [v.variant for v in res.variants] == ARMS
    assert [v.users for v in res.variants] == [len(truth[a]["y"]) for a in ARMS]


async def test_warehouse_units_compute_means_and_cuped_statistics_in_sql(units_warehouse: tuple[dict, dict]) -> None:
    settings, truth = units_warehouse
    async with WarehouseConnector(settings) as wh:
        res = await wh.experiment_results("exp_units", "revenue")
    assert res.metric_kind == "continuous"
    for arm in res.variants:
        y, x = truth[arm.variant]["y"], truth[arm.variant]["x"]
        assert arm.value_mean == pytest.approx(y.mean(), rel=1e-9)
        assert arm.value_sd == pytest.approx(y.std(ddof=1), rel=1e-9)
        assert arm.pre_mean == pytest.approx(x.mean(), rel=1e-9)
        assert arm.pre_sd == pytest.approx(x.std(ddof=1), rel=1e-9)
        assert arm.pre_covariance == pytest.approx(np.cov(x, y, ddof=1)[0, 1], rel=1e-9)
        assert arm.capped_at is None


async def test_warehouse_units_winsorise_at_the_nearest_rank_quantile(units_warehouse: tuple[dict, dict]) -> None:
    settings, truth = units_warehouse
    async with WarehouseConnector(settings) as wh:
        res = await wh.experiment_results("exp_units", "revenue", cap_percentile=0.95)
    pooled = np.concatenate([truth[a]["y"] for a in ARMS])
    cap = float(np.quantile(pooled, 0.95, method="inverted_cdf"))
    for arm in res.variants:
        capped = np.minimum(truth[arm.variant]["y"], cap)
        assert arm.capped_at == pytest.approx(cap)
        assert arm.value_mean == pytest.approx(capped.mean(), rel=1e-9)
        assert arm.value_sd == pytest.approx(capped.std(ddof=1), rel=1e-9)
        assert arm.pre_covariance == pytest.approx(np.cov(truth[arm.variant]["x"], capped, ddof=1)[0, 1], rel=1e-9)


async def test_warehouse_units_give_ratio_metric_parts_per_unit(units_warehouse: tuple[dict, dict]) -> None:
    settings, truth = units_warehouse
    async with WarehouseConnector(settings) as wh:
        res = await wh.experiment_results("exp_units", "revenue_per_order")
    assert res.metric_kind == "ratio"
    for arm in res.variants:
        y, d = truth[arm.variant]["y"], truth[arm.variant]["orders"]
        assert arm.numerator_mean == pytest.approx(y.mean(), rel=1e-9)
        assert arm.denominator_mean == pytest.approx(d.mean(), rel=1e-9)
        assert arm.denominator_sd == pytest.approx(d.std(ddof=1), rel=1e-9)
        assert arm.numerator_denominator_covariance == pytest.approx(np.cov(y, d, ddof=1)[0, 1], rel=1e-9)
        assert arm.conversions == int((d > 0).sum())


async def test_warehouse_units_read_conversion_metrics_as_zero_or_one(units_warehouse: tuple[dict, dict]) -> None:
    settings, truth = units_warehouse
    async with WarehouseConnector({**settings, "conversion_metrics": ["revenue"]}) as wh:
        res = await wh.experiment_results("exp_units", "revenue")
    assert res.metric_kind == "conversion"
    for arm in res.variants:
        y, x = (truth[arm.variant]["y"] > 0).astype(float), (truth[arm.variant]["x"] > 0).astype(float)
        assert arm.conversions == int(y.sum())
        assert arm.pre_mean == pytest.approx(x.mean())
        assert arm.pre_covariance == pytest.approx(np.cov(x, y, ddof=1)[0, 1], rel=1e-9)


async def test_warehouse_units_without_a_start_date_have_no_pre_period(tmp_path: Path) -> None:
    tables, _ = unit_tables()
    create_duckdb(tmp_path / "u.duckdb", {**tables, "experiments": []})
    async with WarehouseConnector({**UNITS, "duckdb_path": str(tmp_path / "u.duckdb")}) as wh:
        res = await wh.experiment_results("exp_units", "revenue")
    assert all(v.pre_mean is None and v.pre_covariance is None for v in res.variants)
    assert all(v.value_mean is not None for v in res.variants)


async def test_warehouse_summary_rows_keep_the_querys_order_and_a_third_arm(tmp_path: Path) -> None:
    import duckdb

    path = tmp_path / "wh.duckdb"
    con = duckdb.connect(str(path))
    load_mock_dataset(con)
    con.execute("INSERT INTO experiment_results (experiment_key, metric, metric_kind, variant, users, conversions) "
                "VALUES ('exp_three', 'checkout_conversion', 'conversion', 'control', 1000, 300), "
                "('exp_three', 'checkout_conversion', 'conversion', 'blue_button', 1000, 320), "
                "('exp_three', 'checkout_conversion', 'conversion', 'green_button', 1000, 310), "
                "('exp_three', 'revenue_per_user', 'continuous', 'control', 1000, 1000)")
    con.close()
    async with WarehouseConnector({"duckdb_path": str(path)}) as wh:
        res = await wh.experiment_results("exp_three", "checkout_conversion")
        assert [v.variant for v in res.variants] == ["control", "blue_button", "green_button"]
        err = await raises(InvalidQueryError, wh.experiment_results("exp_three", "revenue_per_user",
                                                                     cap_percentile=0.99))
    assert "experiment_data: units" in err.message


async def test_warehouse_refuses_a_non_finite_sum_naming_the_field(tmp_path: Path) -> None:
    tables, _ = unit_tables()
    tables["unit_events"].append(("u00000", "revenue", float("inf"), datetime(2025, 4, 5)))
    create_duckdb(tmp_path / "u.duckdb", tables)
    async with WarehouseConnector({**UNITS, "duckdb_path": str(tmp_path / "u.duckdb")}) as wh:
        err = await raises(ConnectorError, wh.experiment_results("exp_units", "revenue"))
    assert err.non_retryable
    assert "warehouse: experiment 'exp_units', metric 'revenue', variant 'treatment_b': field 'sum_y'" in err.message


# ---------------------------------------------------------------------------------------------
# GA4 and Mixpanel against their wire-format fakes
# ---------------------------------------------------------------------------------------------


async def raises(exc_type: type[ConnectorError], coro) -> ConnectorError:
    with pytest.raises(exc_type) as info:
        await coro
    return info.value


@pytest.fixture(scope="module")
def ga4_server() -> Iterator[FakeGA4]:
    server = FakeGA4().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mixpanel_server() -> Iterator[FakeMixpanel]:
    server = FakeMixpanel("svc.user", "s3cret").start()
    yield server
    server.stop()


def ga4(server: FakeGA4):
    return connector_from_config("ga4", {"credentials": "anonymous"},
                                 env={"GA4_API_ENDPOINT": server.url, "GA4_PROPERTY_ID": FakeGA4.PROPERTY})


def ga4_report(rows: list[tuple[str, str, str]]) -> dict:
    """A runReport answer: (variant, eventName, totalUsers) rows."""
    return {"dimensionHeaders": [{"name": "customUser:exp_x"}, {"name": "eventName"}],
            "metricHeaders": [{"name": "totalUsers"}],
            "rows": [{"dimensionValues": [{"value": v}, {"value": e}], "metricValues": [{"value": n}]}
                     for v, e, n in rows],
            "rowCount": len(rows), "kind": "analyticsData#runReport"}


def mixpanel(server: FakeMixpanel):
    return connector_from_config(
        "mixpanel", {"experiment_funnels": {"checkout_conversion": FakeMixpanel.EXPERIMENT_FUNNEL_ID},
                     "metrics": {"purchases": {"event": "Order Completed"}}},
        env={"MIXPANEL_SERVICE_ACCOUNT": "svc.user", "MIXPANEL_SECRET": "s3cret", "MIXPANEL_PROJECT_ID": "42",
             "MIXPANEL_API_URL": f"{server.url}/api/query"})


def mixpanel_funnel(arms: dict[str, tuple[object, object]]) -> dict:
    steps = {v: [{"count": e, "event": "$experiment_started"}, {"count": c, "event": "Order Completed"}]
             for v, (e, c) in arms.items()}
    return {"meta": {"dates": ["2025-04-01"]}, "data": {"2025-04-01": {"$overall": [], **steps}}}


async def test_ga4_keeps_every_arm_by_name_in_the_reports_order(ga4_server: FakeGA4) -> None:
    ga4_server.fail_next(200, ga4_report([
        ("control", "experience_impression", "20000"), ("control", "purchase", "6000"),
        ("blue_button", "experience_impression", "20100"), ("blue_button", "purchase", "6400"),
        ("green_button", "experience_impression", "19900"), ("green_button", "purchase", "6100")]))
    async with ga4(ga4_server) as conn:
        res = await conn.experiment_results("exp_buttons", "checkout_conversion")
    assert [(v.variant, v.users, v.conversions) for v in res.variants] == [
        ("control", 20_000, 6_000), ("blue_button", 20_100, 6_400), ("green_button", 19_900, 6_100)]


async def test_ga4_non_finite_count_is_a_non_retryable_error_naming_the_arm(ga4_server: FakeGA4) -> None:
    ga4_server.fail_next(200, ga4_report([("control", "experience_impression", "20000"),
                                          ("treatment", "purchase", "inf")]))
    async with ga4(ga4_server) as conn:
        err = await raises(ConnectorError, conn.experiment_results("exp_buttons", "checkout_conversion"))
    assert err.non_retryable
    assert ("ga4: experiment 'exp_buttons', metric 'checkout_conversion', variant 'treatment': "
            "field 'conversions' is 'inf', expected a finite number") in err.message


async def test_mixpanel_keeps_every_arm_by_name_in_the_answers_order(mixpanel_server: FakeMixpanel) -> None:
    mixpanel_server.fail_next(200, mixpanel_funnel({"treatment": (20_100, 6_633), "control": (20_000, 6_000),
                                                    "blue_button": (19_950, 6_300)}))
    async with mixpanel(mixpanel_server) as conn:
        res = await conn.experiment_results("exp_buttons", "checkout_conversion")
    assert [v.variant for v in res.variants] == ["treatment", "control", "blue_button"]
    assert res.variant("control").conversion_rate == pytest.approx(0.3)


async def test_mixpanel_nan_count_is_a_non_retryable_error_naming_the_field(mixpanel_server: FakeMixpanel) -> None:
    mixpanel_server.fail_next(200, mixpanel_funnel({"control": (20_000, 6_000), "treatment": (float("nan"), 10)}))
    async with mixpanel(mixpanel_server) as conn:
        err = await raises(ConnectorError, conn.experiment_results("exp_buttons", "checkout_conversion"))
    assert err.non_retryable and err.details == ({"source": "mixpanel", "experiment_key": "exp_buttons",
                                                  "metric": "checkout_conversion", "variant": "treatment",
                                                  "field": "users", "value": "nan"},)
    assert "mixpanel: experiment 'exp_buttons', metric 'checkout_conversion', variant 'treatment'" in err.message


async def test_mixpanel_infinite_metric_value_is_refused_naming_metric_and_day(mixpanel_server: FakeMixpanel) -> None:
    mixpanel_server.fail_next(200, {"data": {"series": ["2025-04-01"],
                                             "values": {"Order Completed": {"2025-04-01": float("inf")}}}})
    async with mixpanel(mixpanel_server) as conn:
        err = await raises(ConnectorError, conn.metric_series("purchases", date(2025, 4, 1), date(2025, 4, 1)))
    assert err.non_retryable
    assert "mixpanel: metric 'purchases' on 2025-04-01: the value is inf, expected a finite number" in err.message

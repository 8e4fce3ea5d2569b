"""Analytics connectors: the mock dataset's story, the warehouse on DuckDB and SQLite, and GA4,
Mixpanel and Amplitude through their real clients against local servers (tests/fakes/analytics_apis.py)."""

from __future__ import annotations

import importlib.util
import math
import socket
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from fakes.analytics_apis import EXPERIMENT_ARMS, FakeAmplitude, FakeGA4, FakeMixpanel
from temporalio.api.failure.v1 import Failure
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError

from activities.connectors import (
    BaseConnector,
    ConnectorAuthError,
    ConnectorConfigError,
    ConnectorError,
    FunnelData,
    InvalidQueryError,
    RateLimitedError,
    UnknownFunnelError,
    UnknownMetricError,
    connector_from_config,
    connector_names,
)
from activities.connectors.ga4 import GA4Connector
from activities.connectors.mock import DATASET, MockConnector, load_dataset
from activities.connectors.registry import CONNECTORS
from activities.connectors.warehouse import WarehouseConnector, load_mock_dataset
from workflows.contract.messages import (
    ERR_BAD_REQUEST,
    ERR_CONNECTOR_AUTH,
    ERR_RATE_LIMITED,
    ERR_UNKNOWN_FUNNEL,
    ERR_UNKNOWN_METRIC,
)

# The mock dataset's calendar (docs/connectors.md, "The mock dataset").
BASELINE = (date(2025, 3, 3), date(2025, 4, 17))   # 46 days before app release 5.2
ANOMALY = (date(2025, 4, 18), date(2025, 4, 27))   # the last 10 days
PINNED = {"end_date": "2025-04-27"}                # no date shift: the file's own calendar
STEPS = ["visit", "product_view", "add_to_cart", "checkout_start", "purchase"]
MOBILE = {"device": "mobile"}


def rate(funnel: FunnelData) -> float:
    """checkout_start → purchase, rounded as the docs quote it."""
    return round(funnel.conversion("checkout_start", "purchase"), 4)


async def raises(exc_type: type[ConnectorError], coro) -> ConnectorError:
    with pytest.raises(exc_type) as info:
        await coro
    return info.value


@pytest.fixture
def mock() -> MockConnector:
    return MockConnector(PINNED)


# ---------------------------------------------------------------------------------------------
# The mock dataset
# ---------------------------------------------------------------------------------------------


async def test_mock_checkout_funnel_counts_users_per_step(mock: MockConnector) -> None:
    funnel = await mock.funnel("checkout", *BASELINE)
    assert [s.name for s in funnel.steps] == STEPS
    assert [s.users for s in funnel.steps] == [3_437_752, 2_075_907, 405_768, 199_630, 84_646]
    assert funnel.steps[0].conversion_from_previous == 1.0
    assert funnel.steps[4].conversion_from_previous == pytest.approx(84_646 / 199_630)
    assert funnel.steps[4].conversion_from_start == pytest.approx(84_646 / 3_437_752)
    assert (funnel.start, funnel.end, funnel.segment) == (*BASELINE, {})


@pytest.mark.parametrize(("segment", "baseline", "anomaly"), [
    ({"platform": "web"}, 0.4455, 0.4455),
    ({"platform": "ios"}, 0.4060, 0.3026),
    ({"platform": "android"}, 0.3841, 0.2900),
    (MOBILE, 0.3985, 0.2982),
    (None, 0.4240, 0.3775),
])
async def test_mock_mobile_checkout_conversion_drops_a_quarter_in_the_last_ten_days_web_stays_flat(
        mock: MockConnector, segment: dict[str, str] | None, baseline: float, anomaly: float) -> None:
    before = await mock.funnel("checkout", *BASELINE, segment)
    after = await mock.funnel("checkout", *ANOMALY, segment)
    assert (rate(before), rate(after)) == (baseline, anomaly)


async def test_mock_story_section_states_the_same_numbers(mock: MockConnector) -> None:
    story = load_dataset(str(DATASET)).raw["story"]
    mobile = story["checkout_conversion"]["mobile"]
    assert mobile == {"baseline": 0.3985, "anomaly": 0.2982, "relative_change": -0.2517}
    assert story["checkout_conversion"]["web"]["relative_change"] == 0.0
    assert story["checkout_error_rate"]["mobile"] == {"baseline": 0.018, "anomaly": 0.0653}
    after = await mock.funnel("checkout", *ANOMALY, MOBILE)
    assert [s.users for s in after.steps] == [397_308, 249_561, 45_505, 21_104, 6_294]


async def test_mock_weekly_series_shows_the_drop_and_the_error_spike(mock: MockConnector) -> None:
    conv = await mock.metric_series("checkout_conversion", date(2025, 4, 7), date(2025, 4, 27), MOBILE, "week")
    assert conv.granularity == "week"
    assert [(p.date, round(p.value, 4)) for p in conv.points] == [
        (date(2025, 4, 7), 0.3993), (date(2025, 4, 14), 0.3521), (date(2025, 4, 21), 0.2980)]
    assert all(p.segment == {"device": "mobile"} for p in conv.points)
    errors = await mock.metric_series("checkout_error_rate", *ANOMALY, {"platform": "IOS"})
    assert len(errors.points) == 10 and min(p.value for p in errors.points) > 0.055
    assert errors.points[0].segment == {"platform": "ios"}  # canonical value


async def test_mock_daily_counts_and_monthly_buckets(mock: MockConnector) -> None:
    visits = await mock.metric_series("visits", date(2025, 4, 26), date(2025, 4, 27), {"country": "US"})
    assert [p.date for p in visits.points] == [date(2025, 4, 26), date(2025, 4, 27)]
    assert all(p.value > 30_000 for p in visits.points)
    monthly = await mock.metric_series("purchases", *BASELINE, granularity="month")
    assert [p.date for p in monthly.points] == [date(2025, 3, 1), date(2025, 4, 1)]
    assert sum(p.value for p in monthly.points) == 84_646


async def test_mock_shifts_dates_so_the_last_day_is_yesterday_by_default(mock: MockConnector) -> None:
    yesterday = datetime.now(timezone.utc).date() - timedelta(days=1)
    live = MockConnector()
    shifted = await live.funnel("checkout", yesterday - timedelta(days=9), yesterday, MOBILE)
    assert rate(shifted) == 0.2982
    history = await live.historical_experiments(limit=1)
    assert history[0].ended == date(2025, 3, 3) + (yesterday - ANOMALY[1])


async def test_mock_experiment_results_depend_only_on_the_key(mock: MockConnector) -> None:
    res = await mock.experiment_results("exp_a3f7b9c2", "checkout_conversion")
    control, treatment = res.variant("control"), res.variant("treatment")
    assert (control.users, control.conversions, treatment.users, treatment.conversions) == (20_146, 6_004, 20_072, 6_629)
    assert (control.revenue_mean, treatment.revenue_mean) == (19.67, 21.8)
    assert res.as_of == datetime(2025, 4, 28, tzinfo=timezone.utc)
    again = await MockConnector(PINNED).experiment_results("exp_a3f7b9c2", "checkout_conversion")
    assert again == res


@pytest.mark.parametrize("key", [f"exp_{i:04x}" for i in range(0, 4000, 97)])
async def test_mock_generated_experiments_split_evenly_and_win_significantly(mock: MockConnector, key: str) -> None:
    res = await mock.experiment_results(key, "checkout_conversion")
    c, t = res.variant("control"), res.variant("treatment")
    n = c.users + t.users
    srm_chi2 = (c.users - n / 2) ** 2 / (n / 2) + (t.users - n / 2) ** 2 / (n / 2)
    assert srm_chi2 < 3.84  # no sample-ratio mismatch at 5 %
    assert 19_500 < c.users < 20_500 and 0.296 < c.conversion_rate < 0.304
    pooled = (c.conversions + t.conversions) / n
    z = (t.conversion_rate - c.conversion_rate) / math.sqrt(pooled * (1 - pooled) * (1 / c.users + 1 / t.users))
    assert z > 4  # significant whatever the key
    assert 0.08 < t.conversion_rate / c.conversion_rate - 1 < 0.12


async def test_mock_guardrails_stay_flat(mock: MockConnector) -> None:
    refunds = await mock.experiment_results("exp_a3f7b9c2", "refund_rate")
    c, t = refunds.variant("control"), refunds.variant("treatment")
    assert abs(t.conversion_rate / c.conversion_rate - 1) < 0.05
    load = await mock.experiment_results("exp_a3f7b9c2", "p95_page_load_ms")
    assert load.metric_kind == "continuous"
    c, t = load.variant("control"), load.variant("treatment")
    assert c.value_mean is not None and t.value_mean is not None
    assert 2400 < c.value_mean < 2560 and abs(t.value_mean / c.value_mean - 1) < 0.01


async def test_mock_finished_experiments_keep_their_recorded_results(mock: MockConnector) -> None:
    res = await mock.experiment_results("exp_android_one_page_checkout", "checkout_conversion")
    c, t = res.variant("control"), res.variant("treatment")
    assert t.conversion_rate < c.conversion_rate
    err = await raises(UnknownMetricError, mock.experiment_results("exp_android_one_page_checkout", "aov"))
    assert err.known == ["checkout_conversion"]


async def test_mock_history_is_newest_first_and_filters_by_metric(mock: MockConnector) -> None:
    history = await mock.historical_experiments()
    assert [h.key for h in history][:2] == ["exp_cart_upsell_carousel", "exp_android_one_page_checkout"]
    assert len(history) == 6
    checkout = await mock.historical_experiments(limit=2, metric="checkout_conversion")
    assert [(h.key, h.verdict) for h in checkout] == [("exp_android_one_page_checkout", "KILL"),
                                                      ("exp_ios_apple_pay_first", "SHIP_WINNER")]
    assert checkout[0].segment == {"platform": "android"} and checkout[0].lift == -0.045


async def test_mock_unknown_names_are_permanent_errors_that_list_the_known_ones(mock: MockConnector) -> None:
    err = await raises(UnknownMetricError, mock.metric_series("checkout_rate", *ANOMALY))
    assert (err.type, err.non_retryable) == (ERR_UNKNOWN_METRIC, True)
    assert "checkout_conversion" in err.known and "checkout_conversion" in err.message
    err = await raises(UnknownFunnelError, mock.funnel("signup", *ANOMALY))
    assert (err.type, err.known) == (ERR_UNKNOWN_FUNNEL, ["checkout"])
    err = await raises(InvalidQueryError, mock.funnel("checkout", *ANOMALY, {"os": "ios"}))
    assert err.type == ERR_BAD_REQUEST and "country, device, platform" in err.message
    err = await raises(InvalidQueryError, mock.funnel("checkout", *ANOMALY, {"platform": "windows"}))
    assert "android" in err.message
    await raises(InvalidQueryError, mock.funnel("checkout", ANOMALY[1], ANOMALY[0]))
    await raises(InvalidQueryError, mock.metric_series("visits", *ANOMALY, granularity="hour"))  # type: ignore[arg-type]


def test_mock_dataset_file_is_what_its_builder_produces() -> None:
    path = DATASET.with_name("build_mock_dataset.py")
    spec = importlib.util.spec_from_file_location("build_mock_dataset", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--check"]) == 0


# ---------------------------------------------------------------------------------------------
# Warehouse: DuckDB by default, any SQLAlchemy URL otherwise
# ---------------------------------------------------------------------------------------------


async def assert_same_story(warehouse: BaseConnector, mock: MockConnector) -> None:
    for window in (BASELINE, ANOMALY):
        for segment in (None, MOBILE, {"platform": "web", "country": "GB"}):
            assert await warehouse.funnel("checkout", *window, segment) == await mock.funnel("checkout", *window, segment)
    got = await warehouse.metric_series("checkout_conversion", date(2025, 4, 7), date(2025, 4, 27), MOBILE, "week")
    want = await mock.metric_series("checkout_conversion", date(2025, 4, 7), date(2025, 4, 27), MOBILE, "week")
    assert [(p.date, round(p.value, 10)) for p in got.points] == [(p.date, round(p.value, 10)) for p in want.points]
    assert await warehouse.historical_experiments(3, "checkout_conversion") == \
        await mock.historical_experiments(3, "checkout_conversion")
    recorded = await warehouse.experiment_results("exp_web_guest_checkout", "checkout_conversion")
    assert recorded.variants == (await mock.experiment_results("exp_web_guest_checkout", "checkout_conversion")).variants


async def test_warehouse_on_duckdb_answers_like_the_mock(mock: MockConnector) -> None:
    async with WarehouseConnector({"load_mock_dataset": True}) as wh:
        await assert_same_story(wh, mock)
        assert (await wh.experiment_results("exp_not_started", "checkout_conversion")).variants == []


async def test_warehouse_on_a_sqlite_url_answers_like_the_mock(mock: MockConnector, tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    load_mock_dataset(f"sqlite:///{db}")
    wh = connector_from_config("warehouse", {"url": "sqlite:///${SHOP_DB}"}, env={"SHOP_DB": str(db)})
    async with wh:
        await assert_same_story(wh, mock)


async def test_warehouse_queries_are_templates_over_your_own_tables(tmp_path: Path) -> None:
    import duckdb

    path = tmp_path / "kpis.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE kpi_daily (day DATE, kpi VARCHAR, region VARCHAR, n BIGINT)")
    con.execute("INSERT INTO kpi_daily VALUES ('2025-01-01', 'signups', 'eu', 10), ('2025-01-01', 'signups', 'us', 5),"
                " ('2025-01-02', 'signups', 'eu', 7), ('2025-01-01', 'visits', 'eu', 100),"
                " ('2025-01-02', 'visits', 'eu', 70)")
    con.close()
    settings = {
        "duckdb_path": str(path),
        "segment_columns": ["region"],
        "ratio_metrics": {"signup_rate": {"numerator": "signups", "denominator": "visits"}},
        "queries": {
            "metric_series": "SELECT day AS date, SUM(n) AS value FROM kpi_daily WHERE kpi = :metric "
                             "AND day BETWEEN :start AND :end AND (:region IS NULL OR region = :region) "
                             "GROUP BY day ORDER BY day",
            "known_metrics": "SELECT DISTINCT kpi FROM kpi_daily",
        },
    }
    async with WarehouseConnector(settings) as wh:
        signups = await wh.metric_series("signups", date(2025, 1, 1), date(2025, 1, 2))
        assert [p.value for p in signups.points] == [15, 7]
        rate_eu = await wh.metric_series("signup_rate", date(2025, 1, 1), date(2025, 1, 2), {"region": "eu"}, "week")
        assert [(p.date, p.value) for p in rate_eu.points] == [(date(2024, 12, 30), 17 / 170)]
        err = await raises(UnknownMetricError, wh.metric_series("orders", date(2025, 1, 1), date(2025, 1, 2)))
        assert err.known == ["signup_rate", "signups", "visits"]
        err = await raises(ConnectorConfigError, wh.funnel("checkout", date(2025, 1, 1), date(2025, 1, 2)))
        assert "'funnel' query uses unknown parameter(s) :country, :device, :platform" in err.message
        err = await raises(ConnectorConfigError, wh.historical_experiments())  # no such table here
        assert err.non_retryable and "historical_experiments" in err.message and "`queries`" in err.message
        await raises(InvalidQueryError, wh.metric_series("signups", date(2025, 1, 1), date(2025, 1, 2), {"platform": "ios"}))


# ---------------------------------------------------------------------------------------------
# GA4, Mixpanel and Amplitude against local servers
# ---------------------------------------------------------------------------------------------

MIXPANEL_ENV = {"MIXPANEL_SERVICE_ACCOUNT": "iterloop.sa", "MIXPANEL_SECRET": "s3cret", "MIXPANEL_PROJECT_ID": "42"}
AMPLITUDE_ENV = {"AMPLITUDE_API_KEY": "key-1", "AMPLITUDE_SECRET_KEY": "secret-1"}


@pytest.fixture(scope="module")
def ga4_server() -> Iterator[FakeGA4]:
    server = FakeGA4().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mixpanel_server() -> Iterator[FakeMixpanel]:
    server = FakeMixpanel(MIXPANEL_ENV["MIXPANEL_SERVICE_ACCOUNT"], MIXPANEL_ENV["MIXPANEL_SECRET"]).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def amplitude_server() -> Iterator[FakeAmplitude]:
    server = FakeAmplitude(AMPLITUDE_ENV["AMPLITUDE_API_KEY"], AMPLITUDE_ENV["AMPLITUDE_SECRET_KEY"]).start()
    yield server
    server.stop()


def ga4(server: FakeGA4, **settings: object) -> BaseConnector:
    env = {"GA4_API_ENDPOINT": server.url, "GA4_PROPERTY_ID": FakeGA4.PROPERTY}
    return connector_from_config("ga4", {"credentials": "anonymous", **settings}, env=env)


def mixpanel(server: FakeMixpanel, env: dict[str, str] | None = None) -> BaseConnector:
    settings = {"funnels": {"checkout": {"funnel_id": FakeMixpanel.FUNNEL_ID,
                                         "steps": STEPS}},
                "metrics": {"checkout_starts": {"event": "Checkout Started"},
                            "purchases": {"event": "Order Completed"},
                            "revenue": {"event": "Order Completed", "sum_property": "revenue"},
                            "checkout_conversion": {"numerator": "purchases", "denominator": "checkout_starts"}},
                "properties": {"platform": "platform", "country": "mp_country_code"},
                "experiment_funnels": {"checkout_conversion": FakeMixpanel.EXPERIMENT_FUNNEL_ID}}
    return connector_from_config("mixpanel", settings,
                                 env={**(env or MIXPANEL_ENV), "MIXPANEL_API_URL": f"{server.url}/api/query"})


def amplitude(server: FakeAmplitude, env: dict[str, str] | None = None) -> BaseConnector:
    return connector_from_config("amplitude", {"api_url": f"{server.url}/api/2"}, env=env or AMPLITUDE_ENV)


async def assert_anomaly_visible(connector: BaseConnector, mock: MockConnector, platform: str) -> None:
    """The HTTP connectors see the same mobile drop as the mock, through their own wire formats."""
    for window in (BASELINE, ANOMALY):
        got = await connector.funnel("checkout", *window, {"platform": platform})
        want = await mock.funnel("checkout", *window, {"platform": "ios"})
        assert [s.users for s in got.steps] == [s.users for s in want.steps]
        assert [s.name for s in got.steps] == STEPS
    series = await connector.metric_series("checkout_conversion", *ANOMALY, {"platform": platform})
    want_series = await mock.metric_series("checkout_conversion", *ANOMALY, {"platform": "ios"})
    assert [round(p.value, 10) for p in series.points] == [round(p.value, 10) for p in want_series.points]
    assert series.points[0].segment == {"platform": platform}


def assert_fake_arms(results) -> None:
    assert {v.variant: (v.users, v.conversions) for v in results.variants} == EXPERIMENT_ARMS
    assert results.variant("treatment").conversion_rate == pytest.approx(6_633 / 20_100)


async def assert_rate_limited(connector: BaseConnector, server, delay: str = "17") -> None:
    server.fail_next(429, {"error": {"code": 429, "message": "Exhausted property tokens per hour",
                                     "status": "RESOURCE_EXHAUSTED"}}, {"Retry-After": delay})
    err = await raises(RateLimitedError, connector.funnel("checkout", *ANOMALY))
    assert (err.type, err.non_retryable) == (ERR_RATE_LIMITED, False)
    assert err.next_retry_delay == timedelta(seconds=int(delay))


async def test_ga4_funnel_and_series_come_from_run_report(ga4_server: FakeGA4, mock: MockConnector) -> None:
    async with ga4(ga4_server) as conn:
        await assert_anomaly_visible(conn, mock, "iOS")
    body = ga4_server.requests[0].body
    assert ga4_server.requests[0].path == f"/v1beta/properties/{FakeGA4.PROPERTY}:runReport"
    assert body["dimensions"] == [{"name": "eventName"}] and body["metrics"] == [{"name": "totalUsers"}]
    leaves = [e["filter"] for e in body["dimensionFilter"]["andGroup"]["expressions"]]
    assert leaves[0] == {"fieldName": "platform", "stringFilter": {"value": "iOS", "matchType": 1}}  # case-insensitive
    assert leaves[1]["inListFilter"]["values"] == ["session_start", "view_item", "add_to_cart", "begin_checkout",
                                                   "purchase"]
    assert "Authorization" not in ga4_server.requests[0].headers  # anonymous credentials


async def test_ga4_revenue_and_experiment_results(ga4_server: FakeGA4, mock: MockConnector) -> None:
    async with ga4(ga4_server) as conn:
        revenue = await conn.metric_series("revenue", *ANOMALY, granularity="week")
        want = await mock.metric_series("revenue", *ANOMALY, granularity="week")
        assert [round(p.value, 2) for p in revenue.points] == [round(p.value, 2) for p in want.points]
        results = await conn.experiment_results("exp-a3f7b9c2", "checkout_conversion")
        assert_fake_arms(results)
    dims = [d["name"] for d in ga4_server.requests[-1].body["dimensions"]]
    assert dims == ["customUser:exp_exp_a3f7b9c2", "eventName"]


async def test_ga4_rate_limit_waits_for_the_servers_delay(ga4_server: FakeGA4) -> None:
    async with ga4(ga4_server) as conn:
        await assert_rate_limited(conn, ga4_server)
        # Without a Retry-After header, the google.rpc.RetryInfo detail gives the delay.
        ga4_server.fail_next(429, {"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED",
                                             "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                                          "retryDelay": "30s"}]}})
        err = await raises(RateLimitedError, conn.funnel("checkout", *ANOMALY))
        assert err.next_retry_delay == timedelta(seconds=30)


async def test_ga4_rejected_credentials_are_not_retried(ga4_server: FakeGA4) -> None:
    ga4_server.fail_next(401, {"error": {"code": 401, "message": "Request had invalid authentication credentials.",
                                         "status": "UNAUTHENTICATED"}})
    async with ga4(ga4_server) as conn:
        err = await raises(ConnectorAuthError, conn.metric_series("visits", *ANOMALY))
    assert (err.type, err.non_retryable) == (ERR_CONNECTOR_AUTH, True)
    assert "GOOGLE_APPLICATION_CREDENTIALS" in err.message
    with pytest.raises(ConnectorConfigError, match="GA4_PROPERTY_ID"):
        GA4Connector({}, env={})


async def test_mixpanel_funnel_segmentation_and_experiments(mixpanel_server: FakeMixpanel, mock: MockConnector) -> None:
    async with mixpanel(mixpanel_server) as conn:
        await assert_anomaly_visible(conn, mock, "ios")
        revenue = await conn.metric_series("revenue", *ANOMALY, {"platform": "ios", "country": "US"})
        want = await mock.metric_series("revenue", *ANOMALY, {"platform": "ios", "country": "US"})
        assert [round(p.value, 2) for p in revenue.points] == [round(p.value, 2) for p in want.points]
        assert_fake_arms(await conn.experiment_results("exp_a3f7b9c2", "checkout_conversion"))
    first = mixpanel_server.requests[0]
    assert first.path == "/api/query/funnels"
    assert (first.param("project_id"), first.param("funnel_id")) == ("42", "7509")
    assert first.param("where") == 'properties["platform"] == "ios"'
    last = mixpanel_server.requests[-1]
    assert last.param("on") == 'properties["Variant name"]'
    assert last.param("where") == 'properties["Experiment name"] == "exp_a3f7b9c2"'


async def test_mixpanel_rate_limit_and_rejected_secret(mixpanel_server: FakeMixpanel) -> None:
    async with mixpanel(mixpanel_server) as conn:
        await assert_rate_limited(conn, mixpanel_server, delay="45")
    async with mixpanel(mixpanel_server, {**MIXPANEL_ENV, "MIXPANEL_SECRET": "wrong"}) as conn:
        err = await raises(ConnectorAuthError, conn.funnel("checkout", *ANOMALY))
    assert err.non_retryable and "MIXPANEL_SERVICE_ACCOUNT" in err.message
    with pytest.raises(ConnectorAuthError, match="MIXPANEL_SECRET"):
        connector_from_config("mixpanel", {}, env={})
    with pytest.raises(UnknownFunnelError, match="known funnels: none"):
        await connector_from_config("mixpanel", {}, env=MIXPANEL_ENV).funnel("checkout", *ANOMALY)


async def test_amplitude_funnels_segmentation_and_experiments(amplitude_server: FakeAmplitude,
                                                              mock: MockConnector) -> None:
    async with amplitude(amplitude_server) as conn:
        await assert_anomaly_visible(conn, mock, "ios")
        revenue = await conn.metric_series("revenue", *ANOMALY)
        want = await mock.metric_series("revenue", *ANOMALY)
        assert [round(p.value, 2) for p in revenue.points] == [round(p.value, 2) for p in want.points]
        assert_fake_arms(await conn.experiment_results("exp_a3f7b9c2", "checkout_conversion"))
    funnel = amplitude_server.requests[0]
    assert funnel.path == "/api/2/funnels" and len(funnel.query["e"]) == 5
    assert (funnel.param("start"), funnel.param("end")) == ("20250303", "20250417")
    experiment = amplitude_server.requests[-1]
    assert [e for e in experiment.query["e"]] == ['{"event_type": "$exposure"}', '{"event_type": "Order Completed"}']
    assert experiment.query["s"][1] == '[{"prop": "gp:[Experiment] exp_a3f7b9c2", "op": "is", "values": ["treatment"]}]'


async def test_amplitude_rate_limit_and_rejected_keys(amplitude_server: FakeAmplitude) -> None:
    async with amplitude(amplitude_server) as conn:
        await assert_rate_limited(conn, amplitude_server, delay="5")
    async with amplitude(amplitude_server, {**AMPLITUDE_ENV, "AMPLITUDE_SECRET_KEY": "nope"}) as conn:
        err = await raises(ConnectorAuthError, conn.metric_series("purchases", *ANOMALY))
    assert err.non_retryable and "AMPLITUDE_SECRET_KEY" in err.message


async def test_an_unreachable_server_is_retried() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with connector_from_config("amplitude", {"api_url": f"http://127.0.0.1:{port}/api/2"},
                                     env=AMPLITUDE_ENV) as down:
        err = await raises(ConnectorError, down.funnel("checkout", *ANOMALY))
    assert (err.type, err.non_retryable) == ("ConnectorUnavailable", False)


# ---------------------------------------------------------------------------------------------
# Registry and Temporal mapping
# ---------------------------------------------------------------------------------------------


def test_registry_knows_the_five_connectors_and_explains_mistakes() -> None:
    assert connector_names() == ["amplitude", "ga4", "mixpanel", "mock", "warehouse"]
    with pytest.raises(ConnectorConfigError, match="available: amplitude, ga4, mixpanel, mock, warehouse"):
        connector_from_config("heap", {})
    with pytest.raises(ConnectorConfigError, match="Accepted settings: .*end_date") as info:
        connector_from_config("mock", {"end_day": "2025-04-27"})
    assert info.value.non_retryable
    with pytest.raises(ConnectorConfigError, match=r"'settings.url' refers to \$\{WAREHOUSE_URL\}"):
        connector_from_config("warehouse", {"url": "${WAREHOUSE_URL}"}, env={})
    # Only `${VAR}` is expanded: analytics names such as `$exposure` stay as written.
    conn = connector_from_config("amplitude", {"exposure_event": "$exposure", "api_url": "${AMP}/api/2"},
                                 env={**AMPLITUDE_ENV, "AMP": "http://analytics.internal"})
    assert (conn.settings.exposure_event, conn.base_url) == ("$exposure", "http://analytics.internal/api/2")  # type: ignore[attr-defined]


async def test_connector_errors_become_temporal_application_failures() -> None:
    failure = Failure()
    err = RateLimitedError("mixpanel rate limit", next_retry_delay=timedelta(seconds=17))
    DataConverter.default.failure_converter.to_failure(err, DataConverter.default.payload_converter, failure)
    info = failure.application_failure_info
    assert (info.type, info.non_retryable, info.next_retry_delay.seconds) == (ERR_RATE_LIMITED, False, 17)
    back = DataConverter.default.failure_converter.from_failure(failure, DataConverter.default.payload_converter)
    assert isinstance(back, ApplicationError) and back.next_retry_delay == timedelta(seconds=17)
    failure = Failure()
    DataConverter.default.failure_converter.to_failure(UnknownMetricError("ga4", "x", ["a"]),
                                                       DataConverter.default.payload_converter, failure)
    assert (failure.application_failure_info.type, failure.application_failure_info.non_retryable) == \
        (ERR_UNKNOWN_METRIC, True)


async def test_the_docs_example_connector_works(tmp_path: Path) -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "connectors.md").read_text(encoding="utf-8")
    section = docs.split("## 5. Add a connector", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert len(code.strip().splitlines()) <= 50
    csv_file = tmp_path / "funnel.csv"
    csv_file.write_text("date,step,users\n2025-04-26,visit,100\n2025-04-26,checkout_start,20\n"
                        "2025-04-26,purchase,8\n2025-04-27,visit,50\n2025-04-27,purchase,2\n")
    try:
        exec(compile(code, "docs/connectors.md", "exec"), {"__name__": "docs_csv_connector"})
        async with connector_from_config("csv", {"path": str(csv_file)}) as conn:
            funnel = await conn.funnel("checkout", date(2025, 4, 26), date(2025, 4, 27))
            assert [s.users for s in funnel.steps] == [150, 20, 10]
            assert funnel.conversion("checkout_start", "purchase") == 0.5
            visits = await conn.metric_series("visit", date(2025, 4, 26), date(2025, 4, 27), granularity="week")
            assert [(p.date, p.value) for p in visits.points] == [(date(2025, 4, 21), 150)]
            await raises(UnknownMetricError, conn.experiment_results("exp_1", "purchase"))
            await raises(InvalidQueryError, conn.funnel("checkout", date(2025, 4, 26), date(2025, 4, 27), MOBILE))
    finally:
        CONNECTORS.pop("csv", None)

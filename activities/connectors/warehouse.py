"""The warehouse connector: the four questions as SQL templates over your own tables.

By default it runs on DuckDB (an in-memory database, or a file with ``duckdb_path``) through the
`duckdb` Python API; with ``url`` it runs on anything SQLAlchemy can reach (`postgresql://…`,
`snowflake://…`, `sqlite:///…`; install the driver on the worker). Credentials belong in the
URL's password, written as `${ENV}` so they are resolved on the worker, never stored in history:
``url: "postgresql://analyst:${WAREHOUSE_PASSWORD}@db/analytics"``.

Each query is a template with named parameters (`:start`, `:end`, `:funnel`, `:metric`,
`:experiment_key`, `:limit`, and one per segment column, None when the segment does not set it).
The defaults are written for the reference schema that `load_mock_dataset` creates; point them
at your tables with the ``queries`` setting. What each query must return:

- ``funnel``: one row per step in step order: ``step, users``. No rows = unknown funnel.
- ``metric_series``: one row per day: ``date, value`` (a count or sum; ratio metrics are built
  from two of them, see ``ratio_metrics``).
- ``experiment_results``: one row per variant: ``variant, users, conversions`` and optionally
  ``revenue_mean, revenue_sd, value_mean, value_sd, metric_kind, as_of``. No rows = no data yet.
  Rows are kept in the query's order: position means nothing (the tools pick the control by name).
- with ``experiment_data: units``, ``experiment_start`` (``started``: the experiment's start date,
  for CUPED) and ``experiment_units`` (per variant: ``users, conversions`` and the per-unit sums
  ``sum_y, sum_y2, sum_x, sum_x2, sum_xy, sum_d, sum_d2, sum_yd``) over ``exposures`` and
  ``unit_events``; ``experiment_unit_quantile`` (``cap``) for winsorisation. Parameters:
  `:metric`, `:denominator`, `:start`, `:pre_start`, `:cap`, `:binary`, `:percentile`.
- ``historical_experiments``: ``key, hypothesis, metric, lift, p_value, verdict, started, ended,
  segment`` (segment: a JSON object as text, or NULL).
- ``known_funnels`` / ``known_metrics``: one name per row, used to explain an unknown name.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from activities.connectors.base import BaseConnector
from activities.connectors.checked import (
    ArmContext,
    checked_arm,
    checked_arms,
    finite_count,
    finite_number,
    mean_and_sd,
    sample_covariance,
)
from activities.connectors.mock import DATASET
from activities.connectors.models import (
    ExperimentResults,
    FunnelData,
    Granularity,
    HistoricalExperiment,
    MetricSeries,
    RatioMetric,
)
from activities.connectors.series import check_query, parse_day, series_from_daily
from activities.errors import (
    ConnectorConfigError,
    ConnectorUnavailableError,
    InvalidQueryError,
    UnknownFunnelError,
    UnknownMetricError,
)

_SEGMENT_FILTER = """
  AND (:platform IS NULL OR {t}platform = :platform)
  AND (:country IS NULL OR {t}country = :country)
  AND (:device IS NULL OR {t}device = :device)"""


# One row per exposed unit (a unit exposed to more than one arm is left out, as Eppo does): its arm, the metric (or a ratio's numerator) summed from its first
# exposure on (y; yc once capped at :cap), the ratio's denominator (d), and the same metric over the
# pre-period [:pre_start, :start) (x, the CUPED covariate; 0 without a start date). With :binary = 1
# (conversion metrics) y and x are 1 for a unit with any positive value, else 0. Portable SQL
# (DuckDB, SQLite, Postgres): sums, not STDDEV; the quantile by rank, not QUANTILE_CONT.
_UNITS = """
WITH units AS (
  SELECT unit_id, MIN(variant) AS variant, MIN(exposed_at) AS exposed_at
  FROM exposures WHERE experiment_key = :experiment_key
  GROUP BY unit_id
  HAVING COUNT(DISTINCT variant) = 1
),
sums AS (
  SELECT u.unit_id, u.variant, u.exposed_at,
    SUM(CASE WHEN ev.metric = :metric AND ev.event_at >= u.exposed_at THEN ev.value ELSE 0 END) AS y_raw,
    SUM(CASE WHEN ev.metric = :denominator AND ev.event_at >= u.exposed_at THEN ev.value ELSE 0 END) AS d,
    SUM(CASE WHEN ev.metric = :metric AND ev.event_at >= :pre_start AND ev.event_at < :start
        THEN ev.value ELSE 0 END) AS x_raw
  FROM units u LEFT JOIN unit_events ev ON ev.unit_id = u.unit_id AND ev.metric IN (:metric, :denominator)
  GROUP BY u.unit_id, u.variant, u.exposed_at
),
per_unit AS (
  SELECT unit_id, variant, exposed_at, d,
    CASE WHEN :binary = 1 THEN (CASE WHEN y_raw > 0 THEN 1.0 ELSE 0.0 END) ELSE y_raw END AS y,
    CASE WHEN :binary = 1 THEN (CASE WHEN y_raw > 0 THEN 1.0 ELSE 0.0 END)
         WHEN :cap IS NOT NULL AND y_raw > :cap THEN :cap ELSE y_raw END AS yc,
    CASE WHEN :binary = 1 THEN (CASE WHEN x_raw > 0 THEN 1.0 ELSE 0.0 END) ELSE x_raw END AS x
  FROM sums
)"""


class WarehouseQueries(BaseModel):
    model_config = ConfigDict(extra="forbid")

    funnel: str = """
SELECT s.step AS step, COALESCE(SUM(f.users), 0) AS users
FROM funnel_steps s
LEFT JOIN funnel_daily f
  ON f.funnel = s.funnel AND f.step = s.step
  AND f.date BETWEEN :start AND :end""" + _SEGMENT_FILTER.format(t="f.") + """
WHERE s.funnel = :funnel
GROUP BY s.step, s.step_index
ORDER BY s.step_index"""
    metric_series: str = """
SELECT date, SUM(value) AS value
FROM daily_metrics
WHERE metric = :metric AND date BETWEEN :start AND :end""" + _SEGMENT_FILTER.format(t="") + """
GROUP BY date
ORDER BY date"""
    experiment_results: str = """
SELECT variant, users, conversions, revenue_mean, revenue_sd, value_mean, value_sd, metric_kind, as_of
FROM experiment_results
WHERE experiment_key = :experiment_key AND metric = :metric"""
    historical_experiments: str = """
SELECT experiment_key AS key, hypothesis, metric, lift, p_value, verdict, started, ended, segment
FROM historical_experiments
WHERE (:metric IS NULL OR metric = :metric)
ORDER BY ended DESC, experiment_key DESC
LIMIT :limit"""
    experiment_start: str = """
SELECT started FROM experiments WHERE experiment_key = :experiment_key"""
    experiment_units: str = _UNITS + """
SELECT variant, COUNT(*) AS users, SUM(CASE WHEN y > 0 OR d > 0 THEN 1 ELSE 0 END) AS conversions,
  SUM(yc) AS sum_y, SUM(yc * yc) AS sum_y2, SUM(x) AS sum_x, SUM(x * x) AS sum_x2, SUM(x * yc) AS sum_xy,
  SUM(d) AS sum_d, SUM(d * d) AS sum_d2, SUM(y * d) AS sum_yd, MIN(exposed_at) AS first_exposed
FROM per_unit
GROUP BY variant
ORDER BY first_exposed, variant"""
    experiment_unit_quantile: str = _UNITS + """,
ranked AS (SELECT y, ROW_NUMBER() OVER (ORDER BY y) AS rn, COUNT(*) OVER () AS n FROM per_unit)
SELECT MIN(y) AS cap FROM ranked WHERE rn >= :percentile * n"""
    known_funnels: str = "SELECT DISTINCT funnel FROM funnel_steps"
    known_metrics: str = "SELECT DISTINCT metric FROM daily_metrics"


def _mock_ratio_metrics() -> dict[str, RatioMetric]:
    metrics = json.loads(DATASET.read_text(encoding="utf-8"))["metrics"]
    return {name: RatioMetric.model_validate(spec) for name, spec in metrics.items() if "numerator" in spec}


class WarehouseConnector(BaseConnector):
    name = "warehouse"

    class Settings(BaseConnector.Settings):
        url: str | None = Field(None, description="SQLAlchemy URL; default: DuckDB")
        duckdb_path: str = Field(":memory:", description="DuckDB database file (when no url)")
        load_mock_dataset: bool = Field(False, description="create the reference tables from the mock dataset")
        mock_end_date: date | None = Field(None, description="with load_mock_dataset: the dataset's last day")
        queries: WarehouseQueries = Field(default_factory=WarehouseQueries)
        segment_columns: list[str] = Field(["platform", "country", "device"],
                                           description="segment keys; each is a query parameter")
        ratio_metrics: dict[str, RatioMetric] = Field(default_factory=_mock_ratio_metrics)
        experiment_data: Literal["summary", "units"] = Field(
            "summary", description="summary: one row per variant (the experiment_results query); units: per-unit "
                                   "exposures and events (experiment_units), with CUPED, ratio and capped statistics")
        conversion_metrics: list[str] = Field(
            default_factory=list, description="with experiment_data units: metrics read as 0/1 per unit "
                                              "(converted or not); the others are continuous")
        pre_period_days: int = Field(28, ge=1, le=365, description="CUPED: days before the start date to read")

    def __init__(self, settings: Mapping[str, Any] | None = None, *, env: Mapping[str, str] | None = None) -> None:
        super().__init__(settings, env=env)
        self._db: _Database | None = None
        self._lock = asyncio.Lock()  # one query at a time: a DuckDB connection is not for concurrent use

    async def funnel(self, name: str, start: date, end: date, segment: dict[str, str] | None = None) -> FunnelData:
        check_query(self.name, start, end)
        params = {"funnel": name, "start": start, "end": end, **self._segment_params(segment)}
        rows = await self._query("funnel", params)
        if not rows:
            raise UnknownFunnelError(self.name, name, await self._names("known_funnels"))
        self._require_columns("funnel", rows[0], ("step", "users"))
        return FunnelData.from_counts(name, ((r["step"], int(r["users"] or 0)) for r in rows), start=start,
                                      end=end, segment=segment)

    async def metric_series(self, metric: str, start: date, end: date, segment: dict[str, str] | None = None,
                            granularity: Granularity = "day") -> MetricSeries:
        check_query(self.name, start, end, granularity)
        ratio = self.settings.ratio_metrics.get(metric)
        parts = [ratio.numerator, ratio.denominator] if ratio else [metric]
        daily = []
        for part in parts:
            rows = await self._query("metric_series", {"metric": part, "start": start, "end": end,
                                                       **self._segment_params(segment)})
            if rows:
                self._require_columns("metric_series", rows[0], ("date", "value"))
            elif part not in (known := await self._names("known_metrics")):
                raise UnknownMetricError(self.name, metric if not ratio else part,
                                         [*known, *self.settings.ratio_metrics])
            daily.append({parse_day(r["date"]): float(r["value"] or 0) for r in rows})
        return series_from_daily(metric, daily[0], denominators=daily[1] if ratio else None,
                                 granularity=granularity, segment=segment, source=self.name)

    async def experiment_results(self, experiment_key: str, metric: str, *,
                                 cap_percentile: float | None = None) -> ExperimentResults:
        if self.settings.experiment_data == "units":
            return await self._unit_results(experiment_key, metric, cap_percentile)
        rows = await self._query("experiment_results", {"experiment_key": experiment_key, "metric": metric})
        if rows:
            self._require_columns("experiment_results", rows[0], ("variant", "users", "conversions"))
        kinds = {r.get("metric_kind") for r in rows} - {None}
        kind = kinds.pop() if len(kinds) == 1 else "conversion"
        if cap_percentile is not None and kind == "continuous":
            raise InvalidQueryError(f"{self.name}: cap_percentile needs per-unit data, and experiment "
                                    f"'{experiment_key}' has one summary row per variant; set experiment_data: units "
                                    "(exposures and unit_events tables) or leave cap_percentile out")
        ctx = ArmContext(self.name, experiment_key, metric)
        optional = ("revenue_mean", "revenue_sd", "value_mean", "value_sd")
        variants = checked_arms(ctx, (checked_arm(ctx, r["variant"], r["users"], r["conversions"],
                                                  **{k: r.get(k) for k in optional}) for r in rows))
        stamps = [r["as_of"] for r in rows if r.get("as_of") is not None]
        return ExperimentResults(experiment_key=experiment_key, metric=metric, variants=variants,
                                 metric_kind=kind,  # type: ignore[arg-type]
                                 as_of=_timestamp(max(stamps)) if stamps else datetime.now(timezone.utc))

    async def _unit_results(self, experiment_key: str, metric: str, cap_percentile: float | None) -> ExperimentResults:
        """Per-variant statistics computed in SQL from per-unit exposures and events: means and sds,
        CUPED pre-period statistics when the experiment has a start date, a ratio metric's parts, and
        with ``cap_percentile`` the metric capped at that quantile of all units (nearest rank)."""
        ratio = self.settings.ratio_metrics.get(metric)
        kind = "ratio" if ratio else "conversion" if metric in self.settings.conversion_metrics else "continuous"
        starts = await self._query("experiment_start", {"experiment_key": experiment_key})
        start = parse_day(starts[0]["started"]) if starts and starts[0].get("started") is not None else None
        params: dict[str, Any] = {
            "experiment_key": experiment_key, "metric": ratio.numerator if ratio else metric,
            "denominator": ratio.denominator if ratio else None, "binary": int(kind == "conversion"),
            "start": start, "pre_start": start - timedelta(days=self.settings.pre_period_days) if start else None,
            "cap": None}
        ctx = ArmContext(self.name, experiment_key, metric)
        cap = None
        if cap_percentile is not None and kind == "continuous":
            found = await self._query("experiment_unit_quantile", {**params, "percentile": cap_percentile})
            if found and found[0].get("cap") is not None:
                cap = params["cap"] = finite_number(found[0]["cap"], ctx, None, "capped_at")
        rows = await self._query("experiment_units", params)
        arms = []
        for r in rows:
            variant, n = str(r["variant"]), finite_count(r["users"], ctx, str(r["variant"]), "users")
            total = {k: finite_number(r.get(k) or 0, ctx, variant, k) for k in
                     ("sum_y", "sum_y2", "sum_x", "sum_x2", "sum_xy", "sum_d", "sum_d2", "sum_yd")}
            y_mean, y_sd = mean_and_sd(n, total["sum_y"], total["sum_y2"])
            extra: dict[str, float | None] = {}
            if ratio:
                d_mean, d_sd = mean_and_sd(n, total["sum_d"], total["sum_d2"])
                extra.update(numerator_mean=y_mean, numerator_sd=y_sd, denominator_mean=d_mean, denominator_sd=d_sd,
                             numerator_denominator_covariance=sample_covariance(n, total["sum_y"], total["sum_d"],
                                                                                total["sum_yd"]))
            elif kind == "continuous":
                extra.update(value_mean=y_mean, value_sd=y_sd, capped_at=cap)
            if start is not None and not ratio:
                x_mean, x_sd = mean_and_sd(n, total["sum_x"], total["sum_x2"])
                extra.update(pre_mean=x_mean, pre_sd=x_sd,
                             pre_covariance=sample_covariance(n, total["sum_x"], total["sum_y"], total["sum_xy"]))
            # continuous metrics count every exposed unit as measured (as the summary rows do)
            arms.append(checked_arm(ctx, variant, n, n if kind == "continuous" else r["conversions"], **extra))
        return ExperimentResults(experiment_key=experiment_key, metric=metric,
                                 metric_kind=kind,  # type: ignore[arg-type]
                                 variants=checked_arms(ctx, arms), as_of=datetime.now(timezone.utc))

    async def historical_experiments(self, limit: int = 20, metric: str | None = None) -> list[HistoricalExperiment]:
        if self.settings.history_file:
            return await super().historical_experiments(limit, metric)
        rows = await self._query("historical_experiments", {"metric": metric, "limit": int(limit)})
        out = []
        for r in rows:
            seg = r.get("segment")
            fields = {k: r[k] for k in HistoricalExperiment.model_fields if k in r}
            out.append(HistoricalExperiment.model_validate({
                **fields, "started": parse_day(r["started"]), "ended": parse_day(r["ended"]),
                "segment": json.loads(seg) if isinstance(seg, str) and seg else (seg or {})}))
        return out

    async def aclose(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await asyncio.to_thread(db.close)

    # -- internals -----------------------------------------------------------------------------

    def _segment_params(self, segment: Mapping[str, str] | None) -> dict[str, str | None]:
        allowed = self.settings.segment_columns
        unknown = sorted(set(segment or {}) - set(allowed))
        if unknown:
            raise InvalidQueryError(f"{self.name}: unknown segment dimension(s) {', '.join(unknown)}; "
                                    f"segment_columns are: {', '.join(allowed)}")
        return {c: (segment or {}).get(c) for c in allowed}

    async def _names(self, query: str) -> list[str]:
        return sorted(str(next(iter(r.values()))) for r in await self._query(query, {}))

    async def _query(self, which: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        sql = getattr(self.settings.queries, which)
        async with self._lock:
            if self._db is None:
                self._db = await asyncio.to_thread(_Database.open, self.settings)
            return await asyncio.to_thread(self._db.run, which, sql, params)

    def _require_columns(self, which: str, row: Mapping[str, Any], names: Sequence[str]) -> None:
        missing = [n for n in names if n not in row]
        if missing:
            raise ConnectorConfigError(f"{self.name}: the '{which}' query must return columns "
                                       f"{', '.join(names)}; it returned {', '.join(row)} (missing {', '.join(missing)})")


class _Database:
    """A DuckDB connection or a SQLAlchemy engine, behind one `run(sql, params)`."""

    def __init__(self, duck: Any = None, engine: Any = None) -> None:
        self.duck, self.engine = duck, engine

    @classmethod
    def open(cls, settings: WarehouseConnector.Settings) -> _Database:
        try:
            if settings.url:
                import sqlalchemy

                db = cls(engine=sqlalchemy.create_engine(settings.url))
            else:
                import duckdb

                db = cls(duck=duckdb.connect(settings.duckdb_path))
        except Exception as e:  # bad URL, missing driver, unreadable file
            raise ConnectorConfigError(f"warehouse: cannot open {_redacted(settings.url) or settings.duckdb_path}: "
                                       f"{type(e).__name__}: {e}") from None
        if settings.load_mock_dataset:
            load_mock_dataset(db.duck if db.duck is not None else db.engine, end_date=settings.mock_end_date)
        return db

    def run(self, which: str, sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        names = _param_names(sql)
        missing = sorted(names - set(params))
        if missing:
            raise ConnectorConfigError(f"warehouse: the '{which}' query uses unknown parameter(s) "
                                       f"{', '.join(':' + m for m in missing)}; available: "
                                       f"{', '.join(':' + p for p in sorted(params)) or 'none'}")
        bound = {k: v for k, v in params.items() if k in names}
        try:
            if self.duck is not None:
                cur = self.duck.execute(_PARAM.sub(r"$\1", sql), bound)
                cols = [d[0] for d in cur.description]
                return [dict(zip(cols, row)) for row in cur.fetchall()]
            import sqlalchemy

            stmt = sqlalchemy.text(sql).bindparams(
                *(sqlalchemy.bindparam(k, type_=sqlalchemy.Date()) for k, v in bound.items() if isinstance(v, date)))
            with self.engine.connect() as conn:
                return [dict(row._mapping) for row in conn.execute(stmt, bound)]
        except ConnectorConfigError:
            raise
        except Exception as e:
            raise _database_error(which, e) from None

    def close(self) -> None:
        if self.duck is not None:
            self.duck.close()
        if self.engine is not None:
            self.engine.dispose()


# `:name`, but not `::type` casts nor `a:b` inside words.
_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def _param_names(sql: str) -> set[str]:
    return set(_PARAM.findall(sql))


def _database_error(which: str, e: Exception) -> Exception:
    """Connection problems are retried; anything else (a wrong table or column) is a config error."""
    text = f"{type(e).__name__}: {e}".splitlines()[0][:500]
    transient = ("OperationalError", "DisconnectionError", "TimeoutError", "IOException", "ConnectionException")
    if any(t in type(e).__name__ for t in transient) and "no such" not in text:
        return ConnectorUnavailableError(f"warehouse: the '{which}' query failed: {text}")
    return ConnectorConfigError(f"warehouse: the '{which}' query failed: {text}. "
                                "Check the query in the connector's `queries` settings against your schema.")


def _redacted(url: str | None) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url or "")


def _timestamp(value: Any) -> datetime:
    ts = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)


# ---------------------------------------------------------------------------------------------
# The reference schema, filled from the mock dataset (demos and tests)
# ---------------------------------------------------------------------------------------------

TABLES: dict[str, list[tuple[str, str]]] = {
    "daily_metrics": [("date", "DATE"), ("platform", "VARCHAR"), ("country", "VARCHAR"), ("device", "VARCHAR"),
                      ("metric", "VARCHAR"), ("value", "DOUBLE")],
    "funnel_steps": [("funnel", "VARCHAR"), ("step_index", "INTEGER"), ("step", "VARCHAR")],
    "funnel_daily": [("date", "DATE"), ("platform", "VARCHAR"), ("country", "VARCHAR"), ("device", "VARCHAR"),
                     ("funnel", "VARCHAR"), ("step", "VARCHAR"), ("users", "INTEGER")],
    "experiment_results": [("experiment_key", "VARCHAR"), ("metric", "VARCHAR"), ("metric_kind", "VARCHAR"),
                           ("variant", "VARCHAR"), ("users", "INTEGER"), ("conversions", "INTEGER"),
                           ("revenue_mean", "DOUBLE"), ("revenue_sd", "DOUBLE"), ("value_mean", "DOUBLE"),
                           ("value_sd", "DOUBLE"), ("as_of", "TIMESTAMP")],
    # per-unit data for experiment_data: units (empty in the reference schema; see docs/connectors.md)
    "experiments": [("experiment_key", "VARCHAR"), ("started", "DATE")],
    "exposures": [("experiment_key", "VARCHAR"), ("unit_id", "VARCHAR"), ("variant", "VARCHAR"),
                  ("exposed_at", "TIMESTAMP")],
    "unit_events": [("unit_id", "VARCHAR"), ("metric", "VARCHAR"), ("value", "DOUBLE"), ("event_at", "TIMESTAMP")],
    "historical_experiments": [("experiment_key", "VARCHAR"), ("hypothesis", "VARCHAR"), ("metric", "VARCHAR"),
                               ("lift", "DOUBLE"), ("p_value", "DOUBLE"), ("verdict", "VARCHAR"),
                               ("started", "DATE"), ("ended", "DATE"), ("segment", "VARCHAR")],
}


def mock_tables(end_date: date | None = None, dataset_path: str | Path = DATASET) -> dict[str, list[tuple]]:
    """The mock dataset as rows of the reference tables (`TABLES`), dates shifted so that the last
    day is ``end_date`` (default: the dataset's own calendar)."""
    raw = json.loads(Path(dataset_path).read_text(encoding="utf-8"))
    shift = (end_date - date.fromisoformat(raw["calendar"]["end"])) if end_date else timedelta(0)

    def day(text: str) -> str:
        return (date.fromisoformat(text[:10]) + shift).isoformat()

    device_of = {p: d for d, ps in raw["derived_dimensions"]["device"]["values"].items() for p in ps}
    col = {c: i for i, c in enumerate(raw["daily"]["columns"])}
    counts = {name: spec["column"] for name, spec in raw["metrics"].items() if "column" in spec}
    tables: dict[str, list[tuple]] = {name: [] for name in TABLES}
    for r in raw["daily"]["rows"]:
        dims = (day(r[col["date"]]), r[col["platform"]], r[col["country"]], device_of[r[col["platform"]]])
        tables["daily_metrics"] += [(*dims, m, float(r[col[c]])) for m, c in counts.items()]
        for funnel, steps in raw["funnels"].items():
            tables["funnel_daily"] += [(*dims, funnel, s, int(r[col[s]])) for s in steps]
    for funnel, steps in raw["funnels"].items():
        tables["funnel_steps"] += [(funnel, i, s) for i, s in enumerate(steps)]
    for key, res in raw["experiment_results"].items():
        as_of = day(res["as_of"]) + " 00:00:00"
        tables["experiment_results"] += [
            (key, res["metric"], res["metric_kind"], v["variant"], v["users"], v["conversions"],
             v.get("revenue_mean"), v.get("revenue_sd"), v.get("value_mean"), v.get("value_sd"), as_of)
            for v in res["variants"]]
    for h in raw["historical_experiments"]:
        tables["historical_experiments"].append(
            (h["key"], h["hypothesis"], h["metric"], h["lift"], h["p_value"], h["verdict"], day(h["started"]),
             day(h["ended"]), json.dumps(h["segment"])))
    return tables


def load_mock_dataset(target: Any, *, end_date: date | None = None) -> None:
    """Create the reference tables in ``target`` (a `duckdb` connection, or a SQLAlchemy engine or
    URL) and fill them from the mock dataset. Existing tables of the same names are replaced."""
    import duckdb

    tables = mock_tables(end_date)
    if isinstance(target, duckdb.DuckDBPyConnection):
        for name, columns in TABLES.items():
            target.execute(f"DROP TABLE IF EXISTS {name}")
            target.execute(f"CREATE TABLE {name} ({', '.join(f'{c} {t}' for c, t in columns)})")
            if tables[name]:
                values = list(zip(*tables[name]))
                # Column lists unnested in one statement: ~100x faster than executemany.
                select = ", ".join(f"unnest($c{i})::{t}" for i, (_, t) in enumerate(columns))
                target.execute(f"INSERT INTO {name} SELECT {select}", {f"c{i}": list(v) for i, v in enumerate(values)})
        return
    import sqlalchemy

    engine = sqlalchemy.create_engine(target) if isinstance(target, str) else target
    with engine.begin() as conn:
        for name, columns in TABLES.items():
            conn.execute(sqlalchemy.text(f"DROP TABLE IF EXISTS {name}"))
            conn.execute(sqlalchemy.text(f"CREATE TABLE {name} ({', '.join(f'{c} {t}' for c, t in columns)})"))
            if tables[name]:
                insert = sqlalchemy.text(f"INSERT INTO {name} VALUES ({', '.join(':' + c for c, _ in columns)})")
                conn.execute(insert, [dict(zip((c for c, _ in columns), row)) for row in tables[name]])

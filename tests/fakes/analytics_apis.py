"""Local stand-ins for the GA4 Data API, Mixpanel's Query API and Amplitude's Dashboard REST API.

Each is a real HTTP server on 127.0.0.1 (a thread) that speaks the service's documented wire
format, so the connectors' real client code runs: Google's client over REST, httpx for the
others. They serve the mock dataset (the Shopwise shop), translated into each tool's event names,
so a connector's answers can be compared with the mock connector's exact numbers.

Every server records the requests it received, and `fail_next(status, body, headers)` makes the
next request fail (a 429 with Retry-After, a 401…).
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from activities.connectors.mock import DATASET, load_dataset

# Experiment numbers every fake serves for any experiment key (exposed users, converted users).
EXPERIMENT_ARMS = {"control": (20_000, 6_000), "treatment": (20_100, 6_633)}


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any = None

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class _Failure:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class FakeAPI:
    """A threaded HTTP server; subclasses implement `respond(request) -> (status, JSON body)`."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._failures: list[_Failure] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake._serve(self, None)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                fake._serve(self, json.loads(raw) if raw else None)

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def start(self) -> FakeAPI:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail_next(self, status: int, body: Any = None, headers: Mapping[str, str] | None = None) -> None:
        with self._lock:
            self._failures.append(_Failure(status, body, dict(headers or {})))

    def respond(self, request: Recorded) -> tuple[int, Any]:
        raise NotImplementedError

    def _serve(self, handler: BaseHTTPRequestHandler, body: Any) -> None:
        parts = urlsplit(handler.path)
        request = Recorded(handler.command, parts.path, parse_qs(parts.query, keep_blank_values=True),
                           dict(handler.headers.items()), body)
        with self._lock:
            self.requests.append(request)
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            status, payload, headers = failure.status, failure.body, failure.headers
        else:
            headers = {}
            try:
                status, payload = self.respond(request)
            except Exception as e:  # a bug in the fake or a request it does not understand
                status, payload = 400, {"error": f"fake server cannot answer: {type(e).__name__}: {e}"}
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            handler.send_header(k, v)
        handler.end_headers()
        handler.wfile.write(data)


class Shop:
    """The mock dataset as users per (event, day), filtered by platform / country."""

    def __init__(self) -> None:
        self.data = load_dataset(str(DATASET))

    def daily(self, column: str, start: date, end: date, filters: Mapping[str, Iterable[str]]) -> dict[date, float]:
        col = self.data.col
        wanted = {col[k]: {str(v).lower() for v in vs} for k, vs in filters.items()}
        out: dict[date, float] = defaultdict(float)
        lo, hi = start.isoformat(), end.isoformat()
        for r in self.data.rows:
            if lo <= r[col["date"]] <= hi and all(str(r[i]).lower() in vs for i, vs in wanted.items()):
                out[date.fromisoformat(r[col["date"]])] += r[col[column]]
        return dict(sorted(out.items()))

    def total(self, column: str, start: date, end: date, filters: Mapping[str, Iterable[str]]) -> float:
        return sum(self.daily(column, start, end, filters).values())


# Event names → dataset columns, per tool.
GA4_EVENTS = {"session_start": "visit", "view_item": "product_view", "add_to_cart": "add_to_cart",
              "begin_checkout": "checkout_start", "purchase": "purchase", "refund": "refunds"}
SEGMENT_SPEC_EVENTS = {"session_start": "visit", "Product Viewed": "product_view", "Product Added": "add_to_cart",
                       "Checkout Started": "checkout_start", "Order Completed": "purchase", "Order Refunded": "refunds"}


class FakeGA4(FakeAPI):
    """`POST /v1beta/properties/{id}:runReport`, for the dimensions and filters the connector uses."""

    PROPERTY = "123456789"

    def __init__(self) -> None:
        super().__init__()
        self.shop = Shop()

    def respond(self, request: Recorded) -> tuple[int, Any]:
        if request.path != f"/v1beta/properties/{self.PROPERTY}:runReport":
            return 404, {"error": {"code": 404, "message": f"no such method {request.path}", "status": "NOT_FOUND"}}
        body = request.body
        dims = [d["name"] for d in body.get("dimensions", [])]
        metrics = [m["name"] for m in body.get("metrics", [])]
        rng = body["dateRanges"][0]
        start, end = date.fromisoformat(rng["startDate"]), date.fromisoformat(rng["endDate"])
        filters, events = self._filters(body.get("dimensionFilter"))
        rows: list[tuple[list[str], list[str]]] = []
        if any(d.startswith("customUser:exp_") for d in dims):  # experiment report: variant × eventName
            for variant, (exposed, converted) in EXPERIMENT_ARMS.items():
                for event in events:
                    users = exposed if event == "experience_impression" else converted
                    rows.append(([variant, event], [str(users)]))
        elif dims == ["eventName"]:
            for event in events:
                rows.append(([event], [str(int(self.shop.total(GA4_EVENTS[event], start, end, filters)))]))
        elif dims == ["date"]:
            column = "revenue" if metrics == ["purchaseRevenue"] else GA4_EVENTS[events[0]]
            for day, value in self.shop.daily(column, start, end, filters).items():
                rows.append(([day.strftime("%Y%m%d")], [f"{value:g}" if column != "revenue" else f"{value:.2f}"]))
        else:
            return 400, {"error": {"code": 400, "message": f"fake GA4 cannot report {dims}", "status": "INVALID_ARGUMENT"}}
        return 200, {
            "dimensionHeaders": [{"name": d} for d in dims],
            "metricHeaders": [{"name": m} for m in metrics],
            "rows": [{"dimensionValues": [{"value": v} for v in dv], "metricValues": [{"value": v} for v in mv]}
                     for dv, mv in rows],
            "rowCount": len(rows),
            "kind": "analyticsData#runReport",
        }

    @staticmethod
    def _filters(expr: Mapping[str, Any] | None) -> tuple[dict[str, list[str]], list[str]]:
        """GA4 filter expression → dataset filters ({column: values}) and the eventName list."""
        names = {"platform": "platform", "countryId": "country"}
        filters: dict[str, list[str]] = {}
        events: list[str] = []
        leaves = (expr or {}).get("andGroup", {}).get("expressions", []) if expr and "andGroup" in expr else \
            ([expr] if expr else [])
        for leaf in leaves:
            f = leaf["filter"]
            if f["fieldName"] == "eventName":
                events = f["inListFilter"]["values"] if "inListFilter" in f else [f["stringFilter"]["value"]]
            elif f["fieldName"] == "deviceCategory":
                value = f["stringFilter"]["value"].lower()
                filters["platform"] = ["web"] if value == "desktop" else ["ios", "android"]
            else:
                filters[names[f["fieldName"]]] = [f["stringFilter"]["value"]]
        return filters, events


class FakeMixpanel(FakeAPI):
    """`GET /funnels`, `/segmentation`, `/segmentation/sum` of the Query API (basic auth checked)."""

    FUNNEL_ID = 7509  # the saved "checkout" funnel
    EXPERIMENT_FUNNEL_ID = 8801  # saved: $experiment_started → Order Completed
    STEPS = ["session_start", "Product Viewed", "Product Added", "Checkout Started", "Order Completed"]
    PROPERTIES = {"platform": "platform", "mp_country_code": "country"}

    def __init__(self, username: str, secret: str) -> None:
        super().__init__()
        self.shop = Shop()
        self.auth = "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode()

    def respond(self, request: Recorded) -> tuple[int, Any]:
        if request.headers.get("Authorization") != self.auth:
            return 401, {"error": "Invalid credentials", "status": "error"}
        start, end = (date.fromisoformat(request.param(k) or "") for k in ("from_date", "to_date"))
        filters = self._where(request.param("where") or "")
        if request.path == "/api/query/funnels":
            funnel_id = int(request.param("funnel_id") or 0)
            if funnel_id == self.EXPERIMENT_FUNNEL_ID:
                # Segmented by variant (`on`): {date: {variant: [steps]}}, plus "$overall".
                def steps(exposed: int, converted: int) -> list[dict[str, Any]]:
                    return [{"count": exposed, "event": "$experiment_started"},
                            {"count": converted, "event": "Order Completed"}]
                by_variant = {v: steps(e, c) for v, (e, c) in EXPERIMENT_ARMS.items()}
                overall = steps(*(sum(x) for x in zip(*EXPERIMENT_ARMS.values())))
                return 200, {"meta": {"dates": [start.isoformat()]},
                             "data": {start.isoformat(): {"$overall": overall, **by_variant}}}
            if funnel_id != self.FUNNEL_ID:
                return 400, {"error": f"funnel {funnel_id} not found", "status": "error"}
            steps, first = [], None
            for event in self.STEPS:
                count = int(self.shop.total(SEGMENT_SPEC_EVENTS[event], start, end, filters))
                first = first or count
                steps.append({"count": count, "event": event, "goal": event, "step_label": event,
                              "overall_conv_ratio": count / first if first else 0})
            return 200, {"meta": {"dates": [start.isoformat()]},
                         "data": {start.isoformat(): {"steps": steps,
                                                      "analysis": {"completion": steps[-1]["count"],
                                                                   "starting_amount": steps[0]["count"],
                                                                   "steps": len(steps), "worst": 1}}}}
        event = request.param("event") or ""
        if request.path == "/api/query/segmentation":
            daily = self.shop.daily(SEGMENT_SPEC_EVENTS[event], start, end, filters)
            return 200, {"data": {"series": [d.isoformat() for d in daily],
                                  "values": {event: {d.isoformat(): int(v) for d, v in daily.items()}}},
                         "legend_size": 1}
        if request.path == "/api/query/segmentation/sum":
            daily = self.shop.daily("revenue", start, end, filters)
            return 200, {"status": "ok", "computed_at": "2025-04-28T00:00:00+00:00",
                         "results": {d.isoformat(): round(v, 2) for d, v in daily.items()}}
        return 404, {"error": f"unknown endpoint {request.path}", "status": "error"}

    def _where(self, where: str) -> dict[str, list[str]]:
        return {self.PROPERTIES[prop]: [value] for prop, value in
                re.findall(r'properties\["([^"]+)"\] == "([^"]*)"', where) if prop in self.PROPERTIES}


class FakeAmplitude(FakeAPI):
    """`GET /api/2/funnels` and `/api/2/events/segmentation` (basic auth checked)."""

    def __init__(self, api_key: str, secret_key: str) -> None:
        super().__init__()
        self.shop = Shop()
        self.auth = "Basic " + base64.b64encode(f"{api_key}:{secret_key}".encode()).decode()

    def respond(self, request: Recorded) -> tuple[int, Any]:
        if request.headers.get("Authorization") != self.auth:
            return 401, {"error": "Invalid API key or secret key"}
        start, end = (date(int(s[:4]), int(s[4:6]), int(s[6:])) for s in
                      (request.param("start") or "", request.param("end") or ""))
        events = [json.loads(e) for e in request.query.get("e", [])]
        segments = [json.loads(s) for s in request.query.get("s", [])] or [[]]
        if request.path == "/api/2/funnels":
            groups = []
            for index, segment in enumerate(segments):
                if events[0]["event_type"] == "$exposure":
                    variant = segment[0]["values"][0]
                    raw = list(EXPERIMENT_ARMS[variant])
                else:
                    filters = self._filters(segment)
                    raw = [int(self.shop.total(SEGMENT_SPEC_EVENTS[e["event_type"]], start, end, filters))
                           for e in events]
                groups.append({"meta": {"segmentIndex": index}, "cumulativeRaw": raw,
                               "cumulative": [r / raw[0] if raw[0] else 0 for r in raw],
                               "stepByStep": [1.0] + [b / a if a else 0 for a, b in zip(raw, raw[1:])],
                               "events": [e["event_type"] for e in events]})
            return 200, {"data": groups}
        if request.path == "/api/2/events/segmentation":
            event = events[0]
            column = "revenue" if request.param("m") == "sums" else SEGMENT_SPEC_EVENTS[event["event_type"]]
            daily = self.shop.daily(column, start, end, self._filters(segments[0]))
            days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
            return 200, {"data": {"series": [[daily.get(d, 0) for d in days]], "seriesLabels": [0],
                                  "xValues": [d.isoformat() for d in days]}}
        return 404, {"error": f"unknown endpoint {request.path}"}

    @staticmethod
    def _filters(segment: list[dict[str, Any]]) -> dict[str, list[str]]:
        return {f["prop"]: f["values"] for f in segment if f["prop"] in ("platform", "country")}

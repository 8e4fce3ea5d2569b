"""Small in-memory stand-ins for the GrowthBook REST API v1 and the Unleash Admin API.

Each runs a real HTTP server on 127.0.0.1 (a random port) in a thread, implements only the
endpoints the adapters use, with the documented request and response shapes, and records every
request so tests can assert on paths, headers and bodies. `fail_next` queues an error response
(for 401 / 429 / 5xx tests); `hide_next_get` makes the next GET of a path answer 404, to stage the
race where another attempt creates the flag between our GET and our POST.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

Response = tuple[int, Any, dict[str, str]]


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class _Failure:
    status: int
    body: Any
    headers: dict[str, str]
    method: str | None
    path: str | None


class FakeServer:
    """The HTTP plumbing; subclasses implement `authorized` and `route`."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._failures: deque[_Failure] = deque()
        self._hidden: set[str] = set()
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                status, payload, headers = fake.handle(
                    self.command, unquote(split.path), {k: v[0] for k, v in parse_qs(split.query).items()},
                    {k.lower(): v for k, v in self.headers.items()}, body)
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if data:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # A short poll interval: shutdown() waits for it, once per test.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail_next(self, status: int, body: Any = None, headers: dict[str, str] | None = None, *,
                  method: str | None = None, path: str | None = None) -> None:
        """Answer the next matching request (any, by default) with this error instead."""
        with self.lock:
            self._failures.append(_Failure(status, body if body is not None else {"message": f"injected {status}"},
                                           headers or {}, method, path))

    def hide_next_get(self, path: str) -> None:
        with self.lock:
            self._hidden.add(path)

    def writes(self) -> list[Recorded]:
        return [r for r in self.requests if r.method != "GET"]

    def handle(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: Any) -> Response:
        with self.lock:
            self.requests.append(Recorded(method, path, query, headers, body))
            for failure in list(self._failures):
                if failure.method in (None, method) and failure.path in (None, path):
                    self._failures.remove(failure)
                    return failure.status, failure.body, failure.headers
            if not self.authorized(headers):
                return 401, {"message": "Unauthorized"}, {}
            if method == "GET" and path in self._hidden:
                self._hidden.discard(path)
                return 404, {"message": "not found"}, {}
            return self.route(method, path, query, body)

    def authorized(self, headers: dict[str, str]) -> bool:
        raise NotImplementedError

    def route(self, method: str, path: str, query: dict[str, str], body: Any) -> Response:
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------
# GrowthBook
# ---------------------------------------------------------------------------------------------


class FakeGrowthBook(FakeServer):
    """GrowthBook REST API v1: features (create, get, partial update, toggle, list)."""

    def __init__(self, api_key: str = "secret_test", environments: tuple[str, ...] = ("dev", "production")) -> None:
        super().__init__()
        self.api_key = api_key
        self.environments = environments
        self.features: dict[str, dict[str, Any]] = {}

    def authorized(self, headers: dict[str, str]) -> bool:
        return headers.get("authorization") == f"Bearer {self.api_key}"

    def route(self, method: str, path: str, query: dict[str, str], body: Any) -> Response:
        if path == "/api/v1/features" and method == "POST":
            return self._create(body)
        if path == "/api/v1/features" and method == "GET":
            return self._list(query)
        m = re.fullmatch(r"/api/v1/features/([^/]+)(/toggle)?", path)
        if not m:
            return 404, {"message": f"no route {method} {path}"}, {}
        feature = self.features.get(m.group(1))
        if feature is None:
            return 404, {"message": "Could not find feature"}, {}
        if method == "GET" and not m.group(2):
            return 200, {"feature": feature}, {}
        if method == "POST" and m.group(2):
            for env, enabled in body["environments"].items():
                feature["environments"][env]["enabled"] = bool(enabled)
            return 200, {"feature": feature}, {}
        if method == "POST":
            for env, settings in (body.get("environments") or {}).items():
                feature["environments"][env] = _gb_environment(settings)
            for k in ("description", "owner", "project", "defaultValue", "tags", "archived"):
                if k in body:
                    feature[k] = body[k]
            return 200, {"feature": feature}, {}
        return 405, {"message": "method not allowed"}, {}

    def _create(self, body: dict[str, Any]) -> Response:
        missing = [k for k in ("id", "owner", "valueType", "defaultValue") if k not in body]
        if missing:
            return 400, {"message": f"missing {missing}"}, {}
        if body["id"] in self.features:
            return 400, {"message": f"Feature id '{body['id']}' already exists."}, {}
        environments = {env: {"enabled": False, "defaultValue": body["defaultValue"], "rules": []}
                        for env in self.environments}
        for env, settings in (body.get("environments") or {}).items():
            environments[env] = _gb_environment(settings, body["defaultValue"])
        self.features[body["id"]] = {
            "id": body["id"], "dateCreated": "2025-05-01T00:00:00Z", "dateUpdated": "2025-05-01T00:00:00Z",
            "archived": False, "description": body.get("description", ""), "owner": body["owner"],
            "project": body.get("project", ""), "valueType": body["valueType"], "defaultValue": body["defaultValue"],
            "tags": body.get("tags", []), "environments": environments,
            "revision": {"version": 1, "comment": "", "date": "2025-05-01T00:00:00Z", "publishedBy": ""}}
        return 200, {"feature": self.features[body["id"]]}, {}

    def _list(self, query: dict[str, str]) -> Response:
        limit, offset = int(query.get("limit", 10)), int(query.get("offset", 0))
        items = [f for f in self.features.values() if not query.get("projectId") or f["project"] == query["projectId"]]
        page = items[offset: offset + limit]
        more = offset + limit < len(items)
        return 200, {"features": page, "limit": limit, "offset": offset, "count": len(page), "total": len(items),
                     "hasMore": more, "nextOffset": offset + limit if more else None}, {}


def _gb_environment(settings: dict[str, Any], default_value: str = "") -> dict[str, Any]:
    """A request's environment as GrowthBook answers it: experiment rules list their variations
    under `value` (requests send `values`), and every rule gets an id."""
    rules = []
    for i, rule in enumerate(settings.get("rules") or []):
        rule = dict(rule)
        if rule.get("type") == "experiment" and "values" in rule:
            rule["value"] = rule.pop("values")
        rule.setdefault("id", f"fr_{i}")
        rules.append(rule)
    return {"enabled": bool(settings["enabled"]), "defaultValue": default_value, "rules": rules}


# ---------------------------------------------------------------------------------------------
# Unleash
# ---------------------------------------------------------------------------------------------


class FakeUnleash(FakeServer):
    """Unleash Admin API: project features, environment on/off, strategies with variants."""

    def __init__(self, token: str = "*:*.unleash-admin-token", environments: tuple[str, ...] = ("development", "production")) -> None:
        super().__init__()
        self.token = token
        self.environments = environments
        self.features: dict[str, dict[str, Any]] = {}
        self.archived: set[str] = set()

    def authorized(self, headers: dict[str, str]) -> bool:
        return headers.get("authorization") == self.token

    def route(self, method: str, path: str, query: dict[str, str], body: Any) -> Response:
        m = re.fullmatch(r"/api/admin/projects/([^/]+)/features(?:/([^/]+)(?:/environments/([^/]+)(?:/(on|off|strategies)(?:/([^/]+))?)?)?)?", path)
        if not m:
            return 404, {"name": "NotFoundError", "message": f"no route {method} {path}"}, {}
        project, name, env, action, strategy_id = m.groups()
        if name is None:
            if method == "POST":
                return self._create(project, body)
            return 200, {"version": 2, "features": [
                {"name": f["name"], "type": f["type"], "project": f["project"]}
                for f in self.features.values() if f["project"] == project]}, {}
        feature = self.features.get(name)
        if feature is None or feature["project"] != project:
            return 404, {"name": "NotFoundError", "message": f"Could not find feature flag with name {name}"}, {}
        if env is None:
            return (200, feature, {}) if method == "GET" else (405, {"message": "method not allowed"}, {})
        environment = next((e for e in feature["environments"] if e["name"] == env), None)
        if environment is None:
            return 404, {"name": "NotFoundError", "message": f"Could not find environment {env}"}, {}
        if action in ("on", "off") and method == "POST":
            environment["enabled"] = action == "on"
            return 200, None, {}
        if action == "strategies" and method == "POST" and strategy_id is None:
            strategy, error = _unleash_strategy(body, str(uuid.uuid4()), name)
            if error:
                return 400, {"name": "BadDataError", "message": error}, {}
            environment["strategies"].append(strategy)
            return 200, strategy, {}
        if action == "strategies" and method == "PUT" and strategy_id:
            index = next((i for i, s in enumerate(environment["strategies"]) if s["id"] == strategy_id), None)
            if index is None:
                return 404, {"name": "NotFoundError", "message": f"no strategy {strategy_id}"}, {}
            strategy, error = _unleash_strategy(body, strategy_id, name)
            if error:
                return 400, {"name": "BadDataError", "message": error}, {}
            environment["strategies"][index] = strategy
            return 200, strategy, {}
        return 405, {"message": "method not allowed"}, {}

    def _create(self, project: str, body: dict[str, Any]) -> Response:
        name = body.get("name")
        if not name:
            return 400, {"name": "BadDataError", "message": '"name" is required'}, {}
        if name in self.features or name in self.archived:
            return 409, {"name": "NameExistsError", "message": f"The feature flag name {name} already exists"}, {}
        self.features[name] = {
            "name": name, "description": body.get("description", ""), "type": body.get("type", "release"),
            "project": project, "impressionData": body.get("impressionData", False), "archived": False,
            "stale": False, "createdAt": "2025-05-01T00:00:00Z",
            "environments": [{"name": e, "enabled": False, "type": e, "sortOrder": i, "strategies": []}
                             for i, e in enumerate(self.environments)]}
        return 201, self.features[name], {}


def _unleash_strategy(body: dict[str, Any], strategy_id: str, feature: str) -> tuple[dict[str, Any], str]:
    """Validate and normalise a strategy the way Unleash does for variants: at least one
    `variable` variant; the `fix` weights may not exceed 1000; the `variable` ones share the rest."""
    variants = [dict(v) for v in body.get("variants") or []]
    for v in variants:
        if not {"name", "weight", "weightType", "stickiness"} <= set(v):
            return {}, f"variant {v} needs name, weight, weightType and stickiness"
    if variants:
        variable = [v for v in variants if v["weightType"] == "variable"]
        if not variable:
            return {}, 'There must be at least one "variable" variant'
        fixed = sum(v["weight"] for v in variants if v["weightType"] == "fix")
        if fixed > 1000:
            return {}, "The traffic distribution total must equal 100%"
        share, remainder = divmod(1000 - fixed, len(variable))
        for i, v in enumerate(variable):
            v["weight"] = share + (1 if i < remainder else 0)
    strategy = {"id": strategy_id, "featureName": feature, "name": body["name"], "title": body.get("title"),
                "disabled": body.get("disabled", False), "sortOrder": body.get("sortOrder", 0),
                "constraints": body.get("constraints", []), "parameters": body.get("parameters", {}),
                "variants": variants, "segments": body.get("segments", [])}
    return strategy, ""

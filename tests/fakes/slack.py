"""A local stand-in for Slack's Web API (`chat.postMessage`, `chat.update`, `views.open`).

A real HTTP server on 127.0.0.1 in a thread, so `slack_sdk`'s own client code runs against it.
It answers as Slack documents: HTTP 200 with `{"ok": true, …}` or `{"ok": false, "error": …}`,
and HTTP 429 `{"ok": false, "error": "ratelimited"}` with a `Retry-After` header when rate limited.
It checks the bearer token, knows a few channels, records every call, and `fail_next` queues a
failure for one method.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class SlackCall:
    method: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class _Failure:
    method: str
    error: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)


class FakeSlack:
    def __init__(self, token: str = "xoxb-test-token", channels: dict[str, str] | None = None) -> None:
        self.token = token
        self.channels = channels or {"#growth": "C0GROWTH", "C0GROWTH": "C0GROWTH"}
        self.calls: list[SlackCall] = []
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}  # (channel id, ts) → last content
        self._failures: deque[_Failure] = deque()
        self._lock = threading.Lock()
        self._ts = 1700000000
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, payload, extra = fake.handle(self.path.split("?")[0], headers, raw)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                for k, v in extra.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01},
                                        daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/api/"

    def __enter__(self) -> FakeSlack:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail_next(self, method: str, error: str, *, status: int = 200, headers: dict[str, str] | None = None) -> None:
        with self._lock:
            self._failures.append(_Failure(method, error, status, headers or {}))

    def calls_to(self, method: str) -> list[SlackCall]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    # -- the API -------------------------------------------------------------------------------

    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, Any], dict[str, str]]:
        method = path.rsplit("/", 1)[-1]
        body = _parse_body(headers.get("content-type", ""), raw)
        with self._lock:
            self.calls.append(SlackCall(method, headers, body))
            failure = next((f for f in self._failures if f.method == method), None)
            if failure is not None:
                self._failures.remove(failure)
                return failure.status, {"ok": False, "error": failure.error}, failure.headers
            if headers.get("authorization") != f"Bearer {self.token}":
                return 200, {"ok": False, "error": "invalid_auth"}, {}
            handler = {"chat.postMessage": self._post, "chat.update": self._update,
                       "views.open": self._views_open}.get(method)
            if handler is None:
                return 200, {"ok": False, "error": "unknown_method"}, {}
            return 200, handler(body), {}

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        channel = self.channels.get(str(body.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        self._ts += 1
        ts = f"{self._ts}.000100"
        message = {"type": "message", "text": body.get("text", ""), "blocks": body.get("blocks", []), "ts": ts}
        self.messages[(channel, ts)] = message
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _update(self, body: dict[str, Any]) -> dict[str, Any]:
        key = (str(body.get("channel", "")), str(body.get("ts", "")))
        if key not in self.messages:
            return {"ok": False, "error": "message_not_found"}
        self.messages[key] = {**self.messages[key], "text": body.get("text", ""), "blocks": body.get("blocks", [])}
        return {"ok": True, "channel": key[0], "ts": key[1], "text": body.get("text", "")}

    def _views_open(self, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        return {"ok": True, "view": {"id": "V0FAKE", **(body.get("view") or {})}}


def _parse_body(content_type: str, raw: bytes) -> dict[str, Any]:
    """Slack accepts JSON bodies and form bodies (where `blocks` and `view` are JSON strings)."""
    if not raw:
        return {}
    if content_type.startswith("application/json"):
        return json.loads(raw)
    body: dict[str, Any] = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
    for key in ("blocks", "view"):
        if isinstance(body.get(key), str):
            body[key] = json.loads(body[key])
    return body

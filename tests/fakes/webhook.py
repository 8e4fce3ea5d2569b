"""A local webhook receiver that checks iterloop's signature the way a user's receiver would.

It recomputes `sha256=` HMAC-SHA256 over `<X-Iterloop-Timestamp>.<raw body>` itself (not with
iterloop's helper), records each request with the verdict, and answers with queued statuses
(200 when the queue is empty).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    raw: bytes
    signature_ok: bool

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.raw)


class WebhookReceiver:
    def __init__(self, secret: str = "") -> None:
        self.secret = secret
        self.deliveries: list[Delivery] = []
        self._answers: deque[tuple[int, dict[str, str]]] = deque()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, extra = receiver.record(self.path, headers, raw)
                body = b'{"received": true}' if status < 300 else b'{"error": "nope"}'
                self.send_response(status)
                for k, v in extra.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01},
                                        daemon=True)

    def url(self, path: str = "/hooks/iterloop") -> str:
        return f"http://127.0.0.1:{self._server.server_port}{path}"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer_next(self, status: int, headers: dict[str, str] | None = None) -> None:
        with self._lock:
            self._answers.append((status, headers or {}))

    def record(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, str]]:
        expected = "sha256=" + hmac.new(self.secret.encode(),
                                        headers.get("x-iterloop-timestamp", "").encode() + b"." + raw,
                                        hashlib.sha256).hexdigest()
        ok = bool(self.secret) and hmac.compare_digest(expected, headers.get("x-iterloop-signature", ""))
        with self._lock:
            self.deliveries.append(Delivery(path, headers, raw, ok))
            return self._answers.popleft() if self._answers else (200, {})

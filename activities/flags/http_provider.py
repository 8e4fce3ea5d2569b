"""What the REST providers (GrowthBook, Unleash) share: one httpx client, and HTTP failures turned
into `FlagError`s (through `activities.http_errors.FLAG_FAILURES`) with the server's own
explanation and `Retry-After` delay."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from activities.errors import FlagConfigError, FlagProviderUnavailableError
from activities.flags.base import FlagProvider
from activities.http_errors import FLAG_FAILURES


class HttpFlagProvider(FlagProvider):
    """A provider behind a REST API. Subclasses call `_setup_client` from ``__init__`` and
    `_call` for every request."""

    #: Added to auth failures: which variable holds the credential and what it needs.
    auth_hint: ClassVar[str] = ""

    client: httpx.AsyncClient

    def _setup_client(self, base_url: str, headers: Mapping[str, str], timeout_seconds: float) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise FlagConfigError(f"{self.name}: the API URL must start with http:// or https://, got {base_url!r}")
        self.client = self.open_http(base_url.rstrip("/"), timeout_seconds=timeout_seconds,
                                     headers={"Accept": "application/json", **headers})

    async def _call(self, method: str, path: str, *, body: Any = None, params: Mapping[str, Any] | None = None) -> Any:
        """Send one request; its JSON body (None when empty), or the matching `FlagError`."""
        try:
            response = await self.client.request(method, path, json=body, params=params)
        except httpx.TimeoutException as e:
            raise FlagProviderUnavailableError(f"{self.name} timed out on {method} {path} ({type(e).__name__})",
                                               details={"provider": self.name}) from None
        except httpx.TransportError as e:
            raise FlagProviderUnavailableError(f"{self.name} cannot be reached at {self.client.base_url}: {e}",
                                               details={"provider": self.name}) from None
        if response.status_code >= 400:
            raise FLAG_FAILURES.service_error(self.name, response.status_code,
                                              f"{method} {path}: {_error_text(response)}",
                                              retry_after=_retry_after(response), hint=self.auth_hint)
        if not response.content.strip():
            return None
        try:
            return response.json()
        except ValueError:
            raise FlagProviderUnavailableError(
                f"{self.name} answered {method} {path} with HTTP {response.status_code} and a body that is "
                f"not JSON: {response.text[:200]!r}", details={"provider": self.name}) from None


def _retry_after(response: httpx.Response) -> str | None:
    # Retry-After is the standard; some APIs (GrowthBook's rate limiter) send only the draft
    # RateLimit-Reset header, in seconds until the window resets.
    return response.headers.get("Retry-After") or response.headers.get("RateLimit-Reset")


def _error_text(response: httpx.Response) -> str:
    """The server's explanation: `message` (GrowthBook, Unleash), `details[].message` (Unleash
    validation errors) or `error`, else the raw body."""
    try:
        body = response.json()
    except ValueError:
        return response.text
    if isinstance(body, dict):
        parts = [str(body["message"])] if body.get("message") else []
        for d in body.get("details") or []:
            if isinstance(d, dict) and d.get("message") and d["message"] not in parts:
                parts.append(str(d["message"]))
        if not parts and body.get("error"):
            err = body["error"]
            parts.append(str(err.get("message") or err) if isinstance(err, dict) else str(err))
        if parts:
            return "; ".join(parts)
    return json.dumps(body)[:500]

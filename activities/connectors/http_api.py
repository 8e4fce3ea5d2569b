"""Reading a JSON API over HTTP, for the connectors that speak one (Mixpanel, Amplitude).

Transport failures and error answers become connector errors through the one status mapping
(`activities.http_errors.CONNECTOR_FAILURES`): timeouts and unreachable hosts are
`ConnectorUnavailableError` (retried), 401/403 `ConnectorAuthError` with the connector's hint,
429 `RateLimitedError` after the server's `Retry-After`, and a body that is not JSON counts as an
outage (a proxy's error page, a truncated answer).
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from activities.errors import ConnectorUnavailableError
from activities.http_errors import CONNECTOR_FAILURES


async def get_json(client: httpx.AsyncClient, path: str, params: Any, *, source: str, auth_hint: str) -> Any:
    """GET ``path`` and return its JSON body, mapping transport and HTTP failures to `ConnectorError`s."""
    try:
        response = await client.get(path, params=params)
    except httpx.TimeoutException as e:
        raise ConnectorUnavailableError(f"{source} timed out ({type(e).__name__})",
                                        details={"source": source}) from None
    except httpx.TransportError as e:
        raise ConnectorUnavailableError(f"{source} cannot be reached at {client.base_url}: {e}",
                                        details={"source": source}) from None
    if response.status_code >= 400:
        raise CONNECTOR_FAILURES.service_error(source, response.status_code, _error_text(response),
                                               retry_after=response.headers.get("Retry-After"), hint=auth_hint)
    try:
        return response.json()
    except ValueError:
        raise ConnectorUnavailableError(
            f"{source} answered HTTP {response.status_code} with a body that is not JSON: "
            f"{response.text[:200]!r}", details={"source": source}) from None


def _error_text(response: httpx.Response) -> str:
    """The server's explanation: `error.message` or `error` (Google-style and Mixpanel bodies),
    else the body itself."""
    try:
        body = response.json()
    except ValueError:
        return response.text
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            return str(err.get("message") or err)
        if err:
            return str(err)
    return json.dumps(body)[:500]

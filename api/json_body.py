"""Request bodies read by the shared, bounded JSON loader (`workflows.contract.json_values`).

FastAPI reads a JSON body with Python's `json`, which accepts `NaN` and `Infinity` (they become
`null` once a run's state is serialised) and overflows its recursion on a deeply nested body. The
REST routes use `BoundedJsonRoute`, whose requests parse their body with `load_json` instead: a
body with either problem is a 400 that says what is wrong, before any route sees it. The body's
size is already bounded by `api.body_limit` (ITERLOOP_API_MAX_BODY_BYTES).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from api.errors import ApiError
from workflows.contract.json_values import JsonValueError, load_json


class BoundedJsonRequest(Request):
    """A request whose `json()` is `load_json` (an `ApiError` 400 for a body iterloop refuses)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = load_json(body, what="the request body", max_bytes=max(len(body), 1),
                                       fix="send a JSON object without NaN or Infinity, nested at most a few levels")
            except JsonValueError as exc:
                # FastAPI wraps it in a 400 HTTPException; api.errors answers with this error's message.
                raise ApiError(str(exc), code="invalid_json") from None
        return self._json


class BoundedJsonRoute(APIRoute):
    """A route whose handler sees a `BoundedJsonRequest`."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def bounded(request: Request) -> Response:
            return await handler(BoundedJsonRequest(request.scope, request.receive))

        return bounded

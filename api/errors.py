"""Every error the API returns is `{"error": {"code": ..., "message": ..., "details": ...}}`.

Route code raises `ApiError`s (or lets the runtime's `CommandError`s through); the handlers
installed by `install_error_handlers` turn them, FastAPI's validation errors and Starlette's
HTTP errors into that shape with the right status.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from runtime.command_errors import (
    AnswerRejected,
    CommandError,
    ControlRejected,
    GateOpeningClosed,
    InvalidFilter,
    InvalidScript,
    NodeNotParked,
    NoRewindPoint,
    NothingToRetry,
    RunAlreadyExists,
    RunEnded,
    RunNotFound,
    TemporalUnavailable,
    UsageError,
)

log = logging.getLogger("iterloop.api")


class ApiError(Exception):
    """An error to send to the client as JSON with ``status`` and a stable ``code``."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: Any = None, code: str | None = None,
                 status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    status, code = 409, "conflict"


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"


class Unprocessable(ApiError):
    status, code = 422, "invalid_request"


class Unavailable(ApiError):
    status, code = 503, "temporal_unavailable"


#: How the runtime's errors read over HTTP: most specific class first.
_COMMAND_ERRORS: tuple[tuple[type[CommandError], int, str], ...] = (
    (RunNotFound, 404, "run_not_found"),
    (TemporalUnavailable, 503, "temporal_unavailable"),
    (RunAlreadyExists, 409, "run_exists"),
    (GateOpeningClosed, 409, "gate_opening_closed"),
    (AnswerRejected, 422, "answer_rejected"),
    (ControlRejected, 422, "control_rejected"),
    (RunEnded, 409, "run_ended"),
    (NothingToRetry, 409, "nothing_to_retry"),
    (NodeNotParked, 409, "node_not_parked"),
    (InvalidScript, 422, "invalid_script"),
    (NoRewindPoint, 422, "no_rewind_point"),
    (InvalidFilter, 400, "invalid_filter"),
    (UsageError, 422, "invalid_request"),
    (CommandError, 409, "conflict"),
)


def api_error_from_command(exc: CommandError) -> ApiError:
    for cls, status, code in _COMMAND_ERRORS:
        if isinstance(exc, cls):
            return ApiError(str(exc), status=status, code=code)
    raise AssertionError("CommandError is in the table")  # pragma: no cover


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error}


def error_response(exc: ApiError) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="iterloop"'} if exc.status == 401 else None
    return JSONResponse(error_body(exc.code, exc.message, exc.details), status_code=exc.status, headers=headers)


_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 413: "payload_too_large",
               415: "unsupported_media_type", 422: "invalid_request", 429: "too_many_requests",
               503: "temporal_unavailable"}


#: Renders an error as a page for a browser (the dashboard); None lets the JSON body through.
HtmlErrorRenderer = Callable[[Request, "ApiError"], Response | None]


def install_error_handlers(app: FastAPI, html: HtmlErrorRenderer | None = None) -> None:
    """JSON errors everywhere; ``html`` renders the dashboard's errors as pages instead."""

    def respond(request: Request, exc: ApiError) -> Response:
        if html is not None:
            page = html(request, exc)
            if page is not None:
                return page
        return error_response(exc)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return respond(request, exc)

    @app.exception_handler(CommandError)
    async def _command_error(request: Request, exc: CommandError) -> Response:
        return respond(request, api_error_from_command(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [{"location": ".".join(str(p) for p in err.get("loc", ())), "message": err.get("msg", "")}
                    for err in exc.errors()]
        message = "; ".join(f"{p['location']}: {p['message']}" for p in problems) or "invalid request"
        return error_response(Unprocessable(message, details=problems))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if isinstance(exc.__cause__, ApiError):  # FastAPI wraps errors raised while it reads the body (413)
            return respond(request, exc.__cause__)
        code = _HTTP_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path}; see /openapi.json"
        if html is not None:
            page = html(request, ApiError(message, status=exc.status_code, code=code))
            if page is not None:
                return page
        return JSONResponse(error_body(code, message), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body("internal_error", f"unexpected error: {type(exc).__name__}"), status_code=500)

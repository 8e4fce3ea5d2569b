"""The HTTP application: the REST API, the dashboard and Slack interactivity.

`create_app(settings)` builds it; `serve(settings)` runs it with uvicorn (`iterloop api`).

    /api/...        REST API (api.rest; api.rest_schedules), bearer tokens      /openapi.json  its schema
    /, /runs/...    dashboard (api.dashboard), session cookie    /static/...  its CSS and JS
    /slack/...      Slack interactivity (api.slack), Slack request signatures

Two guards against other web pages driving the API through a browser: a POST (or PUT, PATCH,
DELETE) under `/api/` must say it is JSON (`JsonRequestsOnly`), which an HTML form or a plain
cross-site `fetch` cannot without the CORS permission the API never grants; and without
authentication (`--no-auth`, loopback only) the `Host` header must name this machine, so a
DNS-rebinding page cannot reach the API under its own name (`TrustedHostMiddleware`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.background import BackgroundWork
from api.body_limit import BodySizeLimit
from api.errors import error_body, install_error_handlers
from api.settings import ApiSettings
from runtime.run_service import RunService

log = logging.getLogger("iterloop.api")

#: Pages load only this server's own CSS and scripts (nothing from a CDN), and no one may frame them.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")

#: The names a request to an API without authentication may reach it by (plus its --host).
LOCAL_HOST_NAMES = ("localhost", "127.0.0.1", "[::1]")


def create_app(settings: ApiSettings) -> FastAPI:
    from api import dashboard, rest, rest_control, rest_schedules, slack

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await app.state.background.drain()  # Slack answers acknowledged but not yet sent

    app = FastAPI(
        title="iterloop",
        summary="Start, watch and answer durable .iter workflow runs on Temporal.",
        version=_package_version(),
        docs_url=None,  # Swagger UI and ReDoc load scripts from a CDN; the schema is at /openapi.json
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.api_settings = settings
    app.state.runs = RunService(settings.runtime)  # no dev server, no background workers: what it is given
    app.state.background = BackgroundWork()
    install_error_handlers(app, html=dashboard.render_error_page)
    app.include_router(rest.router)
    app.include_router(rest_schedules.router)
    app.include_router(rest_control.router)
    from api import rest_console  # the run console's graph, node visits and rendered Markdown

    app.include_router(rest_console.router)
    app.include_router(slack.router)
    app.include_router(dashboard.router)
    app.mount("/static", StaticFiles(directory=dashboard.STATIC_DIR), name="static")
    app.add_middleware(SecurityHeaders)
    app.add_middleware(JsonRequestsOnly)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if settings.auth_disabled:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_local_hosts(settings.host),
                           www_redirect=False)
    return app


def allowed_local_hosts(host: str) -> list[str]:
    """What the `Host` header may say when there is no authentication: this machine's names."""
    configured = host.strip().lower()
    if ":" in configured and not configured.startswith("["):
        configured = f"[{configured}]"  # an IPv6 address, as a Host header writes it
    return sorted({*LOCAL_HOST_NAMES, configured})


class JsonRequestsOnly:
    """Refuse a POST, PUT, PATCH or DELETE under `/api/` that is not JSON (415 `json_required`).

    Such a request must send `Content-Type: application/json` (an empty body is fine) or an
    `X-Requested-With` header. Browsers send neither from a form, nor from another site's script
    without a CORS preflight, which this API never answers: so another page cannot cancel, retry
    or answer anything through a visitor's browser, with or without authentication.
    """

    METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope.get("method") not in self.METHODS
                or not str(scope.get("path", "")).startswith("/api/") or _says_json(scope)):
            await self.app(scope, receive, send)
            return
        body = json.dumps(error_body("json_required", (
            f"{scope.get('method')} {scope.get('path')} takes JSON: send 'Content-Type: application/json' "
            "(with an empty body if there is nothing to say), or an 'X-Requested-With' header"))).encode()
        await send({"type": "http.response.start", "status": 415,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def _says_json(scope: Scope) -> bool:
    headers = dict(scope.get("headers") or [])
    if b"x-requested-with" in headers:
        return True
    media_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
    return media_type == b"application/json" or (media_type.startswith(b"application/")
                                                 and media_type.endswith(b"+json"))


class SecurityHeaders:
    """Headers every response carries: no sniffing, no framing, and a strict CSP for pages."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                names = {k.lower() for k, _ in headers}
                extra = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin"),
                         (b"x-frame-options", b"DENY"),
                         (b"content-security-policy", CONTENT_SECURITY_POLICY.encode())]
                headers += [(k, v) for k, v in extra if k not in names]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("iterloop")
    except PackageNotFoundError:
        return "0+unknown"


def serve(settings: ApiSettings) -> None:
    """Run the app with uvicorn until interrupted (`iterloop api`)."""
    import uvicorn

    settings.check()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info",
                proxy_headers=True, server_header=False)

"""The HTTP application: the REST API, the dashboard and (when present) Slack interactivity.

`create_app(settings)` builds it; `serve(settings)` runs it with uvicorn (`iterloop api`).

    /api/...        REST API (api.rest), bearer tokens      /openapi.json  its schema
    /, /runs/...    dashboard (api.dashboard), session cookie    /static/...  its CSS and JS
    /slack/...      Slack interactivity (api.slack), Slack request signatures
"""

from __future__ import annotations

import importlib.util
import logging

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.body_limit import BodySizeLimit
from api.deps import TemporalConnection
from api.errors import install_error_handlers
from api.settings import ApiSettings

log = logging.getLogger("iterloop.api")

#: Pages load only this server's own CSS and scripts (nothing from a CDN), and no one may frame them.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


def create_app(settings: ApiSettings) -> FastAPI:
    from api import dashboard, rest

    app = FastAPI(
        title="iterloop",
        summary="Start, watch and answer durable .iter workflow runs on Temporal.",
        version=_package_version(),
        docs_url=None,  # Swagger UI and ReDoc load scripts from a CDN; the schema is at /openapi.json
        redoc_url=None,
    )
    app.state.api_settings = settings
    app.state.temporal = TemporalConnection(settings.runtime)
    install_error_handlers(app, html=dashboard.render_error_page)
    app.include_router(rest.router)
    _include_slack(app)
    app.include_router(dashboard.router)
    app.mount("/static", StaticFiles(directory=dashboard.STATIC_DIR), name="static")
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    return app


def _include_slack(app: FastAPI) -> None:
    """Slack interactivity lives in `api/slack.py` when it exists (its own router and tests)."""
    if importlib.util.find_spec("api.slack") is None:
        return
    from api import slack

    router = getattr(slack, "router", None)
    if router is not None:
        app.include_router(router)


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

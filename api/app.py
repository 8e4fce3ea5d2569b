"""The HTTP application: the REST API, the dashboard and (when present) Slack interactivity.

`create_app(settings)` builds it; `serve(settings)` runs it with uvicorn (`iterloop api`).
"""

from __future__ import annotations

import importlib.util
import logging

from fastapi import FastAPI

from api.deps import TemporalConnection
from api.errors import install_error_handlers
from api.settings import ApiSettings

log = logging.getLogger("iterloop.api")


def create_app(settings: ApiSettings) -> FastAPI:
    app = FastAPI(
        title="iterloop",
        summary="Start, watch and answer durable .iter workflow runs on Temporal.",
        version=_package_version(),
        docs_url=None,  # Swagger UI and ReDoc load scripts from a CDN; the schema is at /openapi.json
        redoc_url=None,
    )
    app.state.api_settings = settings
    app.state.temporal = TemporalConnection(settings.runtime)
    install_error_handlers(app)
    _include_slack(app)
    return app


def _include_slack(app: FastAPI) -> None:
    """Slack interactivity lives in `api/slack.py` when it exists (its own router and tests)."""
    if importlib.util.find_spec("api.slack") is None:
        return
    from api import slack

    router = getattr(slack, "router", None)
    if router is not None:
        app.include_router(router)


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("iterloop")
    except PackageNotFoundError:
        return "0+unknown"

"""FastAPI dependencies shared by the API's routers (REST, dashboard, Slack).

    from fastapi import Depends
    from api.deps import api_settings, run_service

    @router.post("/slack/interactions")
    async def interactions(settings: ApiSettings = Depends(api_settings),
                           runs: RunService = Depends(run_service)) -> ...

The app holds one `RunService` (runtime/run_service.py, the same service `iterloop` commands
use): it connects to Temporal on first use with the shared data converter, so the API starts
even while Temporal is down and recovers when it is up; an unreachable server is a 503 with the
reason. The API's service never starts a dev server or a background worker (`manage_local` off).
"""

from __future__ import annotations

from fastapi import Request

from api.settings import ApiSettings
from runtime.run_service import RunService


def api_settings(request: Request) -> ApiSettings:
    """The settings the app was created with."""
    settings: ApiSettings = request.app.state.api_settings
    return settings


def run_service(request: Request) -> RunService:
    """The app's run service (its Temporal client is connected on first use)."""
    service: RunService = request.app.state.runs
    return service

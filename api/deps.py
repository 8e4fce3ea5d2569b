"""FastAPI dependencies shared by the API's routers (REST, dashboard, Slack).

    from fastapi import Depends
    from api.deps import api_settings, temporal_client

    @router.post("/slack/interactions")
    async def interactions(settings: ApiSettings = Depends(api_settings),
                           client: Client = Depends(temporal_client)) -> ...

The app holds one Temporal client, connected on first use with the shared data converter
(`runtime.connect`), so the API starts even while Temporal is down and recovers when it is up;
an unreachable server is a 503 with the reason.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import Request

from api.settings import ApiSettings
from runtime.settings import Settings

if TYPE_CHECKING:
    from temporalio.client import Client


@dataclass
class TemporalConnection:
    """The app's Temporal client, connected lazily (once; concurrent first requests share it)."""

    configured: Settings
    settings: Settings | None = None  # the settings actually used (the local dev server's address resolved)
    client: Client | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def get(self) -> Client:
        if self.client is not None:
            return self.client
        async with self._lock:
            if self.client is None:
                from runtime.server_address import settings_for_existing_runs
                from runtime.temporal_runs import connect_or_fail

                settings = await asyncio.to_thread(settings_for_existing_runs, self.configured)
                self.client = await connect_or_fail(settings)  # TemporalUnavailable → 503
                self.settings = settings
        return self.client

    def effective_settings(self) -> Settings:
        return self.settings or self.configured


def api_settings(request: Request) -> ApiSettings:
    """The settings the app was created with."""
    settings: ApiSettings = request.app.state.api_settings
    return settings


def temporal_connection(request: Request) -> TemporalConnection:
    connection: TemporalConnection = request.app.state.temporal
    return connection


async def temporal_client(request: Request) -> Client:
    """The app's Temporal client (connected on first use); 503 when Temporal cannot be reached."""
    return await temporal_connection(request).get()

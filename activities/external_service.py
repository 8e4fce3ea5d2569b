"""What analytics connectors and flag providers share: settings from the workflow, credentials
from the worker.

Both are built inside an activity from a name and a settings mapping that come from the workflow
(the `.iter` file or the run's config), so the settings are in history and must hold no secret:
credentials, and optionally the service's address, are read from the worker's environment through
the ``env`` mapping the service is given (default ``os.environ``; tests pass their own).

`ExternalService` validates the settings against the subclass's pydantic ``Settings`` (unknown
keys are refused, listing the accepted ones, with the family's configuration error), reads
environment variables (`env_value`, `service_url`), opens the one `httpx.AsyncClient` an HTTP
service needs (`open_http`) and closes it when the service is used as an async context manager.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar, Self

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from activities.errors import ActivityError, BadRequestError


class ServiceSettings(BaseModel):
    """A service's settings. Unknown keys are refused: a misspelt setting would otherwise be
    ignored and the service would quietly use its default."""

    model_config = ConfigDict(extra="forbid")


class ExternalService:
    """A configured outside service. Subclasses set ``name`` and a nested ``Settings`` model;
    each family (connectors, flag providers) sets how it is called in messages, which error a
    bad configuration is, and the details key naming the service."""

    name: ClassVar[str] = "service"
    #: How the family is called in messages: "connector", "flag provider".
    service_kind: ClassVar[str] = "service"
    #: The family's error for invalid settings (always a non-retryable BadRequest).
    config_error: ClassVar[type[ActivityError]] = BadRequestError
    #: The key naming the service in that error's details.
    detail_key: ClassVar[str] = "service"

    class Settings(ServiceSettings):
        pass

    settings: Any
    _http: httpx.AsyncClient | None = None

    def __init__(self, settings: Mapping[str, Any] | None = None, *, env: Mapping[str, str] | None = None) -> None:
        self.env: Mapping[str, str] = os.environ if env is None else env
        try:
            self.settings = self.Settings.model_validate(dict(settings or {}))
        except ValidationError as e:
            problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
                                 for err in e.errors())
            raise self.config_error(
                f"{self.name} {self.service_kind} settings are invalid: {problems}. "
                f"Accepted settings: {', '.join(sorted(self.Settings.model_fields)) or 'none'}",
                details={self.detail_key: self.name}) from None

    def env_value(self, *names: str) -> str:
        """The first non-empty environment variable among ``names`` ("" when none is set)."""
        for n in names:
            if self.env.get(n):
                return self.env[n]
        return ""

    def service_url(self, setting: str | None, variable: str, default: str = "") -> str:
        """The service's address: the ``setting`` when given, else the environment ``variable``,
        else ``default``; without a trailing slash ("" when none is known)."""
        return (setting or self.env_value(variable) or default).rstrip("/")

    def open_http(self, base_url: str, *, timeout_seconds: float, headers: Mapping[str, str] | None = None,
                  auth: tuple[str, str] | None = None) -> httpx.AsyncClient:
        """The service's HTTP client (one per service object, closed by `aclose`)."""
        self._http = httpx.AsyncClient(base_url=base_url, auth=auth, timeout=timeout_seconds,
                                       headers=dict(headers or {}))
        return self._http

    async def aclose(self) -> None:
        """Release connections. Safe to call twice."""
        client, self._http = self._http, None
        if client is not None:
            await client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

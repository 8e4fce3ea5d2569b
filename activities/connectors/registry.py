"""Which connector serves a name, built from the workflow's settings inside an activity.

    connector = connector_from_config("mixpanel", {"funnels": {"checkout": {"funnel_id": 7509}}})
    async with connector:
        data = await connector.funnel("checkout", start, end, {"platform": "ios"})

Settings arrive from the workflow (the `.iter` file or the run's YAML config) and are therefore in
history: they must not hold secrets. `${ENV}` references in string settings are expanded here, on
the worker (`url: "postgresql://bi:${WAREHOUSE_PASSWORD}@db/analytics"`), and each connector reads
its credentials from the worker's environment itself. Only the braced form is expanded: a bare
`$name` is common in analytics (`$exposure`, `$experiment_started`) and in SQL, and stays as is.

Connector modules are imported on first use, so a worker that only uses the mock never imports
the Google client.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Mapping
from typing import Any

from activities.connectors.base import BaseConnector
from activities.errors import ConnectorConfigError

#: name → "module:Class" (imported on first use) or the class itself (see `register_connector`).
CONNECTORS: dict[str, str | type[BaseConnector]] = {
    "mock": "activities.connectors.mock:MockConnector",
    "ga4": "activities.connectors.ga4:GA4Connector",
    "mixpanel": "activities.connectors.mixpanel:MixpanelConnector",
    "amplitude": "activities.connectors.amplitude:AmplitudeConnector",
    "warehouse": "activities.connectors.warehouse:WarehouseConnector",
}


def connector_names() -> list[str]:
    return sorted(CONNECTORS)


def register_connector(name: str, connector: type[BaseConnector] | str) -> None:
    """Serve ``name`` with ``connector``: a `BaseConnector` subclass, or "module:Class" to import
    on first use. Call it where the worker starts (or in the module that defines the class)."""
    key = name.strip().lower()
    current = CONNECTORS.get(key)
    if current is not None and _target(current) != _target(connector):
        raise ConnectorConfigError(f"connector name '{key}' is already taken by {_target(current)}")
    CONNECTORS[key] = connector


def connector_class(name: str) -> type[BaseConnector]:
    target = CONNECTORS.get(name.strip().lower())
    if target is None:
        raise ConnectorConfigError(f"unknown connector '{name}'; available: {', '.join(connector_names())}",
                                   details={"connector": name, "known": connector_names()})
    if not isinstance(target, str):
        return target
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def _target(connector: type[BaseConnector] | str) -> str:
    return connector if isinstance(connector, str) else f"{connector.__module__}:{connector.__qualname__}"


def connector_from_config(name: str, settings: Mapping[str, Any] | None = None, *,
                          env: Mapping[str, str] | None = None) -> BaseConnector:
    """Build connector ``name`` from ``settings``, expanding `${ENV}` in them against ``env``
    (default: the worker's environment). Raises `ConnectorConfigError` / `ConnectorAuthError`
    (non-retryable) when the name, the settings or the credentials are wrong."""
    cls = connector_class(name)
    return cls(expand_settings(dict(settings or {}), env), env=env)


_BRACED = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_settings(value: Any, env: Mapping[str, str] | None = None, *, where: str = "settings") -> Any:
    """``value`` with every `${VAR}` expanded from ``env`` (default: ``os.environ``), at any depth.

    A variable that is not set is an error naming it: an empty password or URL fails later and
    far less clearly.
    """
    env = os.environ if env is None else env
    if isinstance(value, str):
        def lookup(m: re.Match[str]) -> str:
            if m.group(1) not in env:
                raise ConnectorConfigError(f"connector setting '{where}' refers to ${{{m.group(1)}}}, which is "
                                           "not set in the worker's environment")
            return env[m.group(1)]
        return _BRACED.sub(lookup, value)
    if isinstance(value, Mapping):
        return {k: expand_settings(v, env, where=f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [expand_settings(v, env, where=where) for v in value]
    return value

"""Which flag provider a configuration names: `flag_provider_from_config("growthbook", {...})`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from activities.errors import FlagConfigError
from activities.flags.base import FlagProvider
from activities.flags.growthbook import GrowthBookFlagProvider
from activities.flags.local import LocalFlagProvider
from activities.flags.unleash import UnleashFlagProvider

DEFAULT_PROVIDER = LocalFlagProvider.name

_PROVIDERS: dict[str, type[FlagProvider]] = {
    p.name: p for p in (LocalFlagProvider, GrowthBookFlagProvider, UnleashFlagProvider)
}


def flag_provider_names() -> list[str]:
    return sorted(_PROVIDERS)


def flag_provider_from_config(name: str, settings: Mapping[str, Any] | None = None, *,
                              env: Mapping[str, str] | None = None) -> FlagProvider:
    """The provider called ``name`` ("" = the local file store) with its ``settings``; credentials
    come from ``env`` (default: the worker's environment). Unknown names and bad settings raise a
    non-retryable `FlagConfigError` that lists what is accepted."""
    key = (name or DEFAULT_PROVIDER).strip().lower()
    provider = _PROVIDERS.get(key)
    if provider is None:
        raise FlagConfigError(f"unknown flag provider '{name}'; available: {', '.join(flag_provider_names())}",
                              details={"provider": name})
    return provider(settings, env=env)

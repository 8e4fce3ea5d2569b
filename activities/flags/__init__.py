"""Feature-flag providers: one interface (`base.FlagProvider`) over a local JSON file store (the
default), GrowthBook and Unleash; `registry.flag_provider_from_config` builds one by name."""

from activities.flags.base import (
    Flag,
    FlagAuthError,
    FlagConfigError,
    FlagConflictError,
    FlagError,
    FlagNotFoundError,
    FlagProvider,
    FlagProviderUnavailableError,
    FlagRateLimitedError,
    FlagRequestError,
    FlagSpec,
    FlagVariant,
)
from activities.flags.registry import flag_provider_from_config, flag_provider_names

__all__ = [
    "Flag",
    "FlagAuthError",
    "FlagConfigError",
    "FlagConflictError",
    "FlagError",
    "FlagNotFoundError",
    "FlagProvider",
    "FlagProviderUnavailableError",
    "FlagRateLimitedError",
    "FlagRequestError",
    "FlagSpec",
    "FlagVariant",
    "flag_provider_from_config",
    "flag_provider_names",
]

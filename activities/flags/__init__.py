"""Feature-flag providers: one interface (`base.FlagProvider`) over a local JSON file store (the
default), GrowthBook and Unleash; `registry.flag_provider_from_config` builds one by name.

`models` holds what a flag is (`FlagSpec`, `Flag`) and the rules every provider applies; their
failures are the `FlagError` branch of `activities.errors`, re-exported here.
"""

from activities.errors import (
    FlagAuthError,
    FlagConfigError,
    FlagConflictError,
    FlagError,
    FlagNotFoundError,
    FlagProviderUnavailableError,
    FlagRateLimitedError,
    FlagRequestError,
)
from activities.flags.base import FlagProvider
from activities.flags.models import Flag, FlagSpec, FlagVariant
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

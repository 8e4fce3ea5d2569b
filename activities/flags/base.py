"""The flag provider interface: what the growth loop's Executor asks of a feature-flag service.

An approved experiment becomes one flag, described by a `FlagSpec` (variants and their traffic
weights in percent, targeting as `{attribute: [allowed values]}`, the experiment's tracking key).
Every provider answers with the same `Flag` model and keeps the same promises:

- **Created disabled.** `create_flag` never turns a flag on; launching is a separate, explicit
  `set_enabled(key, True)`, so nothing reaches users before the loop decides it should.
- **Idempotent.** Activities are retried, so `create_flag` may run twice for one decision.
  Creating a key that already exists with the same definition returns the existing flag with
  ``created=False``; a *different* definition for an existing key is a non-retryable
  `FlagConflictError` that says what differs (the description is not compared: it is prose).
- **Rollback is one call.** `rollback(key)` disables the flag and sends 100 % of traffic to the
  control variant (the variant named ``control``, else the first one).

Failures are `FlagError`s, which *are* Temporal `ApplicationError`s, so activities can let them
propagate: bad credentials, conflicts and bad requests are non-retryable (the message says what to
fix); rate limits are retried after the server's own delay (``next_retry_delay``); outages are
retried with the activity's backoff.

Providers read credentials from the worker's environment (never from settings, which travel
through workflow history), through the ``env`` mapping they are given.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from temporalio.exceptions import ApplicationError

from activities.http_retry import retry_after_delay
from workflows.contract.vocabulary import (  # noqa: F401  (the flag providers import them from here)
    ERR_BAD_REQUEST,
    ERR_FLAG_AUTH,
    ERR_FLAG_CONFLICT,
    ERR_FLAG_NOT_FOUND,
    ERR_FLAG_PROVIDER_UNAVAILABLE,
    ERR_RATE_LIMITED,
)

# The common denominator of the providers' key rules (GrowthBook: letters, digits, `-` and `_`).
KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"
CONTROL = "control"

# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FlagVariant(_Model):
    key: str = Field(pattern=KEY_PATTERN, max_length=100)
    weight: int = Field(ge=0, le=100, description="percent of the targeted traffic")


class FlagSpec(_Model):
    """What to create. Weights are percents summing to 100; an empty ``targeting`` means everyone;
    an empty ``experiment_key`` means the flag key (the key analytics events are tracked under)."""

    key: str = Field(pattern=KEY_PATTERN, max_length=100)
    description: str = ""
    variants: list[FlagVariant] = Field(min_length=2)
    targeting: dict[str, list[str]] = Field(default_factory=dict)
    experiment_key: str = ""

    @field_validator("targeting", mode="before")
    @classmethod
    def _targeting_lists(cls, value: Any) -> Any:
        """Accept ``{"platform": "ios"}`` as shorthand for ``{"platform": ["ios"]}``."""
        if isinstance(value, Mapping):
            return {k: [v] if isinstance(v, str) else v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _check(self) -> FlagSpec:
        keys = [v.key for v in self.variants]
        if len(set(keys)) != len(keys):
            raise ValueError(f"variant keys must be unique, got {keys}")
        total = sum(v.weight for v in self.variants)
        if total != 100:
            raise ValueError(f"variant weights must sum to 100 (percent), got {total}: "
                             + ", ".join(f"{v.key}={v.weight}" for v in self.variants))
        for attribute, values in self.targeting.items():
            if not attribute or not values:
                raise ValueError(f"targeting attribute {attribute!r} needs a name and at least one value")
        if not self.experiment_key:
            self.experiment_key = self.key
        return self

    @property
    def control_key(self) -> str:
        return control_key(self.variants)


class Flag(_Model):
    """A flag as the provider holds it now. ``created`` is False when it already existed;
    ``created_at`` is when the provider created it, as the provider recorded it (None when it
    does not say), so a repeated create reports the first creation's time."""

    key: str
    enabled: bool
    variants: list[FlagVariant]
    targeting: dict[str, list[str]] = Field(default_factory=dict)
    provider: str
    url: str | None = None
    created: bool = False
    description: str = ""
    experiment_key: str = ""
    created_at: datetime | None = None


def recorded_time(value: Any) -> datetime | None:
    """A provider's timestamp (ISO 8601, `Z` or an offset; no offset means UTC) as an aware
    datetime; None when absent or unreadable (a missing creation time is not worth a failure)."""
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, str) and value.strip():
        try:
            when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def control_key(variants: list[FlagVariant]) -> str:
    """The control arm: the variant named ``control``, else the first."""
    keys = [v.key for v in variants]
    return CONTROL if CONTROL in keys else (keys[0] if keys else CONTROL)


def rolled_back(variants: list[FlagVariant]) -> list[FlagVariant]:
    """The same variants with 100 % on control."""
    control = control_key(variants)
    return [FlagVariant(key=v.key, weight=100 if v.key == control else 0) for v in variants]


def spec_differences(spec: FlagSpec, flag: Flag) -> list[str]:
    """What an existing flag has that ``spec`` does not ask for (empty: same definition)."""
    diffs: list[str] = []
    want = [(v.key, v.weight) for v in spec.variants]
    have = [(v.key, v.weight) for v in flag.variants]
    if want != have:
        diffs.append(f"variants: existing {_variants_text(flag.variants)}, requested {_variants_text(spec.variants)}")
    if _normalised(spec.targeting) != _normalised(flag.targeting):
        diffs.append(f"targeting: existing {flag.targeting or 'everyone'}, requested {spec.targeting or 'everyone'}")
    if flag.experiment_key and flag.experiment_key != spec.experiment_key:
        diffs.append(f"experiment_key: existing {flag.experiment_key!r}, requested {spec.experiment_key!r}")
    return diffs


def existing_flag(spec: FlagSpec, flag: Flag) -> Flag:
    """``flag`` (found under ``spec.key``) as the answer to a repeated create, or a conflict."""
    diffs = spec_differences(spec, flag)
    if diffs:
        hint = ""
        if not flag.enabled and flag.variants and flag.variants == rolled_back(flag.variants):
            hint = " (the existing flag looks rolled back: disabled, 100 % on control)"
        raise FlagConflictError(
            f"{flag.provider}: flag '{spec.key}' already exists with a different definition{hint}: "
            f"{'; '.join(diffs)}. A flag key names one experiment: use a new key for a new experiment, "
            f"or delete/archive '{spec.key}' in {flag.provider} first.",
            details={"provider": flag.provider, "key": spec.key, "differences": diffs})
    return flag.model_copy(update={"created": False})


def _variants_text(variants: list[FlagVariant]) -> str:
    return ", ".join(f"{v.key}={v.weight}%" for v in variants) or "none"


def _normalised(targeting: Mapping[str, list[str]]) -> dict[str, list[str]]:
    return {k: sorted(set(v)) for k, v in targeting.items()}


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


class FlagError(ApplicationError):
    """A flag-provider failure, raised as a Temporal `ApplicationError` of type ``error_type``."""

    error_type: ClassVar[str] = ERR_BAD_REQUEST
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, details: Mapping[str, Any] | None = None,
                 next_retry_delay: timedelta | None = None) -> None:
        super().__init__(message, dict(details or {}), type=self.error_type, non_retryable=not self.retryable,
                         next_retry_delay=next_retry_delay)


class FlagConfigError(FlagError):
    """The provider's settings or environment are wrong (unknown provider, missing credential)."""


class FlagRequestError(FlagError):
    """The provider refused the request as malformed (HTTP 400/422, unknown environment…)."""


class FlagAuthError(FlagError):
    """Missing or rejected credentials, or no permission."""

    error_type = ERR_FLAG_AUTH


class FlagNotFoundError(FlagError):
    error_type = ERR_FLAG_NOT_FOUND


class FlagConflictError(FlagError):
    """The key exists with another definition (or is taken where it cannot be read)."""

    error_type = ERR_FLAG_CONFLICT


class FlagRateLimitedError(FlagError):
    """HTTP 429: retried, after the server's delay when it gave one."""

    error_type = ERR_RATE_LIMITED
    retryable = True


class FlagProviderUnavailableError(FlagError):
    """The service is down, timed out, or the local store is locked too long: retried."""

    error_type = ERR_FLAG_PROVIDER_UNAVAILABLE
    retryable = True


def error_for_status(provider: str, status: int, message: str, *, retry_after: str | None = None,
                     auth_hint: str = "") -> FlagError:
    """The `FlagError` for an HTTP error status from ``provider`` (``message`` is the server's)."""
    said = f": {message.strip()[:500]}" if message.strip() else ""
    details = {"provider": provider, "status": status}
    if status in (401, 403):
        what = "rejected the credentials" if status == 401 else "denied access"
        return FlagAuthError(f"{provider} {what} (HTTP {status}){said}. {auth_hint}".rstrip(), details=details)
    if status == 404:
        return FlagNotFoundError(f"{provider}: not found (HTTP 404){said}", details=details)
    if status == 409:
        return FlagConflictError(f"{provider}: conflict (HTTP 409){said}", details=details)
    if status == 429:
        delay = retry_after_delay(retry_after)
        when = f"; retrying in {delay.total_seconds():g} s as the server asked" if delay else ""
        return FlagRateLimitedError(
            f"{provider} rate limit exceeded (HTTP 429){said}{when}",
            details={**details, "retry_after_seconds": delay.total_seconds() if delay else None},
            next_retry_delay=delay)
    if status >= 500 or status == 408:
        return FlagProviderUnavailableError(f"{provider} is unavailable (HTTP {status}){said}", details=details,
                                            next_retry_delay=retry_after_delay(retry_after))
    return FlagRequestError(f"{provider} refused the request (HTTP {status}){said}", details=details)


# ---------------------------------------------------------------------------------------------
# The interface
# ---------------------------------------------------------------------------------------------


class FlagProvider(ABC):
    """A feature-flag service. Subclasses set ``name``, a pydantic ``Settings`` model, and
    implement the five operations.

    ``settings`` come from the workflow's configuration (no secrets: they are in history);
    ``env`` is the worker's environment (default ``os.environ``), where credentials live.
    """

    name: ClassVar[str] = "flags"

    class Settings(_Model):
        pass

    settings: Any

    def __init__(self, settings: Mapping[str, Any] | None = None, *, env: Mapping[str, str] | None = None) -> None:
        self.env: Mapping[str, str] = os.environ if env is None else env
        try:
            self.settings = self.Settings.model_validate(dict(settings or {}))
        except ValidationError as e:
            problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
                                 for err in e.errors())
            raise FlagConfigError(
                f"{self.name} flag provider settings are invalid: {problems}. "
                f"Accepted settings: {', '.join(sorted(self.Settings.model_fields)) or 'none'}",
                details={"provider": self.name}) from None

    @abstractmethod
    async def create_flag(self, spec: FlagSpec) -> Flag:
        """Create ``spec`` disabled; the existing flag (``created=False``) if it is already there."""

    @abstractmethod
    async def get_flag(self, key: str) -> Flag:
        """The flag named ``key``; `FlagNotFoundError` when there is none."""

    @abstractmethod
    async def set_enabled(self, key: str, enabled: bool) -> Flag: ...

    @abstractmethod
    async def rollback(self, key: str) -> Flag:
        """Disable the flag and put 100 % of traffic on control, in one operation."""

    @abstractmethod
    async def list_flags(self) -> list[Flag]: ...

    async def aclose(self) -> None:
        """Release connections (HTTP providers)."""

    async def __aenter__(self) -> FlagProvider:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def env_value(self, *names: str) -> str:
        """The first non-empty environment variable among ``names`` ("" when none is set)."""
        for n in names:
            if self.env.get(n):
                return self.env[n]
        return ""

"""What a flag is, whatever the provider: the spec an experiment asks for, the flag a provider
holds, and the rules every provider applies to them.

An approved experiment becomes one flag, described by a `FlagSpec` (variants and their traffic
weights in percent, targeting as `{attribute: [allowed values]}`, the experiment's tracking key).
Every provider answers with the same `Flag`. The rules here are the promises of `FlagProvider`
that do not depend on the service: which variant is control, what a rolled-back flag looks like,
and when a create that finds the key taken returns the existing flag (`existing_flag`) or is a
`FlagConflictError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from activities.errors import FlagConflictError

# The common denominator of the providers' key rules (GrowthBook: letters, digits, `-` and `_`).
KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"
CONTROL = "control"

class _Model(BaseModel):
    """Unknown fields are refused: a misspelt field in a flag request would vanish silently."""

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

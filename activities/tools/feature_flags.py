"""The launch tool: `create_feature_flag` turns an approved experiment into a flag, always
disabled (launching is a separate, deliberate step), on the run's flag provider.

Activities are retried, so creating the same flag again returns it unchanged, with the time it
was first created (the experiment's start, from which `days_running` counts).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from activities.errors import BadRequestError
from activities.flags.models import Flag, FlagSpec
from activities.flags.registry import flag_provider_from_config
from activities.tools.choices import FlagProviderChoice
from activities.tools.spec import ToolSet

TOOLS = ToolSet()


class FlagRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    flag_key: str = Field(min_length=1)
    description: str = ""
    variants: list[str] = Field(default_factory=lambda: ["control", "treatment"], min_length=2)
    traffic_split: dict[str, float] | None = Field(None, description="variant -> weight (sums to 100)")
    targeting: dict[str, Any] = Field(default_factory=dict)
    experiment_key: str | None = None
    provider: FlagProviderChoice = Field(default_factory=FlagProviderChoice)


class FlagCreated(BaseModel):
    flag_key: str
    experiment_id: str
    status: str
    enabled: bool
    created: bool
    provider: str
    flag: Flag
    created_at: datetime = Field(description="when the flag was created (UTC), as the flag provider recorded it; "
                                             "a repeated call returns the first creation's time: the experiment's "
                                             "start for days_running")


@TOOLS.tool("create_feature_flag")
async def create_feature_flag(args: FlagRequest) -> FlagCreated:
    """Create the experiment's flag, always disabled; calling it again returns the same flag."""
    split = args.traffic_split or {v: 100 / len(args.variants) for v in args.variants}
    try:
        spec = FlagSpec(key=args.flag_key, description=args.description,
                        variants=[{"key": v, "weight": split.get(v, 0)} for v in args.variants],  # type: ignore[misc]
                        targeting=args.targeting, experiment_key=args.experiment_key or args.flag_key)
    except ValidationError as exc:  # a bad key or split: retrying the same request cannot help
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'flag'}: {e['msg']}" for e in exc.errors())
        raise BadRequestError(
            f"create_feature_flag: the flag '{args.flag_key}' cannot be created: {problems}") from None
    async with flag_provider_from_config(args.provider.name, args.provider.settings) as provider:
        flag = await provider.create_flag(spec)
    return FlagCreated(flag_key=flag.key, experiment_id=spec.experiment_key or flag.key,
                       status="enabled" if flag.enabled else "created_disabled", enabled=flag.enabled,
                       created=flag.created, provider=flag.provider, flag=flag,
                       # A retry (or a second approval) finds the flag already there: its start is the
                       # first creation's, or days_running would start again from zero. Only a provider
                       # that records no time gets this call's.
                       created_at=flag.created_at or datetime.now(timezone.utc))

"""The Unleash flag provider, over the Unleash Admin API (Unleash 5.4+, for strategy variants).

Endpoints used (relative to ``UNLEASH_API_URL``, the server's root such as
``https://unleash.example.com``; a trailing ``/api`` is accepted too), all under
``/api/admin/projects/{project}``:

- ``GET  /features/{name}``: one feature, with ``environments: [{name, enabled, strategies}]``.
- ``POST /features``: create ``{name, description, type: "experiment", impressionData}``; Unleash
  creates features disabled in every environment. 409 when the name is taken.
- ``POST /features/{name}/environments/{env}/strategies``: add the experiment's strategy.
- ``PUT  /features/{name}/environments/{env}/strategies/{id}``: replace it (rollback).
- ``POST /features/{name}/environments/{env}/on`` / ``…/off``: the environment's switch.
- ``GET  /features``: the project's features (names; each is then read in full).

Auth: ``Authorization: <token>`` (no "Bearer") from ``UNLEASH_API_TOKEN``, an admin or personal
access token allowed to edit the project.

How an experiment maps onto a feature: one ``flexibleRollout`` strategy at 100 % in the configured
environment, its ``groupId`` the experiment key (the bucketing seed), the targeting as ``IN``
constraints (``{contextName: "platform", operator: "IN", values: [...]}``) and the variants as
strategy variants with weights in thousandths. Unleash requires at least one ``variable``
variant and gives it whatever the ``fix`` ones leave, so every variant is ``fix`` except the last,
which is ``variable`` and receives exactly its share.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from pydantic import Field

from activities.errors import FlagConfigError, FlagConflictError, FlagNotFoundError, FlagRequestError
from activities.flags.http_provider import HttpFlagProvider
from activities.flags.models import Flag, FlagSpec, FlagVariant, existing_flag, recorded_time, rolled_back

API_TOKEN_ENV = "UNLEASH_API_TOKEN"
API_URL_ENV = "UNLEASH_API_URL"
STRATEGY = "flexibleRollout"
TITLE_PREFIX = "iterloop experiment"


class UnleashFlagProvider(HttpFlagProvider):
    name = "unleash"
    auth_hint = (f"Set {API_TOKEN_ENV} on the worker to an Unleash admin or personal access token that may "
                 f"edit features in this project.")

    class Settings(HttpFlagProvider.Settings):
        project: str = Field("default", min_length=1, description="the Unleash project")
        environment: str = Field("production", min_length=1, description="the environment to use (enabled in the project)")
        stickiness: str = Field("default", min_length=1, description="context field variants stick to")
        api_url: str = Field("", description=f"overrides {API_URL_ENV}")
        timeout_seconds: float = Field(30.0, gt=0)

    def __init__(self, settings: Mapping[str, Any] | None = None, *, env: Mapping[str, str] | None = None) -> None:
        super().__init__(settings, env=env)
        token = self.env_value(API_TOKEN_ENV)
        base = self.service_url(self.settings.api_url, API_URL_ENV).removesuffix("/api")
        if not token or not base:
            missing = " and ".join(n for n, v in ((API_TOKEN_ENV, token), (API_URL_ENV, base)) if not v)
            raise FlagConfigError(f"unleash: {missing} not set on the worker. {self.auth_hint} "
                                  f"{API_URL_ENV} is the server's address, e.g. https://unleash.example.com.",
                                  details={"provider": self.name})
        self._setup_client(base, {"Authorization": token}, self.settings.timeout_seconds)
        self.base_url = base

    # -- the interface -------------------------------------------------------------------------

    async def create_flag(self, spec: FlagSpec) -> Flag:
        # GET first: a retried activity finds its own flag instead of tripping over the 409.
        try:
            return await self._existing(spec, await self._get_feature(spec.key))
        except FlagNotFoundError:
            pass
        try:
            made = await self._call("POST", self._features(), body={
                "name": spec.key, "description": spec.description, "type": "experiment", "impressionData": False})
        except FlagConflictError:
            # Taken: by a concurrent attempt (then it is readable now), or archived / in another
            # project (then it is not, and the name cannot be used).
            try:
                feature = await self._get_feature(spec.key)
            except FlagNotFoundError:
                raise FlagConflictError(
                    f"unleash: the name '{spec.key}' is taken but not readable in project "
                    f"'{self.settings.project}': it is archived or belongs to another project. Use another "
                    f"flag key, or revive/delete the archived feature.",
                    details={"provider": self.name, "key": spec.key}) from None
            return await self._existing(spec, feature)
        # Not enabled here: the environment stays off until set_enabled(key, True).
        strategy = await self._call("POST", self._strategies(spec.key), body=self._strategy(spec))
        return self._flag(spec.key, spec.description, enabled=False, strategy=strategy, created=True,
                          created_at=made.get("createdAt") if isinstance(made, dict) else None)

    async def get_flag(self, key: str) -> Flag:
        feature = await self._get_feature(key)
        return self._flag_from_feature(feature)

    async def set_enabled(self, key: str, enabled: bool) -> Flag:
        await self._call("POST", f"{self._environment_path(key)}/{'on' if enabled else 'off'}")
        return await self.get_flag(key)

    async def rollback(self, key: str) -> Flag:
        # Unleash has no single request that both switches an environment off and edits a
        # strategy, so the kill switch goes first: once it is off, nobody is exposed, and a
        # failure before the strategy edit is finished by the retry (both steps are idempotent).
        feature = await self._get_feature(key)
        strategy = _experiment_strategy(_environment(feature, self.settings.environment, required=True))
        if strategy is None or not strategy.get("id"):
            raise FlagRequestError(f"unleash: feature '{key}' has no strategy with variants in environment "
                                   f"'{self.settings.environment}' to roll back",
                                   details={"provider": self.name, "key": key})
        await self._call("POST", f"{self._environment_path(key)}/off")
        variants = rolled_back(_variants(strategy))
        body = {k: strategy[k] for k in ("name", "title", "disabled", "constraints", "parameters", "segments",
                                         "sortOrder") if k in strategy}
        body["variants"] = self._strategy_variants(variants)
        updated = await self._call("PUT", f"{self._strategies(key)}/{quote(str(strategy['id']), safe='')}", body=body)
        return self._flag(key, str(feature.get("description") or ""), enabled=False,
                          strategy=updated if isinstance(updated, dict) else {**strategy, **body},
                          created_at=feature.get("createdAt"))

    async def list_flags(self) -> list[Flag]:
        listing = await self._call("GET", self._features()) or {}
        flags = []
        for item in listing.get("features") or []:
            try:  # the list holds summaries; read each feature for its strategies
                flags.append(await self.get_flag(str(item["name"])))
            except FlagNotFoundError:
                continue  # archived between the two requests
        return flags

    # -- mapping -------------------------------------------------------------------------------

    async def _existing(self, spec: FlagSpec, feature: Mapping[str, Any]) -> Flag:
        environment = _environment(feature, self.settings.environment, required=True)
        unfinished = (not environment.get("enabled") and not environment.get("strategies")
                      and feature.get("type") == "experiment" and (feature.get("description") or "") == spec.description)
        if unfinished:
            # An earlier attempt created the feature and stopped before adding the strategy:
            # finish its work (this call is the one that completes the creation).
            strategy = await self._call("POST", self._strategies(spec.key), body=self._strategy(spec))
            return self._flag(spec.key, spec.description, enabled=False, strategy=strategy, created=True,
                              created_at=feature.get("createdAt"))
        return existing_flag(spec, self._flag_from_feature(feature))

    async def _get_feature(self, key: str) -> dict[str, Any]:
        try:
            feature = await self._call("GET", f"{self._features()}/{quote(key, safe='')}")
        except FlagNotFoundError:
            raise FlagNotFoundError(f"unleash: no feature '{key}' in project '{self.settings.project}'",
                                    details={"provider": self.name, "key": key}) from None
        if not isinstance(feature, dict):
            raise FlagRequestError(f"unleash: expected a feature object for '{key}', got {str(feature)[:200]}")
        return feature

    def _features(self) -> str:
        return f"/api/admin/projects/{quote(self.settings.project, safe='')}/features"

    def _environment_path(self, key: str) -> str:
        return f"{self._features()}/{quote(key, safe='')}/environments/{quote(self.settings.environment, safe='')}"

    def _strategies(self, key: str) -> str:
        return f"{self._environment_path(key)}/strategies"

    def _strategy(self, spec: FlagSpec) -> dict[str, Any]:
        return {
            "name": STRATEGY,
            "title": f"{TITLE_PREFIX} {spec.experiment_key}",
            "disabled": False,
            "constraints": [{"contextName": attribute, "operator": "IN", "values": values,
                             "caseInsensitive": False, "inverted": False}
                            for attribute, values in sorted(spec.targeting.items())],
            "parameters": {"rollout": "100", "stickiness": self.settings.stickiness, "groupId": spec.experiment_key},
            "variants": self._strategy_variants(spec.variants),
        }

    def _strategy_variants(self, variants: list[FlagVariant]) -> list[dict[str, Any]]:
        last = len(variants) - 1
        return [{"name": v.key, "weight": v.weight * 10, "weightType": "variable" if i == last else "fix",
                 "stickiness": self.settings.stickiness} for i, v in enumerate(variants)]

    def _flag_from_feature(self, feature: Mapping[str, Any]) -> Flag:
        environment = _environment(feature, self.settings.environment)
        return self._flag(str(feature.get("name", "")), str(feature.get("description") or ""),
                          enabled=bool(environment.get("enabled")),
                          strategy=_experiment_strategy(environment) or {}, created_at=feature.get("createdAt"))

    def _flag(self, key: str, description: str, *, enabled: bool, strategy: Any, created: bool = False,
              created_at: Any = None) -> Flag:
        strategy = strategy if isinstance(strategy, dict) else {}
        parameters = strategy.get("parameters") or {}
        return Flag(key=key, enabled=enabled, variants=_variants(strategy), targeting=_targeting(strategy),
                    provider=self.name, created=created, description=description,
                    experiment_key=str(parameters.get("groupId") or ""), created_at=recorded_time(created_at),
                    url=f"{self.base_url}/projects/{quote(self.settings.project)}/features/{quote(key)}")


def _environment(feature: Mapping[str, Any], env: str, *, required: bool = False) -> dict[str, Any]:
    """The feature's state in ``env``; without it (and not ``required``) it reads as off, no strategies."""
    for e in feature.get("environments") or []:
        if isinstance(e, dict) and e.get("name") == env:
            return e
    if not required:
        return {}
    raise FlagRequestError(
        f"unleash: feature '{feature.get('name')}' has no environment '{env}'; it has: "
        f"{', '.join(str(e.get('name')) for e in feature.get('environments') or []) or 'none'}. "
        f"Enable the environment in the project, or set the provider's `environment` setting.",
        details={"provider": "unleash", "key": feature.get("name"), "environment": env})


def _experiment_strategy(environment: Mapping[str, Any]) -> dict[str, Any] | None:
    """The strategy this adapter wrote (its title), else the first with variants."""
    strategies = [s for s in environment.get("strategies") or [] if isinstance(s, dict)]
    for s in strategies:
        if str(s.get("title") or "").startswith(TITLE_PREFIX):
            return s
    return next((s for s in strategies if s.get("variants")), None)


def _variants(strategy: Mapping[str, Any]) -> list[FlagVariant]:
    return [FlagVariant(key=str(v.get("name")), weight=round(float(v.get("weight", 0)) / 10))
            for v in strategy.get("variants") or [] if isinstance(v, dict)]


def _targeting(strategy: Mapping[str, Any]) -> dict[str, list[str]]:
    """`IN` constraints back to ``{attribute: values}``; any other constraint keeps its operator in
    the attribute name so that comparing it with a spec shows a difference."""
    targeting: dict[str, list[str]] = {}
    for c in strategy.get("constraints") or []:
        if not isinstance(c, dict):
            continue
        name = str(c.get("contextName"))
        if c.get("operator") != "IN" or c.get("inverted"):
            name = f"{name} {'NOT ' if c.get('inverted') else ''}{c.get('operator')}"
        values = c.get("values") or ([c["value"]] if c.get("value") is not None else [])
        targeting[name] = [str(v) for v in values]
    return targeting

"""The GrowthBook flag provider, over GrowthBook's REST API v1.

Endpoints used (paths relative to ``GROWTHBOOK_API_URL``, default ``https://api.growthbook.io``;
for a self-hosted GrowthBook it is the API_HOST, e.g. ``http://localhost:3100``):

- ``GET  /api/v1/features/{id}``: read one feature → ``{"feature": Feature}`` (404 when absent).
- ``POST /api/v1/features``: create (`postFeature`): ``{id, description, owner, project?,
  valueType, defaultValue, tags, environments: {env: {enabled, rules}}}`` → ``{"feature": …}``.
- ``POST /api/v1/features/{id}``: partial update (`updateFeature`), used by `rollback` to
  replace one environment's ``{enabled, rules}`` in a single request.
- ``POST /api/v1/features/{id}/toggle``: (`toggleFeature`) ``{environments: {env: bool}, reason}``.
- ``GET  /api/v1/features?limit=&offset=&projectId=``: list (`listFeatures`), paginated with
  ``hasMore`` / ``nextOffset``.

Auth: ``Authorization: Bearer <secret key>`` from ``GROWTHBOOK_API_KEY`` (a Secret Key or
Personal Access Token with write access to features).

How an experiment maps onto a feature: a ``string`` feature whose default value is the control
variant's key (what everyone gets while the environment is disabled), with one ``experiment``
rule in the configured environment: ``trackingKey`` = experiment key, ``values`` = one
``{value: variant key, name, weight}`` per variant (weights as fractions summing to 1), and the
targeting as a MongoDB-style ``condition`` (``{"platform": {"$in": ["ios", "android"]}}``).
GrowthBook's newer `/api/v2/features` moves rules to a top-level array; v1 is what this adapter
speaks. An environment with approval rules may refuse API writes unless the organisation lets the
REST API bypass approvals (GrowthBook answers 403, reported as an auth error).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from pydantic import Field

from activities.errors import FlagConfigError, FlagConflictError, FlagNotFoundError, FlagRequestError
from activities.flags.http_provider import HttpFlagProvider
from activities.flags.models import Flag, FlagSpec, FlagVariant, control_key, existing_flag, recorded_time

DEFAULT_API_URL = "https://api.growthbook.io"
CLOUD_APP_URL = "https://app.growthbook.io"
API_KEY_ENV = "GROWTHBOOK_API_KEY"
API_URL_ENV = "GROWTHBOOK_API_URL"
TAG = "iterloop"
_PAGE = 100


class GrowthBookFlagProvider(HttpFlagProvider):
    name = "growthbook"
    auth_hint = (f"Set {API_KEY_ENV} on the worker to a GrowthBook Secret Key (Settings → API Keys) or "
                 f"Personal Access Token that may write features in this project and environment.")

    class Settings(HttpFlagProvider.Settings):
        environment: str = Field("production", min_length=1, description="the GrowthBook environment to use")
        project: str = Field("", description="GrowthBook project ID for new features (and to filter the list)")
        owner: str = Field("iterloop", description="owner recorded on new features")
        hash_attribute: str = Field("id", min_length=1, description="the user attribute experiments split on")
        api_url: str = Field("", description=f"overrides {API_URL_ENV}")
        app_url: str = Field("", description="GrowthBook web app, for links (default: the cloud app for the cloud API)")
        timeout_seconds: float = Field(30.0, gt=0)

    def __init__(self, settings: Mapping[str, Any] | None = None, *, env: Mapping[str, str] | None = None) -> None:
        super().__init__(settings, env=env)
        key = self.env_value(API_KEY_ENV)
        if not key:
            raise FlagConfigError(f"growthbook: {API_KEY_ENV} is not set on the worker. {self.auth_hint}",
                                  details={"provider": self.name})
        base = self.service_url(self.settings.api_url, API_URL_ENV, DEFAULT_API_URL)
        # The docs give the base as ".../api"; accept both spellings since our paths start with /api.
        base = base.removesuffix("/api")
        self._setup_client(base, {"Authorization": f"Bearer {key}"}, self.settings.timeout_seconds)
        self.app_url = (self.settings.app_url or (CLOUD_APP_URL if base == DEFAULT_API_URL else "")).rstrip("/")

    # -- the interface -------------------------------------------------------------------------

    async def create_flag(self, spec: FlagSpec) -> Flag:
        # GET first: a retried activity finds its own flag instead of tripping over "already exists".
        try:
            return existing_flag(spec, await self.get_flag(spec.key))
        except FlagNotFoundError:
            pass
        env = self.settings.environment
        body: dict[str, Any] = {
            "id": spec.key,
            "description": spec.description,
            "owner": self.settings.owner,
            "valueType": "string",
            "defaultValue": spec.control_key,
            "tags": [TAG],
            # Created disabled: the environment's kill switch is off, the rule is ready.
            "environments": {env: {"enabled": False, "rules": [self._experiment_rule(spec)]}},
        }
        if self.settings.project:
            body["project"] = self.settings.project
        try:
            data = await self._call("POST", "/api/v1/features", body=body)
        except (FlagRequestError, FlagConflictError) as e:
            # Lost a race with another attempt: GrowthBook refuses an existing id (HTTP 400
            # "Feature id '…' already exists"). Whatever the wording, if the flag is there now,
            # judge it like any existing flag.
            try:
                found = await self.get_flag(spec.key)
            except FlagNotFoundError:
                raise e from None
            return existing_flag(spec, found)
        return self._flag(_feature(data), created=True)

    async def get_flag(self, key: str) -> Flag:
        return self._flag(await self._get_feature(key))

    async def set_enabled(self, key: str, enabled: bool) -> Flag:
        env = self.settings.environment
        data = await self._call("POST", f"{_feature_path(key)}/toggle",
                                body={"environments": {env: enabled},
                                      "reason": f"iterloop: {'enable' if enabled else 'disable'} experiment flag"})
        return self._flag(_feature(data))

    async def rollback(self, key: str) -> Flag:
        # One write: the environment's `enabled` and its rules are replaced together, so there is
        # no moment where the flag is on with the old split, or off but still misconfigured.
        current = await self._get_feature(key)
        env = self.settings.environment
        rules = list(_environment(current, env, required=True).get("rules") or [])
        index = _experiment_rule_index(rules)
        if index is None:
            raise FlagRequestError(f"growthbook: feature '{key}' has no experiment rule in environment '{env}' "
                                   f"to roll back", details={"provider": self.name, "key": key})
        rule = rules[index]
        values = _rule_values(rule)
        control = control_key(_variants(values))
        rules[index] = {**_rule_payload(rule), "values": [
            {**v, "weight": 1.0 if str(v.get("value")) == control else 0.0} for v in values]}
        data = await self._call("POST", _feature_path(key),
                                body={"environments": {env: {"enabled": False, "rules": rules}}})
        return self._flag(_feature(data))

    async def list_flags(self) -> list[Flag]:
        flags: list[Flag] = []
        offset = 0
        while True:
            params: dict[str, Any] = {"limit": _PAGE, "offset": offset}
            if self.settings.project:
                params["projectId"] = self.settings.project
            page = await self._call("GET", "/api/v1/features", params=params) or {}
            flags += [self._flag(f) for f in page.get("features") or []]
            if not page.get("hasMore"):
                return flags
            offset = int(page.get("nextOffset") or offset + _PAGE)

    # -- mapping -------------------------------------------------------------------------------

    async def _get_feature(self, key: str) -> dict[str, Any]:
        try:
            return _feature(await self._call("GET", _feature_path(key)))
        except FlagNotFoundError:
            raise FlagNotFoundError(f"growthbook: no feature '{key}'", details={"provider": self.name, "key": key}) from None

    def _experiment_rule(self, spec: FlagSpec) -> dict[str, Any]:
        return {
            "type": "experiment",
            "description": f"iterloop experiment {spec.experiment_key}",
            "condition": _condition(spec.targeting),
            "enabled": True,
            "trackingKey": spec.experiment_key,
            "hashAttribute": self.settings.hash_attribute,
            "coverage": 1,
            "values": [{"value": v.key, "name": v.key, "weight": v.weight / 100} for v in spec.variants],
        }

    def _flag(self, feature: Mapping[str, Any], *, created: bool = False) -> Flag:
        key = str(feature.get("id", ""))
        environment = _environment(feature, self.settings.environment)
        rules = environment.get("rules") or []
        index = _experiment_rule_index(rules)
        rule = rules[index] if index is not None else {}
        return Flag(key=key, enabled=bool(environment.get("enabled", False)),
                    variants=_variants(_rule_values(rule)), targeting=_targeting(rule.get("condition") or ""),
                    provider=self.name, url=f"{self.app_url}/features/{quote(key)}" if self.app_url else None,
                    created=created, description=str(feature.get("description") or ""),
                    experiment_key=str(rule.get("trackingKey") or ""),
                    created_at=recorded_time(feature.get("dateCreated")))


def _feature_path(key: str) -> str:
    return f"/api/v1/features/{quote(key, safe='')}"


def _feature(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict) or not isinstance(data.get("feature"), dict):
        raise FlagRequestError(f"growthbook: expected a {{\"feature\": …}} response, got {str(data)[:200]}")
    return data["feature"]


def _environment(feature: Mapping[str, Any], env: str, *, required: bool = False) -> dict[str, Any]:
    """The feature's settings in ``env``; a feature listed without it reads as disabled, no rules."""
    environments = feature.get("environments") or {}
    if env not in environments:
        if not required:
            return {}
        raise FlagRequestError(
            f"growthbook: feature '{feature.get('id')}' has no environment '{env}'; it has: "
            f"{', '.join(sorted(environments)) or 'none'}. Set the provider's `environment` setting.",
            details={"provider": "growthbook", "key": feature.get("id"), "environment": env})
    return environments[env]


def _experiment_rule_index(rules: list[Any]) -> int | None:
    for i, rule in enumerate(rules):
        if isinstance(rule, dict) and rule.get("type") == "experiment":
            return i
    return None


def _rule_values(rule: Mapping[str, Any]) -> list[dict[str, Any]]:
    # Requests take `values`; responses (and the original v1 spec) use `value` for the same list.
    values = rule.get("values") or rule.get("value") or []
    return [v for v in values if isinstance(v, dict)] if isinstance(values, list) else []


def _rule_payload(rule: Mapping[str, Any]) -> dict[str, Any]:
    """A rule as read, reshaped into the request form (`values`, not the response's `value`)."""
    payload = {k: v for k, v in rule.items() if k != "value"}
    payload["values"] = _rule_values(rule)
    return payload


def _variants(values: list[dict[str, Any]]) -> list[FlagVariant]:
    return [FlagVariant(key=str(v.get("value")), weight=round(float(v.get("weight", 0)) * 100)) for v in values]


def _condition(targeting: Mapping[str, list[str]]) -> str:
    if not targeting:
        return ""
    return json.dumps({attribute: {"$in": values} for attribute, values in sorted(targeting.items())},
                      separators=(",", ":"))


def _targeting(condition: str) -> dict[str, list[str]]:
    """The inverse of `_condition`. A condition this adapter did not write keeps its parts as JSON
    text, so comparing it with a spec shows a difference instead of silently matching."""
    if not condition.strip():
        return {}
    try:
        parsed = json.loads(condition)
    except ValueError:
        return {"condition": [condition]}
    if not isinstance(parsed, dict):
        return {"condition": [condition]}
    targeting: dict[str, list[str]] = {}
    for attribute, test in parsed.items():
        if isinstance(test, dict) and set(test) == {"$in"} and isinstance(test["$in"], list):
            targeting[attribute] = [str(v) for v in test["$in"]]
        elif isinstance(test, str):
            targeting[attribute] = [test]
        else:
            targeting[attribute] = [json.dumps(test, sort_keys=True)]
    return targeting

"""Flag providers: the local JSON store end to end (including two processes at once), and the
GrowthBook and Unleash adapters against local fakes of their APIs (tests/fakes/flag_servers.py)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from fakes.flag_servers import FakeGrowthBook, FakeUnleash
from pydantic import ValidationError
from temporalio.exceptions import ApplicationError

from activities.flags import FlagSpec, flag_provider_from_config
from activities.flags import growthbook as growthbook_module
from activities.flags.base import FlagProvider
from activities.flags.growthbook import GrowthBookFlagProvider
from activities.flags.local import LocalFlagProvider
from activities.flags.unleash import UnleashFlagProvider
from workflows.contract.vocabulary import (
    ERR_BAD_REQUEST,
    ERR_FLAG_AUTH,
    ERR_FLAG_CONFLICT,
    ERR_FLAG_NOT_FOUND,
    ERR_FLAG_PROVIDER_UNAVAILABLE,
    ERR_RATE_LIMITED,
)

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_SECONDS = 15.0
GB_KEY = "secret_test"
UNLEASH_TOKEN = "*:*.unleash-admin-token"


def spec(key: str = "checkout-form-short", **overrides: Any) -> FlagSpec:
    fields: dict[str, Any] = {
        "key": key,
        "description": "Fewer checkout fields on mobile",
        "variants": [{"key": "control", "weight": 50}, {"key": "treatment", "weight": 50}],
        "targeting": {"platform": ["ios", "android"]},
        "experiment_key": f"exp-{key}",
    }
    return FlagSpec.model_validate({**fields, **overrides})


async def failure(call: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as info:
        await call
    return info.value


# ---------------------------------------------------------------------------------------------
# The spec
# ---------------------------------------------------------------------------------------------


def test_spec_rejects_weights_that_do_not_sum_to_100() -> None:
    with pytest.raises(ValidationError, match="sum to 100"):
        spec(variants=[{"key": "control", "weight": 50}, {"key": "treatment", "weight": 40}])


def test_spec_rejects_duplicate_variant_keys() -> None:
    with pytest.raises(ValidationError, match="unique"):
        spec(variants=[{"key": "control", "weight": 50}, {"key": "control", "weight": 50}])


def test_spec_defaults_the_experiment_key_to_the_flag_key_and_accepts_scalar_targeting() -> None:
    s = spec(experiment_key="", targeting={"country": "US"})
    assert s.experiment_key == s.key
    assert s.targeting == {"country": ["US"]}


def test_control_is_the_variant_named_control_else_the_first() -> None:
    assert spec(variants=[{"key": "b", "weight": 50}, {"key": "control", "weight": 50}]).control_key == "control"
    assert spec(variants=[{"key": "a", "weight": 50}, {"key": "b", "weight": 50}]).control_key == "a"


# ---------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------


def test_registry_builds_each_provider_by_name(tmp_path: Path) -> None:
    env = {"GROWTHBOOK_API_KEY": GB_KEY, "UNLEASH_API_TOKEN": UNLEASH_TOKEN, "UNLEASH_API_URL": "http://127.0.0.1:9"}
    assert isinstance(flag_provider_from_config("local", {"path": str(tmp_path / "f.json")}), LocalFlagProvider)
    assert isinstance(flag_provider_from_config("GrowthBook", {}, env=env), GrowthBookFlagProvider)
    assert isinstance(flag_provider_from_config("unleash", {"project": "growth"}, env=env), UnleashFlagProvider)


def test_registry_rejects_an_unknown_provider_naming_the_known_ones() -> None:
    err = pytest.raises(ApplicationError, flag_provider_from_config, "launchdarkly", {}).value
    assert err.non_retryable and err.type == ERR_BAD_REQUEST
    assert "growthbook, local, unleash" in str(err)


def test_registry_rejects_unknown_settings_listing_the_accepted_ones() -> None:
    err = pytest.raises(ApplicationError, flag_provider_from_config, "local", {"file": "x.json"}).value
    assert err.non_retryable and "lock_timeout_seconds, path" in str(err)


def test_a_remote_provider_without_its_credential_fails_permanently_and_says_which_variable() -> None:
    err = pytest.raises(ApplicationError, flag_provider_from_config, "growthbook", {}, env={}).value
    assert err.non_retryable and "GROWTHBOOK_API_KEY" in str(err)
    err = pytest.raises(ApplicationError, flag_provider_from_config, "unleash", {}, env={"UNLEASH_API_TOKEN": "t"}).value
    assert err.non_retryable and "UNLEASH_API_URL" in str(err)


# ---------------------------------------------------------------------------------------------
# Local store
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def flags_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "flags.json"


@pytest.fixture
def local(flags_path: Path) -> LocalFlagProvider:
    return LocalFlagProvider({"path": str(flags_path)})


async def test_local_create_makes_a_disabled_flag_in_the_json_file(local: LocalFlagProvider, flags_path: Path) -> None:
    flag = await local.create_flag(spec())
    assert flag.created and not flag.enabled and flag.provider == "local"
    assert [(v.key, v.weight) for v in flag.variants] == [("control", 50), ("treatment", 50)]
    stored = json.loads(flags_path.read_text())["flags"]["checkout-form-short"]
    assert stored["enabled"] is False
    assert stored["targeting"] == {"platform": ["ios", "android"]}
    assert stored["experiment_key"] == "exp-checkout-form-short"
    assert sorted(p.name for p in flags_path.parent.iterdir()) == ["flags.json", "flags.json.lock"]  # no temp files


async def test_local_create_again_with_the_same_spec_returns_the_flag_not_created(local: LocalFlagProvider) -> None:
    await local.create_flag(spec())
    again = await local.create_flag(spec(targeting={"platform": ["android", "ios"]}, description="reworded"))
    assert not again.created and again.key == "checkout-form-short"
    assert len(await local.list_flags()) == 1


async def test_local_flags_keep_their_creation_time(local: LocalFlagProvider, flags_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("activities.flags.local._now", lambda: "2025-05-01T08:00:00+00:00")
    first = await local.create_flag(spec())
    monkeypatch.setattr("activities.flags.local._now", lambda: "2025-05-09T08:00:00+00:00")
    again = await local.create_flag(spec())
    assert first.created_at == again.created_at == datetime(2025, 5, 1, 8, tzinfo=timezone.utc)
    assert json.loads(flags_path.read_text())["flags"]["checkout-form-short"]["created_at"] == "2025-05-01T08:00:00+00:00"


async def test_local_create_with_a_different_spec_is_a_permanent_conflict(local: LocalFlagProvider) -> None:
    await local.create_flag(spec())
    err = await failure(local.create_flag(spec(variants=[{"key": "control", "weight": 90},
                                                         {"key": "treatment", "weight": 10}])))
    assert err.type == ERR_FLAG_CONFLICT and err.non_retryable
    assert "checkout-form-short" in str(err) and "control=50%" in str(err) and "control=90%" in str(err)


async def test_local_set_enabled_turns_the_flag_on_and_off(local: LocalFlagProvider) -> None:
    await local.create_flag(spec())
    assert (await local.set_enabled("checkout-form-short", True)).enabled
    assert (await local.get_flag("checkout-form-short")).enabled
    assert not (await local.set_enabled("checkout-form-short", False)).enabled


async def test_local_rollback_disables_and_puts_all_traffic_on_control(local: LocalFlagProvider) -> None:
    await local.create_flag(spec(variants=[{"key": "treatment", "weight": 30}, {"key": "control", "weight": 70}]))
    await local.set_enabled("checkout-form-short", True)
    flag = await local.rollback("checkout-form-short")
    assert not flag.enabled
    assert [(v.key, v.weight) for v in flag.variants] == [("treatment", 0), ("control", 100)]
    assert await local.get_flag("checkout-form-short") == flag


async def test_local_unknown_flag_is_not_found_and_lists_the_known_ones(local: LocalFlagProvider) -> None:
    await local.create_flag(spec())
    err = await failure(local.set_enabled("nope", True))
    assert err.type == ERR_FLAG_NOT_FOUND and err.non_retryable and "checkout-form-short" in str(err)


async def test_local_corrupt_store_is_a_permanent_error_naming_the_file(local: LocalFlagProvider, flags_path: Path) -> None:
    flags_path.parent.mkdir(parents=True)
    flags_path.write_text("{not json")
    err = await failure(local.list_flags())
    assert err.non_retryable and str(flags_path) in str(err)


async def test_local_concurrent_creates_from_many_tasks_make_one_flag(local: LocalFlagProvider) -> None:
    results = await asyncio.gather(*[local.create_flag(spec()) for _ in range(12)],
                                   *[local.create_flag(spec(f"other-{i}")) for i in range(12)])
    assert sum(f.created for f in results[:12]) == 1
    assert all(f.created for f in results[12:])
    assert sorted(f.key for f in await local.list_flags()) == sorted(["checkout-form-short", *[f"other-{i}" for i in range(12)]])


_CHILD = """
import asyncio, os, sys, time
from activities.flags import FlagSpec
from activities.flags.local import LocalFlagProvider

path, tag, ready, go = sys.argv[1:5]
open(ready, "w").close()
deadline = time.monotonic() + 15
while not os.path.exists(go):
    if time.monotonic() > deadline:
        sys.exit("no go signal")
    time.sleep(0.001)

def spec(key):
    return FlagSpec(key=key, variants=[{"key": "control", "weight": 50}, {"key": "treatment", "weight": 50}])

async def main():
    store = LocalFlagProvider({"path": path})
    shared = await asyncio.gather(*[store.create_flag(spec("shared")) for _ in range(5)])
    await asyncio.gather(*[store.create_flag(spec(f"{tag}-{i}")) for i in range(15)])
    print(sum(f.created for f in shared))

asyncio.run(main())
"""


async def test_local_concurrent_creates_from_two_processes_make_one_flag_and_lose_no_update(
        flags_path: Path, tmp_path: Path) -> None:
    go = tmp_path / "go"
    readies = [tmp_path / f"ready-{tag}" for tag in "ab"]
    procs = [await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CHILD, str(flags_path), tag, str(ready), str(go), cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        for tag, ready in zip("ab", readies)]
    deadline = asyncio.get_running_loop().time() + DEADLINE_SECONDS
    while not all(r.exists() for r in readies):  # both imported: start them together
        assert asyncio.get_running_loop().time() < deadline, "children did not start"
        await asyncio.sleep(0.01)
    go.touch()
    outputs = [await asyncio.wait_for(p.communicate(), DEADLINE_SECONDS) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1].decode() for o in outputs]
    assert sum(int(o[0]) for o in outputs) == 1  # exactly one create of "shared" saw created=True
    flags = json.loads(flags_path.read_text())["flags"]
    assert sorted(flags) == sorted(["shared", *[f"{t}-{i}" for t in "ab" for i in range(15)]])
    assert not [p for p in flags_path.parent.iterdir() if p.suffix == ".tmp"]


# ---------------------------------------------------------------------------------------------
# GrowthBook
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def growthbook_server() -> Iterator[FakeGrowthBook]:
    server = FakeGrowthBook(api_key=GB_KEY).start()
    yield server
    server.stop()


def growthbook_env(server: FakeGrowthBook, key: str = GB_KEY) -> dict[str, str]:
    return {"GROWTHBOOK_API_KEY": key, "GROWTHBOOK_API_URL": server.url}


@pytest_asyncio.fixture
async def growthbook(growthbook_server: FakeGrowthBook) -> AsyncIterator[FlagProvider]:
    async with flag_provider_from_config("growthbook", {"environment": "production", "project": "prj_growth"},
                                         env=growthbook_env(growthbook_server)) as provider:
        yield provider


async def test_growthbook_create_posts_a_disabled_experiment_feature(
        growthbook: FlagProvider, growthbook_server: FakeGrowthBook) -> None:
    flag = await growthbook.create_flag(spec())
    assert flag.created and not flag.enabled and flag.provider == "growthbook"
    assert [(v.key, v.weight) for v in flag.variants] == [("control", 50), ("treatment", 50)]
    assert flag.targeting == {"platform": ["ios", "android"]}
    assert flag.experiment_key == "exp-checkout-form-short"

    get, post = growthbook_server.requests
    assert (get.method, get.path) == ("GET", "/api/v1/features/checkout-form-short")
    assert (post.method, post.path) == ("POST", "/api/v1/features")
    assert post.headers["authorization"] == f"Bearer {GB_KEY}"
    assert post.body == {
        "id": "checkout-form-short", "description": "Fewer checkout fields on mobile", "owner": "iterloop",
        "project": "prj_growth", "valueType": "string", "defaultValue": "control", "tags": ["iterloop"],
        "environments": {"production": {"enabled": False, "rules": [{
            "type": "experiment", "description": "iterloop experiment exp-checkout-form-short",
            "condition": '{"platform":{"$in":["ios","android"]}}', "enabled": True,
            "trackingKey": "exp-checkout-form-short", "hashAttribute": "id", "coverage": 1,
            "values": [{"value": "control", "name": "control", "weight": 0.5},
                       {"value": "treatment", "name": "treatment", "weight": 0.5}]}]}}}
    assert not any(r.path.endswith("/toggle") for r in growthbook_server.requests)


async def test_growthbook_create_again_reads_the_flag_and_writes_nothing(
        growthbook: FlagProvider, growthbook_server: FakeGrowthBook) -> None:
    await growthbook.create_flag(spec())
    again = await growthbook.create_flag(spec())
    assert not again.created
    assert len(growthbook_server.writes()) == 1


async def test_growthbook_flags_carry_the_creation_time_growthbook_recorded(growthbook: FlagProvider) -> None:
    first, again = await growthbook.create_flag(spec()), await growthbook.create_flag(spec())
    assert first.created_at == again.created_at == datetime(2025, 5, 1, tzinfo=timezone.utc)  # the fake's dateCreated


async def test_growthbook_create_that_loses_a_race_returns_the_flag_the_other_attempt_made(
        growthbook: FlagProvider, growthbook_server: FakeGrowthBook) -> None:
    await growthbook.create_flag(spec())
    growthbook_server.hide_next_get("/api/v1/features/checkout-form-short")
    flag = await growthbook.create_flag(spec())  # GET says 404, POST says "already exists"
    assert not flag.created
    assert [r.method for r in growthbook_server.requests[2:]] == ["GET", "POST", "GET"]


async def test_growthbook_create_with_a_different_spec_is_a_permanent_conflict(growthbook: FlagProvider) -> None:
    await growthbook.create_flag(spec())
    err = await failure(growthbook.create_flag(spec(targeting={"platform": ["web"]})))
    assert err.type == ERR_FLAG_CONFLICT and err.non_retryable and "targeting" in str(err)


async def test_growthbook_set_enabled_toggles_the_configured_environment(
        growthbook: FlagProvider, growthbook_server: FakeGrowthBook) -> None:
    await growthbook.create_flag(spec())
    flag = await growthbook.set_enabled("checkout-form-short", True)
    toggle = growthbook_server.requests[-1]
    assert (toggle.method, toggle.path) == ("POST", "/api/v1/features/checkout-form-short/toggle")
    assert toggle.body["environments"] == {"production": True} and toggle.body["reason"]
    assert flag.enabled
    assert growthbook_server.features["checkout-form-short"]["environments"]["dev"]["enabled"] is False


async def test_growthbook_rollback_disables_and_moves_traffic_to_control_in_one_write(
        growthbook: FlagProvider, growthbook_server: FakeGrowthBook) -> None:
    await growthbook.create_flag(spec())
    await growthbook.set_enabled("checkout-form-short", True)
    writes_before = len(growthbook_server.writes())
    flag = await growthbook.rollback("checkout-form-short")
    (write,) = growthbook_server.writes()[writes_before:]
    assert (write.method, write.path) == ("POST", "/api/v1/features/checkout-form-short")
    production = write.body["environments"]["production"]
    assert production["enabled"] is False
    assert [(v["value"], v["weight"]) for v in production["rules"][0]["values"]] == [("control", 1.0), ("treatment", 0.0)]
    assert not flag.enabled
    assert [(v.key, v.weight) for v in flag.variants] == [("control", 100), ("treatment", 0)]


async def test_growthbook_list_follows_pagination(growthbook: FlagProvider, growthbook_server: FakeGrowthBook,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(growthbook_module, "_PAGE", 2)
    for i in range(3):
        await growthbook.create_flag(spec(f"flag-{i}"))
    flags = await growthbook.list_flags()
    assert [f.key for f in flags] == ["flag-0", "flag-1", "flag-2"]
    assert [r.query["offset"] for r in growthbook_server.requests if r.path == "/api/v1/features" and r.method == "GET"] == ["0", "2"]


async def test_growthbook_rejected_key_is_a_permanent_auth_error(growthbook_server: FakeGrowthBook) -> None:
    async with GrowthBookFlagProvider({}, env=growthbook_env(growthbook_server, key="secret_wrong")) as provider:
        err = await failure(provider.create_flag(spec()))
    assert err.type == ERR_FLAG_AUTH and err.non_retryable and "GROWTHBOOK_API_KEY" in str(err)


async def test_growthbook_429_is_retried_after_the_servers_delay(
        growthbook: FlagProvider, growthbook_server: FakeGrowthBook) -> None:
    growthbook_server.fail_next(429, {"message": "Too many requests"}, {"Retry-After": "7"})
    err = await failure(growthbook.create_flag(spec()))
    assert err.type == ERR_RATE_LIMITED and not err.non_retryable
    assert err.next_retry_delay == timedelta(seconds=7)
    assert "Too many requests" in str(err)


async def test_growthbook_5xx_is_retried(growthbook: FlagProvider, growthbook_server: FakeGrowthBook) -> None:
    growthbook_server.fail_next(503, {"message": "maintenance"})
    err = await failure(growthbook.get_flag("checkout-form-short"))
    assert err.type == ERR_FLAG_PROVIDER_UNAVAILABLE and not err.non_retryable


async def test_growthbook_unreachable_server_is_retried() -> None:
    async with GrowthBookFlagProvider({"timeout_seconds": 2}, env={"GROWTHBOOK_API_KEY": GB_KEY,
                                                                    "GROWTHBOOK_API_URL": "http://127.0.0.1:9"}) as p:
        err = await failure(p.get_flag("x"))
    assert err.type == ERR_FLAG_PROVIDER_UNAVAILABLE and not err.non_retryable


# ---------------------------------------------------------------------------------------------
# Unleash
# ---------------------------------------------------------------------------------------------

FEATURES = "/api/admin/projects/growth/features"
FEATURE = f"{FEATURES}/checkout-form-short"
PRODUCTION = f"{FEATURE}/environments/production"


@pytest.fixture
def unleash_server() -> Iterator[FakeUnleash]:
    server = FakeUnleash(token=UNLEASH_TOKEN).start()
    yield server
    server.stop()


def unleash_env(server: FakeUnleash, token: str = UNLEASH_TOKEN) -> dict[str, str]:
    return {"UNLEASH_API_TOKEN": token, "UNLEASH_API_URL": server.url}


@pytest_asyncio.fixture
async def unleash(unleash_server: FakeUnleash) -> AsyncIterator[FlagProvider]:
    async with flag_provider_from_config("unleash", {"project": "growth", "environment": "production"},
                                         env=unleash_env(unleash_server)) as provider:
        yield provider


async def test_unleash_create_makes_a_disabled_experiment_with_a_variant_strategy(
        unleash: FlagProvider, unleash_server: FakeUnleash) -> None:
    flag = await unleash.create_flag(spec())
    assert flag.created and not flag.enabled and flag.provider == "unleash"
    assert [(v.key, v.weight) for v in flag.variants] == [("control", 50), ("treatment", 50)]
    assert flag.targeting == {"platform": ["ios", "android"]}
    assert flag.url == f"{unleash_server.url}/projects/growth/features/checkout-form-short"

    get, create, strategy = unleash_server.requests
    assert (get.method, get.path) == ("GET", FEATURE)
    assert (create.method, create.path) == ("POST", FEATURES)
    assert create.headers["authorization"] == UNLEASH_TOKEN  # no "Bearer"
    assert create.body == {"name": "checkout-form-short", "description": "Fewer checkout fields on mobile",
                           "type": "experiment", "impressionData": False}
    assert (strategy.method, strategy.path) == ("POST", f"{PRODUCTION}/strategies")
    assert strategy.body == {
        "name": "flexibleRollout", "title": "iterloop experiment exp-checkout-form-short", "disabled": False,
        "constraints": [{"contextName": "platform", "operator": "IN", "values": ["ios", "android"],
                         "caseInsensitive": False, "inverted": False}],
        "parameters": {"rollout": "100", "stickiness": "default", "groupId": "exp-checkout-form-short"},
        "variants": [{"name": "control", "weight": 500, "weightType": "fix", "stickiness": "default"},
                     {"name": "treatment", "weight": 500, "weightType": "variable", "stickiness": "default"}]}
    assert not any(r.path.endswith(("/on", "/off")) for r in unleash_server.requests)
    assert all(not e["enabled"] for e in unleash_server.features["checkout-form-short"]["environments"])


async def test_unleash_create_again_reads_the_flag_and_writes_nothing(
        unleash: FlagProvider, unleash_server: FakeUnleash) -> None:
    await unleash.create_flag(spec())
    again = await unleash.create_flag(spec())
    assert not again.created and again.experiment_key == "exp-checkout-form-short"
    assert len(unleash_server.writes()) == 2


async def test_unleash_flags_carry_the_creation_time_unleash_recorded(unleash: FlagProvider) -> None:
    first, again = await unleash.create_flag(spec()), await unleash.create_flag(spec())
    assert first.created_at == again.created_at == datetime(2025, 5, 1, tzinfo=timezone.utc)  # the fake's createdAt


async def test_unleash_create_that_gets_409_returns_the_flag_the_other_attempt_made(
        unleash: FlagProvider, unleash_server: FakeUnleash) -> None:
    await unleash.create_flag(spec())
    unleash_server.hide_next_get(FEATURE)
    flag = await unleash.create_flag(spec())
    assert not flag.created
    assert [(r.method, r.path) for r in unleash_server.requests[3:]] == [("GET", FEATURE), ("POST", FEATURES), ("GET", FEATURE)]


async def test_unleash_name_taken_by_an_archived_flag_is_a_permanent_conflict(
        unleash: FlagProvider, unleash_server: FakeUnleash) -> None:
    unleash_server.archived.add("checkout-form-short")
    err = await failure(unleash.create_flag(spec()))
    assert err.type == ERR_FLAG_CONFLICT and err.non_retryable and "archived" in str(err)


async def test_unleash_create_finishes_a_creation_interrupted_before_its_strategy(
        unleash: FlagProvider, unleash_server: FakeUnleash) -> None:
    unleash_server.fail_next(503, method="POST", path=f"{PRODUCTION}/strategies")
    assert (await failure(unleash.create_flag(spec()))).non_retryable is False
    flag = await unleash.create_flag(spec())  # the activity's retry
    assert flag.created and [(v.key, v.weight) for v in flag.variants] == [("control", 50), ("treatment", 50)]
    assert len(unleash_server.features["checkout-form-short"]["environments"][1]["strategies"]) == 1


async def test_unleash_create_with_a_different_spec_is_a_permanent_conflict(unleash: FlagProvider) -> None:
    await unleash.create_flag(spec())
    err = await failure(unleash.create_flag(spec(variants=[{"key": "control", "weight": 34},
                                                           {"key": "a", "weight": 33}, {"key": "b", "weight": 33}])))
    assert err.type == ERR_FLAG_CONFLICT and err.non_retryable and "variants" in str(err)


async def test_unleash_set_enabled_switches_the_environment(unleash: FlagProvider, unleash_server: FakeUnleash) -> None:
    await unleash.create_flag(spec())
    assert (await unleash.set_enabled("checkout-form-short", True)).enabled
    assert ("POST", f"{PRODUCTION}/on") in [(r.method, r.path) for r in unleash_server.requests]
    assert not (await unleash.set_enabled("checkout-form-short", False)).enabled
    assert unleash_server.requests[-2].path == f"{PRODUCTION}/off"


async def test_unleash_rollback_switches_off_first_then_puts_all_traffic_on_control(
        unleash: FlagProvider, unleash_server: FakeUnleash) -> None:
    await unleash.create_flag(spec(variants=[{"key": "treatment", "weight": 20}, {"key": "control", "weight": 80}]))
    await unleash.set_enabled("checkout-form-short", True)
    writes_before = len(unleash_server.writes())
    flag = await unleash.rollback("checkout-form-short")
    off, put = unleash_server.writes()[writes_before:]
    assert (off.method, off.path) == ("POST", f"{PRODUCTION}/off")
    strategy_id = unleash_server.features["checkout-form-short"]["environments"][1]["strategies"][0]["id"]
    assert (put.method, put.path) == ("PUT", f"{PRODUCTION}/strategies/{strategy_id}")
    assert put.body["constraints"][0]["values"] == ["ios", "android"]
    assert [(v["name"], v["weight"], v["weightType"]) for v in put.body["variants"]] == [
        ("treatment", 0, "fix"), ("control", 1000, "variable")]
    assert not flag.enabled and [(v.key, v.weight) for v in flag.variants] == [("treatment", 0), ("control", 100)]
    assert await unleash.get_flag("checkout-form-short") == flag


async def test_unleash_list_reads_every_flag_of_the_project(unleash: FlagProvider) -> None:
    await unleash.create_flag(spec("a"))
    await unleash.create_flag(spec("b", targeting={}))
    flags = await unleash.list_flags()
    assert [(f.key, f.targeting) for f in flags] == [("a", {"platform": ["ios", "android"]}), ("b", {})]


async def test_unleash_rejected_token_is_a_permanent_auth_error(unleash_server: FakeUnleash) -> None:
    async with UnleashFlagProvider({}, env=unleash_env(unleash_server, token="wrong")) as provider:
        err = await failure(provider.get_flag("checkout-form-short"))
    assert err.type == ERR_FLAG_AUTH and err.non_retryable and "UNLEASH_API_TOKEN" in str(err)


async def test_unleash_429_is_retried_after_the_servers_delay(unleash: FlagProvider, unleash_server: FakeUnleash) -> None:
    unleash_server.fail_next(429, headers={"Retry-After": "3"}, method="POST")
    err = await failure(unleash.create_flag(spec()))
    assert err.type == ERR_RATE_LIMITED and not err.non_retryable
    assert err.next_retry_delay == timedelta(seconds=3)


async def test_unleash_unknown_flag_is_not_found(unleash: FlagProvider) -> None:
    err = await failure(unleash.rollback("missing"))
    assert err.type == ERR_FLAG_NOT_FOUND and err.non_retryable and "growth" in str(err)


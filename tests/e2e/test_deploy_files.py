"""The deployment files, checked as data since no Docker engine runs here: docker-compose.yml has
every service, wired to each other, on pinned images, with health checks, and registers iterloop's
search attributes; the Dockerfile builds from a pinned base and runs as a non-root user."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from workflows.contract.state import SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {"postgresql", "temporal", "temporal-ui", "temporal-setup", "worker", "api"}
ITERLOOP_SERVICES = ("worker", "api")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def env(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping (compose allows a list of KEY=VALUE too)."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        return dict(item.split("=", 1) for item in raw)
    return {k: str(v) for k, v in raw.items()}


def depends(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("depends_on") or {}
    if isinstance(raw, list):
        return {name: "service_started" for name in raw}
    return {name: spec.get("condition", "service_started") for name, spec in raw.items()}


def project_version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_every_service_is_there(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == SERVICES


def test_images_are_pinned_to_explicit_versions(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = service.get("image", "")
        repository, _, tag = image.rpartition(":")
        assert repository and tag, f"{name}: image {image!r} has no tag"
        assert tag != "latest" and "$" not in image, f"{name}: image {image!r} is not pinned"
        assert re.match(r"^\d+\.\d+(\.\d+)?", tag), f"{name}: tag {tag!r} is not a version"
    for name in ITERLOOP_SERVICES:
        assert services[name]["build"] == "."
        assert services[name]["image"] == f"iterloop:{project_version()}"


def test_temporal_uses_the_postgres_service_with_its_credentials(services: dict[str, dict[str, Any]]) -> None:
    pg, temporal = env(services["postgresql"]), env(services["temporal"])
    assert services["temporal"]["image"].startswith("temporalio/auto-setup:")
    assert temporal["DB"] == "postgres12"  # advanced visibility on SQL: custom search attributes
    assert temporal["POSTGRES_SEEDS"] == "postgresql" and temporal["DB_PORT"] == "5432"
    assert temporal["POSTGRES_USER"] == pg["POSTGRES_USER"]
    assert temporal["POSTGRES_PWD"] == pg["POSTGRES_PASSWORD"]
    assert depends(services["temporal"]) == {"postgresql": "service_healthy"}


def test_web_ui_points_at_temporal(services: dict[str, dict[str, Any]]) -> None:
    ui = services["temporal-ui"]
    assert ui["image"].startswith("temporalio/ui:")
    assert env(ui)["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert depends(ui) == {"temporal": "service_healthy"}
    assert any(str(p).endswith(":8080") for p in ui["ports"])


def test_search_attributes_are_registered_with_their_types(services: dict[str, dict[str, Any]]) -> None:
    setup = services["temporal-setup"]
    assert setup["image"].startswith("temporalio/admin-tools:")
    assert env(setup)["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert depends(setup) == {"temporal": "service_healthy"}
    script = "\n".join(setup["command"]) if isinstance(setup["command"], list) else setup["command"]
    assert "temporal operator search-attribute create" in script
    registered = dict(re.findall(r"^\s*sa (\w+) (\w+)\s*$", script, flags=re.M))
    assert registered == SEARCH_ATTRIBUTES
    assert setup.get("restart") == "no"


def test_worker_and_api_reach_temporal_after_the_search_attributes(services: dict[str, dict[str, Any]]) -> None:
    for name in ITERLOOP_SERVICES:
        service = services[name]
        assert env(service)["TEMPORAL_ADDRESS"] == "temporal:7233", name
        assert env(service)["ITERLOOP_TASK_QUEUE"] == "iterloop", name
        assert depends(service) == {"temporal": "service_healthy",
                                    "temporal-setup": "service_completed_successfully"}, name
        assert "iterloop-data:/data" in service["volumes"], name  # one artifact store for all
    assert services["worker"]["command"] == ["worker"] and services["api"]["command"] == ["api"]


def test_worker_exports_metrics_and_keeps_secrets_out_of_the_file(services: dict[str, dict[str, Any]]) -> None:
    worker = env(services["worker"])
    assert worker["ITERLOOP_METRICS_PORT"] == "9464" and worker["ITERLOOP_METRICS_HOST"] == "0.0.0.0"
    assert worker["ITERLOOP_NOTIFY_STORE"].startswith("/data/")
    api = env(services["api"])
    assert api["ITERLOOP_API_HOST"] == "0.0.0.0"
    for name in ITERLOOP_SERVICES:
        for key, value in env(services[name]).items():
            if any(word in key for word in ("TOKEN", "SECRET", "API_KEY")):
                assert value.startswith("${"), f"{name}: {key} must come from the environment, not the file"


def test_every_long_running_service_has_a_health_check(services: dict[str, dict[str, Any]]) -> None:
    for name in SERVICES - {"temporal-setup"}:
        test = services[name].get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), name
    assert "pg_isready" in " ".join(services["postgresql"]["healthcheck"]["test"])
    assert "cluster health" in " ".join(services["temporal"]["healthcheck"]["test"])
    assert "/api/health" in " ".join(services["api"]["healthcheck"]["test"])
    assert ":9464/metrics" in " ".join(services["worker"]["healthcheck"]["test"])


def test_volumes_are_declared(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    used = {v.split(":", 1)[0] for s in services.values() for v in s.get("volumes", [])}
    assert used <= set(compose["volumes"])


# -- Dockerfile ----------------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) pairs, continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
            for line in (raw.strip() for raw in text.splitlines()) if line and not line.startswith("#")]


def test_dockerfile_builds_from_a_pinned_python_311_slim_base() -> None:
    froms = [args for op, args in dockerfile() if op == "FROM"]
    assert froms and all(re.match(r"^python:3\.11\.\d+-slim(-\w+)?$", f) for f in froms), froms


def test_dockerfile_runs_iterloop_as_a_non_root_user() -> None:
    steps = dockerfile()
    users = [args for op, args in steps if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert any(op == "RUN" and "useradd" in args and users[-1].split(":")[0] in args for op, args in steps)
    assert ("ENTRYPOINT", '["iterloop"]') in steps and ("CMD", '["worker"]') in steps
    assert any(op == "RUN" and "pip install ." in args for op, args in steps)


def test_docker_context_leaves_out_local_state_and_tests() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".git", ".venv", ".iterloop", "tests"} <= ignored
    copied = " ".join(args for op, args in dockerfile() if op == "COPY")
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    for top in {p.split(".")[0] for p in packages}:
        assert top in copied, f"the image misses package {top}"

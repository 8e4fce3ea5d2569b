"""The REST API against the real dev server, with an offline in-test worker (real gates, outputs, usage)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from api_harness import READ_TOKEN, ApiHarness, LiveServer, api, api_settings_for, live_server  # noqa: F401
from runs import free_port, poll

from api.app import create_app
from api.auth import SESSION_COOKIE, session_cookie_value
from api.settings import ApiToken

pytestmark = pytest.mark.asyncio


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    """The `{"error": {"code", "message"}}` body of an error response with ``status``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
    return dict(body["error"])


async def waiting_at_gate(api: ApiHarness, **body: Any) -> tuple[str, dict[str, Any]]:
    run_id = await api.start("gated", **body)
    doc = await api.wait_status(run_id, "waiting_human")
    return run_id, doc


# -- service -------------------------------------------------------------------------------------


async def test_health_says_temporal_is_reachable_without_a_token(api: ApiHarness) -> None:
    async with api.client(token=None) as anonymous:
        response = await anonymous.get("/api/health")
    assert response.status_code == 200
    assert response.json()["temporal"] == "reachable"
    assert response.json()["task_queue"] == api.task_queue


async def test_unreachable_temporal_is_503_with_the_reason(api: ApiHarness) -> None:
    settings = api_settings_for(api.temporal, api.task_queue, api.tmp)
    down = settings.runtime.with_overrides(address=f"127.0.0.1:{free_port()}")
    app = create_app(api_settings_for(api.temporal, api.task_queue, api.tmp, runtime=down))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver",
                                 headers={"Authorization": f"Bearer {settings.tokens[0].secret}"}) as http:
        health = await http.get("/api/health")
        runs = await http.get("/api/runs")
    assert health.status_code == 503 and health.json()["temporal"] == "unreachable"
    error = error_of(runs, 503)
    assert error["code"] == "temporal_unavailable"
    assert down.address in error["message"]


async def test_openapi_schema_is_served_and_lists_every_endpoint(api: ApiHarness) -> None:
    async with api.client(token=None) as anonymous:
        schema = (await anonymous.get("/openapi.json")).json()
        docs = await anonymous.get("/docs")
    paths = schema["paths"]
    assert {"/api/runs", "/api/runs/{run_id}", "/api/runs/{run_id}/events", "/api/runs/{run_id}/events/stream",
            "/api/runs/{run_id}/report", "/api/runs/{run_id}/gates/{gate}/answer", "/api/runs/{run_id}/retry",
            "/api/runs/{run_id}/cancel", "/api/workflows", "/api/health"} <= set(paths)
    assert "StartRun" in schema["components"]["schemas"] and "ErrorResponse" in schema["components"]["schemas"]
    assert "401" in paths["/api/runs"]["post"]["responses"]
    assert docs.status_code == 404  # Swagger UI would load from a CDN; it is not served


async def test_unknown_endpoint_is_a_json_404(api: ApiHarness) -> None:
    error = error_of(await api.http.get("/api/nothing-here"), 404)
    assert error["code"] == "not_found"


# -- auth ----------------------------------------------------------------------------------------


async def test_missing_token_is_401_with_a_bearer_challenge(api: ApiHarness) -> None:
    async with api.client(token=None) as anonymous:
        response = await anonymous.get("/api/runs")
    assert error_of(response, 401)["code"] == "missing_token"
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_wrong_token_is_401(api: ApiHarness) -> None:
    async with api.client(token="not-the-token-0123456789") as wrong:
        assert error_of(await wrong.get("/api/runs"), 401)["code"] == "invalid_token"
        assert error_of(await wrong.post("/api/runs", json={"workflow": "gated"}), 401)["code"] == "invalid_token"


async def test_authorization_header_without_bearer_scheme_is_401(api: ApiHarness) -> None:
    async with api.client(token=None, headers={"Authorization": "Basic YWRhOnB3"}) as basic:
        assert error_of(await basic.get("/api/runs"), 401)["code"] == "bad_authorization"


async def test_read_only_token_reads_but_may_not_start_runs(api: ApiHarness) -> None:
    async with api.client(token=READ_TOKEN) as viewer:
        assert (await viewer.get("/api/runs")).status_code == 200
        response = await viewer.post("/api/runs", json={"workflow": "gated", "vars": {"topic": "x"}})
    error = error_of(response, 403)
    assert error["code"] == "read_only_token" and "viewer" in error["message"]


async def test_dashboard_session_cookie_reads_the_api_but_cannot_change_runs(api: ApiHarness) -> None:
    cookie = session_cookie_value(api.settings, api.settings.tokens[0])
    async with api.client(token=None, cookies={SESSION_COOKIE: cookie}) as browser:
        assert (await browser.get("/api/runs")).status_code == 200
        response = await browser.post("/api/runs", json={"workflow": "gated", "vars": {"topic": "x"}})
    assert error_of(response, 403)["code"] == "bearer_required"


async def test_forged_session_cookie_is_401(api: ApiHarness) -> None:
    stranger = ApiToken("mallory", "some-other-secret-0123456789")
    forged = session_cookie_value(api.settings, stranger)
    async with api.client(token=None, cookies={SESSION_COOKIE: forged}) as browser:
        assert error_of(await browser.get("/api/runs"), 401)["code"] == "missing_token"


# -- workflows and starting runs -----------------------------------------------------------------


async def test_registered_workflows_are_listed_with_vars_and_gates(api: ApiHarness) -> None:
    doc = (await api.http.get("/api/workflows")).json()
    by_name = {w["name"]: w for w in doc["workflows"]}
    assert set(by_name) == {"gated", "all_types", "guarded"}
    gated = by_name["gated"]
    assert gated["ok"] and gated["gates"] == ["approval"]
    assert {v["name"]: (v["type"], v["required"]) for v in gated["vars"]} == {"topic": ("string", True),
                                                                             "days": ("int", False)}


async def test_start_a_registered_workflow_returns_201_with_links(api: ApiHarness) -> None:
    response = await api.http.post("/api/runs", json={"workflow": "gated", "vars": {"topic": "checkout", "days": 28},
                                                      "run_id": "api-start-1"})
    assert response.status_code == 201, response.text
    body = response.json()
    api.started.append("api-start-1")
    assert body["run_id"] == "api-start-1" and body["workflow"] == "gated" and body["status"] == "running"
    assert body["links"]["self"] == "/api/runs/api-start-1"
    assert body["ui_url"] == "http://temporal-ui.test:8233/namespaces/default/workflows/api-start-1"
    assert body["warnings"] == []  # the worker polls the task queue
    doc = await api.wait_status("api-start-1", "waiting_human")
    assert doc["vars"]["topic"] == "checkout" and doc["vars"]["days"] == 28


async def test_vars_given_as_text_are_read_like_the_cli_reads_them(api: ApiHarness) -> None:
    run_id = await api.start("gated", vars={"topic": "search", "days": "7"})
    doc = await api.wait_status(run_id, "waiting_human")
    assert doc["vars"]["days"] == 7


async def test_start_from_a_file_in_the_workflows_dir_by_absolute_or_relative_path(api: ApiHarness) -> None:
    path = api.settings.workflows_dir / "gated.iter"  # type: ignore[operator]
    absolute = await api.http.post("/api/runs", json={"file": str(path), "vars": {"topic": "a"}})
    relative = await api.http.post("/api/runs", json={"file": "gated.iter", "vars": {"topic": "b"}})
    assert absolute.status_code == 201 and relative.status_code == 201, (absolute.text, relative.text)
    api.started += [absolute.json()["run_id"], relative.json()["run_id"]]
    assert absolute.json()["source"] == relative.json()["source"] == str(path.resolve())
    await api.wait_status(relative.json()["run_id"], "waiting_human")


async def test_a_file_outside_the_workflows_dir_is_403_and_never_read(api: ApiHarness) -> None:
    workflows = api.settings.workflows_dir
    assert workflows is not None
    outside = api.tmp / "elsewhere.iter"
    outside.write_text((workflows / "gated.iter").read_text())
    (workflows / "link.iter").symlink_to(outside)  # a symlink inside that leads out
    attempts = [str(outside), str(api.tmp / "missing.iter"), "../elsewhere.iter", "../missing.iter",
                str(workflows / "link.iter"), "link.iter"]
    for file in attempts:
        error = error_of(await api.http.post("/api/runs", json={"file": file, "vars": {"topic": "x"}}), 403)
        assert error["code"] == "path_not_allowed" and "outside the directories" in error["message"], (file, error)
        assert str(workflows) in error["message"] and "no file" not in error["message"], (file, error)


async def test_file_dirs_setting_replaces_the_workflows_dir_for_file(api: ApiHarness) -> None:
    shared = api.tmp / "shared"
    shared.mkdir()
    (shared / "mine.iter").write_text((api.settings.workflows_dir / "gated.iter").read_text())  # type: ignore[operator]
    async with api.configured(file_dirs=(shared,)) as http:
        allowed = await http.post("/api/runs", json={"file": "mine.iter", "vars": {"topic": "x"}})
        refused = await http.post("/api/runs", json={"file": str(api.settings.workflows_dir / "gated.iter"),  # type: ignore[operator]
                                                     "vars": {"topic": "x"}})
    assert allowed.status_code == 201, allowed.text
    api.started.append(allowed.json()["run_id"])
    assert error_of(refused, 403)["code"] == "path_not_allowed"


async def test_source_text_is_refused_unless_the_api_allows_it(api: ApiHarness) -> None:
    text = (api.settings.workflows_dir / "gated.iter").read_text()  # type: ignore[operator]
    refused = error_of(await api.http.post("/api/runs", json={"source": text, "vars": {"topic": "x"}}), 403)
    assert refused["code"] == "source_not_allowed" and "ITERLOOP_API_ALLOW_SOURCE=1" in refused["message"]
    async with api.configured(allow_source=True) as http:
        started = await http.post("/api/runs", json={"source": text, "vars": {"topic": "b"}})
    assert started.status_code == 201, started.text
    api.started.append(started.json()["run_id"])
    assert started.json()["source"] == "<api>"
    await api.wait_status(started.json()["run_id"], "waiting_human")


async def test_var_defaults_never_read_the_apis_secrets(api: ApiHarness) -> None:
    from api.settings import ApiSettings

    workflows = api.settings.workflows_dir
    assert workflows is not None
    (workflows / "env_defaults.iter").write_text(
        'vars:\n  region: string = "${REGION}"\n  leak: string = "${SLACK_SIGNING_SECRET}"\n'
        '  token: string = "${ITERLOOP_API_TOKENS}"\n  db: string = "${DB_PASSWORD}"\n\n'
        'agent a:\n  model: "scripted"\n\nworkflow env_defaults:\n  entry: a\n  a -> done\n')
    from_env = ApiSettings.from_env({"REGION": "eu-west-1", "SLACK_SIGNING_SECRET": "sign-0123456789",
                                     "ITERLOOP_API_TOKENS": "ada:token-0123456789abcdef", "DB_PASSWORD": "hunter2"})
    async with api.configured(client_env=from_env.client_env) as http:
        response = await http.post("/api/runs", json={"workflow": "env_defaults", "offline": True})
    assert response.status_code == 201, response.text
    api.started.append(response.json()["run_id"])
    doc = await api.wait_status(response.json()["run_id"], "finished")
    assert (doc["vars"]["region"], doc["vars"]["leak"], doc["vars"]["token"], doc["vars"]["db"]) == (
        "eu-west-1", "", "", "")
    warnings = " ".join(response.json()["warnings"])
    assert "${SLACK_SIGNING_SECRET} is not resolved here" in warnings and "hunter2" not in response.text


@pytest.mark.parametrize(("variables", "expected"), [
    ({"topic": "x", "dayz": 3}, "declares no var 'dayz'"),
    ({"topic": "x", "days": "soon"}, "'soon' is not valid JSON; var 'days' is int"),
    ({"topic": "x", "days": 2.5}, "var 'days' is int, so give an integer"),
    ({"topic": 42}, "var 'topic' is string, so give a string"),
    ({}, "needs a value for var(s) topic"),
])
async def test_start_with_bad_vars_is_422_and_starts_nothing(api: ApiHarness, variables: dict[str, Any],
                                                             expected: str) -> None:
    response = await api.http.post("/api/runs", json={"workflow": "gated", "vars": variables,
                                                      "run_id": "never-started"})
    error = error_of(response, 422)
    assert error["code"] == "invalid_request" and expected in error["message"], error
    assert error_of(await api.http.get("/api/runs/never-started"), 404)["code"] == "run_not_found"


async def test_start_with_compile_errors_is_422_with_the_diagnostics(api: ApiHarness) -> None:
    source = 'agent a:\n  model: "scripted"\n  output: nope\n\nworkflow w:\n  entry: a\n  a -> done\n'
    async with api.configured(allow_source=True) as http:
        error = error_of(await http.post("/api/runs", json={"source": source}), 422)
    assert error["code"] == "compile_errors" and "C002" in error["message"]
    assert [(d["code"], d["line"]) for d in error["details"]] == [("C002", 3)]


async def test_start_needs_exactly_one_workflow_source(api: ApiHarness) -> None:
    both = error_of(await api.http.post("/api/runs", json={"workflow": "gated", "source": "x"}), 422)
    assert "exactly one of" in both["message"]
    unknown_field = error_of(await api.http.post("/api/runs", json={"workflow": "gated", "vars": {"topic": "x"},
                                                                    "colour": "red"}), 422)
    assert "colour" in unknown_field["message"]


async def test_start_an_unknown_registered_workflow_or_missing_file_is_422(api: ApiHarness) -> None:
    unknown = error_of(await api.http.post("/api/runs", json={"workflow": "nope"}), 422)
    assert unknown["code"] == "workflow_not_found" and "gated" in unknown["message"]
    missing = error_of(await api.http.post("/api/runs", json={"file": "missing.iter"}), 422)
    assert missing["code"] == "file_not_found"


async def test_start_with_a_taken_run_id_is_409(api: ApiHarness) -> None:
    run_id = await api.start("gated", run_id="api-taken")
    again = await api.http.post("/api/runs", json={"workflow": "gated", "vars": {"topic": "x"}, "run_id": run_id})
    assert error_of(again, 409)["code"] == "run_exists"


# -- reading runs --------------------------------------------------------------------------------


async def test_run_state_shows_the_open_gate_with_its_fields(api: ApiHarness) -> None:
    run_id, doc = await waiting_at_gate(api)
    assert doc["workflow"] == "gated" and doc["current_nodes"] == ["approval"]
    [gate] = doc["open_gates"]
    assert gate["gate"] == "approval" and "Approve the plan for checkout?" in gate["instructions"]
    assert [(f["name"], f["type"], f["enum_values"]) for f in gate["fields"]] == [
        ("approved", "bool", None), ("level", "string", ["low", "high"]), ("comment", "string", None)]
    assert doc["nodes"]["planner"]["status"] == "succeeded" and doc["nodes"]["planner"]["kind"] == "agent"
    assert doc["usage"]["provider"] == "scripted"
    assert {row["dimension"] for row in doc["budget"]} >= {"tokens", "cost_usd", "iterations", "duration_s"}
    assert doc["ui_url"].endswith(f"/workflows/{run_id}")


async def test_list_filters_by_status_workflow_and_open_gate(api: ApiHarness) -> None:
    run_id, _ = await waiting_at_gate(api)

    async def listed(**params: str) -> list[str]:
        response = await api.http.get("/api/runs", params={**params, "limit": "200"})
        assert response.status_code == 200, response.text
        return [r["run_id"] for r in response.json()["runs"]]

    async def in_all_filters() -> bool:
        return all([run_id in await listed(status="waiting_human"), run_id in await listed(workflow="gated"),
                    run_id in await listed(gate="approval")])

    await poll(in_all_filters, "the run in the visibility store")
    assert run_id not in await listed(status="finished")
    assert run_id not in await listed(workflow="guarded")
    assert run_id not in await listed(gate="review")
    row = next(r for r in (await api.http.get("/api/runs", params={"gate": "approval"})).json()["runs"]
               if r["run_id"] == run_id)
    assert row["open_gates"] == ["approval"] and row["status"] == "waiting_human"
    assert error_of(await api.http.get("/api/runs", params={"status": "sleeping"}), 422)["code"] == "invalid_request"


async def test_unknown_run_is_404_everywhere(api: ApiHarness) -> None:
    for method, path, body in [("GET", "/api/runs/no-such-run", None), ("GET", "/api/runs/no-such-run/events", None),
                               ("GET", "/api/runs/no-such-run/report", None),
                               ("GET", "/api/runs/no-such-run/events/stream", None),
                               ("POST", "/api/runs/no-such-run/gates/approval/answer", {"answers": {}}),
                               ("POST", "/api/runs/no-such-run/retry", None),
                               ("POST", "/api/runs/no-such-run/cancel", None)]:
        response = await api.http.request(method, path, json=body if method == "GET" or body else {})
        error = error_of(response, 404)
        assert error["code"] == "run_not_found" and "no-such-run" in error["message"], (path, error)


# -- answering gates -----------------------------------------------------------------------------


@pytest.mark.parametrize(("gate", "answers", "expected"), [
    ("approval", {"approved": True, "level": "low", "comment": "ok", "colour": "red"}, "has no field 'colour'"),
    ("approval", {"approved": "maybe", "level": "low", "comment": "ok"}, "field 'approved' expects bool"),
    ("approval", {"approved": True, "level": "medium", "comment": "ok"}, "field 'level' expects string, one of"),
    ("approval", {"approved": True, "level": "low"}, "needs field 'comment'"),
    ("planner", {"text": "x"}, "'planner' is not a human gate"),
])
async def test_invalid_answer_is_422_with_the_reason_and_records_nothing(
        api: ApiHarness, gate: str, answers: dict[str, Any], expected: str) -> None:
    run_id, _ = await waiting_at_gate(api)
    response = await api.http.post(f"/api/runs/{run_id}/gates/{gate}/answer", json={"answers": answers})
    error = error_of(response, 422)
    assert error["code"] == "answer_rejected" and expected in error["message"], error
    doc = await api.state(run_id)
    assert doc["answers"] == [] and doc["status"] == "waiting_human"
    assert [g["gate"] for g in doc["open_gates"]] == ["approval"]


async def test_answer_is_recorded_with_who_and_the_run_finishes(api: ApiHarness) -> None:
    run_id, doc = await waiting_at_gate(api)
    interaction = doc["open_gates"][0]["interaction_id"]
    response = await api.http.post(f"/api/runs/{run_id}/gates/approval/answer", json={
        "answers": {"approved": "yes", "level": "high", "comment": "ship it"}, "interaction_id": interaction})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["answers"] == {"approved": True, "level": "high", "comment": "ship it"}
    assert body["answered_by"] == "ada" and body["gate_open"] and body["interaction_id"] == interaction
    done = await api.wait_status(run_id, "finished")
    assert done["answers"][0]["answered_by"] == "ada"
    assert done["nodes"]["approval"]["status"] == "succeeded"


async def test_answered_by_is_the_token_name_and_says_for_whom(api: ApiHarness) -> None:
    run_id, _ = await waiting_at_gate(api)
    response = await api.http.post(f"/api/runs/{run_id}/gates/approval/answer", json={
        "answers": {"approved": False, "level": "low", "comment": "no"}, "answered_by": "grace"})
    assert response.json()["answered_by"] == "ada (for grace)"
    assert (await api.wait_status(run_id, "failed"))["answers"][0]["answered_by"] == "ada (for grace)"


async def test_answered_by_naming_the_token_itself_is_just_the_name(api: ApiHarness) -> None:
    run_id, _ = await waiting_at_gate(api)
    response = await api.http.post(f"/api/runs/{run_id}/gates/approval/answer", json={
        "answers": {"approved": True, "level": "low", "comment": "ok"}, "answered_by": " ada "})
    assert response.json()["answered_by"] == "ada"


async def test_a_stale_interaction_id_is_rejected(api: ApiHarness) -> None:
    run_id, _ = await waiting_at_gate(api)
    response = await api.http.post(f"/api/runs/{run_id}/gates/approval/answer", json={
        "answers": {"approved": True, "level": "low", "comment": ""}, "interaction_id": f"{run_id}:approval:9"})
    error = error_of(response, 409)
    assert error["code"] == "gate_opening_closed" and "inspect the run and answer the current question" in error["message"]


# -- requests another web page could make ----------------------------------------------------------


async def test_a_post_that_does_not_say_json_changes_nothing(api: ApiHarness) -> None:
    """What a cross-site form or a plain `fetch` can send: no body, a form, text. All are 415."""
    run_id, _ = await waiting_at_gate(api)
    for headers, content in [({}, b""), ({"Content-Type": "application/x-www-form-urlencoded"}, b"x=1"),
                             ({"Content-Type": "text/plain"}, b"{}"), ({"Content-Type": "multipart/form-data"}, b"")]:
        for path in (f"/api/runs/{run_id}/cancel", f"/api/runs/{run_id}/retry"):
            error = error_of(await api.http.post(path, content=content, headers=headers), 415)
            assert error["code"] == "json_required" and "Content-Type: application/json" in error["message"]
    assert (await api.state(run_id))["status"] == "waiting_human"
    async with api.client(headers={"X-Requested-With": "iterloop-test"}) as marked:
        assert (await marked.post(f"/api/runs/{run_id}/cancel")).status_code == 200


async def test_without_auth_the_host_header_must_name_this_machine(api: ApiHarness) -> None:
    run_id, _ = await waiting_at_gate(api)
    app = create_app(api_settings_for(api.temporal, api.task_queue, api.tmp, auth_disabled=True, tokens=()))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8080") as local:
        rebound = await local.post(f"/api/runs/{run_id}/cancel", json={}, headers={"Host": "attacker.example:8080"})
        assert rebound.status_code == 400
        assert (await api.state(run_id))["status"] == "waiting_human"
        for host in ("localhost:8080", "127.0.0.1", "[::1]:8080"):
            response = await local.get(f"/api/runs/{run_id}", headers={"Host": host})
            assert response.status_code == 200, (host, response.text)
        not_json = await local.post(f"/api/runs/{run_id}/cancel")
        assert error_of(not_json, 415)["code"] == "json_required"
        cancelled = await local.post(f"/api/runs/{run_id}/cancel", json={})
    assert cancelled.status_code == 200 and (await api.state(run_id))["status"] == "cancelled"


# -- events and report ---------------------------------------------------------------------------


async def test_events_and_report_of_a_finished_run(api: ApiHarness) -> None:
    run_id, _ = await waiting_at_gate(api)
    await api.http.post(f"/api/runs/{run_id}/gates/approval/answer",
                        json={"answers": {"approved": True, "level": "low", "comment": "fine"}})
    await api.wait_status(run_id, "finished")
    events = (await api.http.get(f"/api/runs/{run_id}/events")).json()
    types = [e["type"] for e in events["events"]]
    assert types[0] == "run_started" and "gate_answered" in types and types[-1] == "run_finished"
    assert events["last_seq"] == events["events"][-1]["seq"]
    later = (await api.http.get(f"/api/runs/{run_id}/events", params={"after_seq": events["last_seq"] - 1})).json()
    assert [e["seq"] for e in later["events"]] == [events["last_seq"]]
    report = await api.http.get(f"/api/runs/{run_id}/report")
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/markdown")
    assert run_id in report.text and "finished" in report.text and "ada" in report.text


# -- retry and cancel ----------------------------------------------------------------------------


async def test_retry_reruns_a_parked_node_once_fixed(api: ApiHarness) -> None:
    marker = api.tmp / "marker"
    run_id = await api.start("guarded", vars={"marker": str(marker)})
    parked = await api.wait_status(run_id, "failed_resumable")
    assert parked["failures"][0]["node"] == "check" and "marker missing" in parked["failures"][0]["error"]
    not_parked = error_of(await api.http.post(f"/api/runs/{run_id}/retry", json={"node": "done"}), 409)
    assert not_parked["code"] == "node_not_parked" and "parked nodes: check" in not_parked["message"]
    marker.write_text("fixed")
    response = await api.http.post(f"/api/runs/{run_id}/retry", json={"node": "check"})
    assert response.status_code == 200 and response.json() == {"run_id": run_id, "retried": ["check"]}
    await api.wait_status(run_id, "finished")
    ended = error_of(await api.http.post(f"/api/runs/{run_id}/retry", json={}), 409)
    assert ended["code"] == "run_ended"


async def test_retry_without_a_parked_node_is_409(api: ApiHarness) -> None:
    run_id, _ = await waiting_at_gate(api)
    error = error_of(await api.http.post(f"/api/runs/{run_id}/retry", json={}), 409)
    assert error["code"] == "nothing_to_retry" and "waiting_human" in error["message"]


async def test_cancel_ends_the_run_and_a_second_cancel_or_answer_is_409(api: ApiHarness) -> None:
    run_id, _ = await waiting_at_gate(api)
    response = await api.http.post(f"/api/runs/{run_id}/cancel", json={})
    assert response.status_code == 200, response.text
    assert response.json()["ended"] is True and response.json()["execution_status"] == "canceled"
    assert (await api.state(run_id))["status"] == "cancelled"
    assert error_of(await api.http.post(f"/api/runs/{run_id}/cancel", headers={"X-Requested-With": "curl"}),
                    409)["code"] == "run_ended"
    answer = await api.http.post(f"/api/runs/{run_id}/gates/approval/answer",
                                 json={"answers": {"approved": True, "level": "low", "comment": ""}})
    assert error_of(answer, 409)["code"] == "run_ended"


# -- request limits ------------------------------------------------------------------------------


async def test_a_body_over_the_limit_is_413(api: ApiHarness) -> None:
    big = json.dumps({"source": "x" * (api.settings.max_body_bytes + 10)})
    response = await api.http.post("/api/runs", content=big, headers={"content-type": "application/json"})
    assert error_of(response, 413)["code"] == "payload_too_large"


async def test_a_chunked_body_over_the_limit_is_413(api: ApiHarness) -> None:
    async def chunks():  # no Content-Length: the body is counted as it arrives
        for _ in range(20):
            yield b" " * (api.settings.max_body_bytes // 10)

    response = await api.http.post("/api/runs", content=chunks(), headers={"content-type": "application/json"})
    assert error_of(response, 413)["code"] == "payload_too_large"


# -- server-sent events --------------------------------------------------------------------------


async def read_sse(response: httpx.Response) -> list[tuple[str, dict[str, Any], str | None]]:
    """(event name, data, id) of each message until the server closes the stream."""
    messages: list[tuple[str, dict[str, Any], str | None]] = []
    name, data, event_id = "message", "", None
    async for line in response.aiter_lines():
        if line == "":
            if data:
                messages.append((name, json.loads(data), event_id))
            name, data, event_id = "message", "", None
        elif line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data += line[6:]
        elif line.startswith("id: "):
            event_id = line[4:]
    return messages


async def test_event_stream_sees_the_run_finish(api: ApiHarness, live_server: LiveServer) -> None:
    run_id, _ = await waiting_at_gate(api)
    headers = {"Authorization": f"Bearer {api.settings.tokens[0].secret}"}
    async with httpx.AsyncClient(base_url=live_server.url, headers=headers, timeout=60) as http:
        async with http.stream("GET", f"/api/runs/{run_id}/events/stream") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            answered = await http.post(f"/api/runs/{run_id}/gates/approval/answer",
                                       json={"answers": {"approved": True, "level": "low", "comment": "go"}})
            assert answered.status_code == 200, answered.text
            messages = await read_sse(response)
    events = [data for name, data, _ in messages if name == "message"]
    types = [e["type"] for e in events]
    assert types[0] == "run_started" and "human_input_requested" in types and "gate_answered" in types
    assert types[-1] == "run_finished"
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(set(seqs))
    assert [int(i) for name, _, i in messages if name == "message"] == seqs  # id: is the event's seq
    assert messages[-1][0] == "end" and messages[-1][1]["status"] == "finished"


async def test_event_stream_resumes_after_last_event_id(api: ApiHarness, live_server: LiveServer) -> None:
    run_id, _ = await waiting_at_gate(api)
    await api.http.post(f"/api/runs/{run_id}/gates/approval/answer",
                        json={"answers": {"approved": False, "level": "low", "comment": "no"}})
    await api.wait_status(run_id, "failed")
    headers = {"Authorization": f"Bearer {api.settings.tokens[0].secret}", "Last-Event-ID": "2"}
    async with httpx.AsyncClient(base_url=live_server.url, headers=headers, timeout=60) as http:
        async with http.stream("GET", f"/api/runs/{run_id}/events/stream") as response:
            messages = await read_sse(response)
    seqs = [data["seq"] for name, data, _ in messages if name == "message"]
    assert seqs and seqs[0] == 3
    assert messages[-1][0] == "end" and messages[-1][1]["status"] == "failed"


async def test_event_stream_needs_a_token(api: ApiHarness, live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        response = await http.get("/api/runs/anything/events/stream")
    assert error_of(response, 401)["code"] == "missing_token"

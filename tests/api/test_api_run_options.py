"""Starting runs through the API with the options `iterloop run` has: a preset (`config`),
`skip_gates`, `stop_after`, and where the run reports (`notify`, over the deployment's defaults)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import httpx
from api_harness import ApiHarness, api  # noqa: F401
from fakes.webhook import WebhookReceiver
from runs import poll

from api.app import create_app


async def test_skip_gates_and_a_webhook_from_the_request(api: ApiHarness) -> None:  # noqa: F811
    with WebhookReceiver() as hooks:
        run_id = await api.start(skip_gates=True, notify={"webhooks": [hooks.url()]})
        doc = await api.wait_status(run_id, "finished")
        assert doc["answers"][0]["answered_by"] == "auto (preset)" and doc["answers"][0]["answers"]["approved"] is True
        await poll(lambda: hooks.deliveries, "the run_finished webhook", timeout=30)
    payload = hooks.deliveries[0].payload
    assert payload["event"] == "run_finished" and payload["run_id"] == run_id and payload["status"] == "finished"


async def test_stop_after_ends_the_run_after_that_node(api: ApiHarness) -> None:  # noqa: F811
    run_id = await api.start(stop_after=["planner"])
    doc = await api.wait_status(run_id, "finished")
    assert "stopped after 'planner'" in doc["reason"] and not doc["answers"]


async def test_a_preset_file_is_applied_and_its_errors_are_422(api: ApiHarness) -> None:  # noqa: F811
    preset = api.settings.workflows_dir / "gated.yaml"  # type: ignore[operator]
    preset.write_text("workflow: gated\nvars:\n  days: 3\ngates:\n  approval:\n    mode: auto\n"
                      "    answer: {approved: true, level: high, comment: preset says yes}\n")
    run_id = await api.start(config="gated.yaml")
    doc = await api.wait_status(run_id, "finished")
    assert doc["vars"]["days"] == 3 and doc["answers"][0]["answers"]["comment"] == "preset says yes"
    preset.write_text("workflow: gated\nvarz: {}\n")
    response = await api.http.post("/api/runs", json={"workflow": "gated", "vars": {"topic": "x"},
                                                      "config": str(preset)})
    assert response.status_code == 422 and "varz" in response.json()["error"]["message"]


async def test_a_preset_outside_the_presets_dir_is_403_and_never_read(api: ApiHarness,  # noqa: F811
                                                                       tmp_path: Path) -> None:
    secret = tmp_path / "secrets.yaml"  # a YAML file elsewhere on the host: its keys must not show in errors
    secret.write_text("database_password: hunter2\n")
    workflows = api.settings.workflows_dir
    assert workflows is not None
    (workflows / "linked.yaml").symlink_to(secret)
    for config in (str(secret), str(tmp_path / "missing.yaml"), "../secrets.yaml", "linked.yaml"):
        response = await api.http.post("/api/runs", json={"workflow": "gated", "vars": {"topic": "x"},
                                                          "config": config})
        assert response.status_code == 403, (config, response.text)
        error = response.json()["error"]
        assert error["code"] == "path_not_allowed" and "outside the directories" in error["message"]
        assert "hunter2" not in response.text and "database_password" not in response.text
        assert "does not exist" not in error["message"]


async def test_a_preset_may_not_extend_a_file_outside_the_presets_dir(api: ApiHarness,  # noqa: F811
                                                                      tmp_path: Path) -> None:
    secret = tmp_path / "secrets.yaml"
    secret.write_text("database_password: hunter2\n")
    workflows = api.settings.workflows_dir
    assert workflows is not None
    for base in (str(secret), "../secrets.yaml", str(tmp_path / "missing.yaml")):
        (workflows / "child.yaml").write_text(f"extends: {base}\nworkflow: gated\n")
        response = await api.http.post("/api/runs", json={"workflow": "gated", "vars": {"topic": "x"},
                                                          "config": "child.yaml"})
        assert response.status_code == 422, (base, response.text)
        assert "outside the presets directory" in response.json()["error"]["message"]
        assert "hunter2" not in response.text and "database_password" not in response.text
        assert "does not exist" not in response.text


async def test_presets_dir_setting_moves_where_presets_come_from(api: ApiHarness,  # noqa: F811
                                                                 tmp_path: Path) -> None:
    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / "base.yaml").write_text("workflow: gated\nvars:\n  days: 5\n")
    (presets / "child.yaml").write_text("extends: base.yaml\nworkflow: gated\n")
    async with api.configured(presets_dir=presets) as http:
        response = await http.post("/api/runs", json={"workflow": "gated", "vars": {"topic": "x"},
                                                      "config": "child.yaml", "stop_after": ["planner"]})
    assert response.status_code == 201, response.text
    api.started.append(response.json()["run_id"])
    doc = await api.wait_status(response.json()["run_id"], "finished")
    assert doc["vars"]["days"] == 5


async def test_deployment_defaults_notify_unless_the_request_turns_them_off(api: ApiHarness) -> None:  # noqa: F811
    with WebhookReceiver() as hooks:
        settings = dataclasses.replace(api.settings, runtime=dataclasses.replace(
            api.settings.runtime, notify_webhooks=(hooks.url("/default"),)))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings)),
                                     base_url="http://testserver", headers=dict(api.http.headers)) as http:
            started: list[str] = []
            for body in ({"skip_gates": True}, {"skip_gates": True, "notify": {"enabled": False}}):
                response = await http.post("/api/runs", json={"workflow": "gated", "vars": {"topic": "t"}, **body})
                assert response.status_code == 201, response.text
                started.append(response.json()["run_id"])
                api.started.append(started[-1])
            for run_id in started:
                await api.wait_status(run_id, "finished")
            await poll(lambda: hooks.deliveries, "the default webhook", timeout=30)
    delivered: list[Any] = [d.payload["run_id"] for d in hooks.deliveries]
    assert delivered == [started[0]] and hooks.deliveries[0].path == "/default"


async def test_a_malformed_script_is_refused_before_the_run_starts(api: ApiHarness) -> None:  # noqa: F811
    response = await api.http.post("/api/runs", json={"workflow": "gated", "vars": {"topic": "x"},
                                                      "script": {"planner": []}})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_script" and "planner" in error["message"]


async def test_workdir_is_where_the_runs_shell_commands_run(api: ApiHarness) -> None:  # noqa: F811
    workdir = api.tmp / "checkout"
    workdir.mkdir()
    (workdir / "marker").write_text("here")  # `test -f marker` finds it only in the workdir
    run_id = await api.start("guarded", vars={"marker": "marker"}, workdir=str(workdir))
    await api.wait_status(run_id, "finished")
    response = await api.http.post("/api/runs", json={"workflow": "guarded", "vars": {"marker": "m"},
                                                      "workdir": "relative/dir"})
    assert response.status_code == 422 and "absolute path" in response.text

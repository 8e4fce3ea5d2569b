"""The API's pure parts (settings, tokens and sessions, gate forms, var checks)
and the `iterloop api` command."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_harness import GATED
from runs import compile_ok, free_port, poll

from api.auth import session_cookie_value, session_principal
from api.gate_forms import answers_from_form, form_fields
from api.settings import ApiConfigError, ApiSettings, ApiToken, parse_tokens
from dsl.ir import Schema, SchemaField
from runtime.command_errors import UsageError
from runtime.run_inputs import check_var_values, missing_vars
from workflows.contract.state import Gate

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cret-token-0123456789"


# -- settings ------------------------------------------------------------------------------------


def test_tokens_are_comma_separated_with_optional_names() -> None:
    tokens = parse_tokens(f"ada:{SECRET}, {SECRET}x ,", can_write=True, variable="ITERLOOP_API_TOKENS")
    assert [(t.name, t.secret, t.can_write) for t in tokens] == [("ada", SECRET, True), ("api", SECRET + "x", True)]


def test_short_tokens_are_refused() -> None:
    with pytest.raises(ApiConfigError, match="at least 16 characters"):
        parse_tokens("ada:short", can_write=True, variable="ITERLOOP_API_TOKENS")


def test_settings_from_env() -> None:
    settings = ApiSettings.from_env({
        "ITERLOOP_API_TOKENS": f"ada:{SECRET}", "ITERLOOP_API_READ_TOKENS": f"{SECRET}-r",
        "ITERLOOP_WORKFLOWS_DIR": "/srv/flows", "ITERLOOP_API_MAX_BODY_BYTES": "4096",
        "TEMPORAL_ADDRESS": "temporal:7233", "SLACK_SIGNING_SECRET": "sign", "SLACK_BOT_TOKEN": "xoxb-1"})
    assert [(t.name, t.can_write) for t in settings.tokens] == [("ada", True), ("api", False)]
    assert settings.workflows_dir == Path("/srv/flows") and settings.max_body_bytes == 4096
    assert settings.runtime.address == "temporal:7233" and settings.runtime.address_configured
    assert (settings.slack_signing_secret, settings.runtime.slack_bot_token, settings.runtime.slack_api_url) == (
        "sign", "xoxb-1", "https://slack.com/api/")
    assert SECRET not in repr(settings) and "xoxb" not in repr(settings)
    assert not settings.allow_source and settings.file_roots == (Path("/srv/flows"),)
    assert settings.preset_root == Path("/srv/flows")


def test_the_web_ui_address_and_slack_come_from_the_runtime_settings_alone() -> None:
    from runtime.server_address import web_ui_link as ui_link

    settings = ApiSettings.from_env({"ITERLOOP_TEMPORAL_UI_URL": "https://temporal.example/",
                                     "ITERLOOP_SLACK_API_URL": "http://slack.test/api/"})
    assert ui_link(settings.runtime, "run 1") == "https://temporal.example/namespaces/default/workflows/run%201"
    assert settings.runtime.slack_api_url == "http://slack.test/api/"
    assert not {"temporal_ui_url", "slack_bot_token", "slack_api_url"} & set(vars(settings))


def test_file_presets_and_source_settings() -> None:
    settings = ApiSettings.from_env({"ITERLOOP_WORKFLOWS_DIR": "/srv/flows", "ITERLOOP_API_ALLOW_SOURCE": "1",
                                     "ITERLOOP_API_FILE_DIRS": f"/srv/a{os.pathsep}/srv/b",
                                     "ITERLOOP_API_PRESETS_DIR": "/srv/presets"})
    assert settings.allow_source
    assert settings.file_roots == (Path("/srv/a"), Path("/srv/b")) and settings.preset_root == Path("/srv/presets")
    assert ApiSettings().file_roots == () and ApiSettings().preset_root is None


def test_var_defaults_resolve_from_the_environment_without_the_apis_secrets() -> None:
    env = {"REGION": "eu", "HOME": "/root", "ITERLOOP_API_TOKENS": f"ada:{SECRET}",
           "ITERLOOP_API_SESSION_SECRET": "s", "SLACK_SIGNING_SECRET": "s", "SLACK_BOT_TOKEN": "xoxb-1",
           "ITERLOOP_SLACK_BOT_TOKEN": "xoxb-2", "ANTHROPIC_API_KEY": "k", "openai_api_key": "k",
           "GITHUB_TOKEN": "t", "ITERLOOP_WEBHOOK_SECRET": "w", "PGPASSWORD": "p", "DB_PASSWORD_FILE": "/x",
           "AWS_SECRET_ACCESS_KEY": "a", "TEMPORAL_ADDRESS": "temporal:7233"}
    assert ApiSettings.from_env(env).client_env == {"REGION": "eu", "HOME": "/root",
                                                    "TEMPORAL_ADDRESS": "temporal:7233"}


def test_loopback_hosts_are_this_machine_only() -> None:
    from runtime.server_address import is_local_address, is_loopback_host

    assert all(is_loopback_host(h) for h in ("localhost", "127.0.0.1", "127.1.2.3", "::1", "[::1]", "LOCALHOST"))
    assert not any(is_loopback_host(h) for h in ("0.0.0.0", "127.example.com", "10.0.0.1", "example.com", "::"))
    assert all(is_local_address(a) for a in ("localhost:7233", "127.0.0.1:7233", "[::1]:7233", "::1", "localhost"))
    assert not any(is_local_address(a) for a in ("temporal:7233", "127.example.com:7233", "[2001:db8::1]:7233"))


def test_the_recorded_answerer_is_the_token_name_with_whom_it_answers_for() -> None:
    from api.auth import recorded_answerer

    assert recorded_answerer("ada", None) == recorded_answerer("ada", " ") == recorded_answerer("ada", "ada") == "ada"
    assert recorded_answerer("ada", "grace") == "ada (for grace)"
    assert recorded_answerer("local", "bob") == "local (for bob)"


def test_no_auth_accepts_only_this_machines_host_names() -> None:
    from api.app import allowed_local_hosts

    assert allowed_local_hosts("127.0.0.1") == ["127.0.0.1", "[::1]", "localhost"]
    assert allowed_local_hosts("::1") == ["127.0.0.1", "[::1]", "localhost"]
    assert "127.0.0.2" in allowed_local_hosts("127.0.0.2")


def test_auth_can_be_disabled_only_on_loopback() -> None:
    ApiSettings(auth_disabled=True, host="127.0.0.1").check()
    with pytest.raises(ApiConfigError, match="only allowed on a loopback address"):
        ApiSettings(auth_disabled=True, host="0.0.0.0").check()
    with pytest.raises(ApiConfigError, match="no API tokens"):
        ApiSettings().check()


# -- sessions ------------------------------------------------------------------------------------


def test_session_cookie_stands_for_its_token_until_it_expires() -> None:
    token = ApiToken("ada", SECRET)
    settings = ApiSettings(tokens=(token,), session_hours=1)
    cookie = session_cookie_value(settings, token, now=1000.0)
    assert SECRET not in cookie
    assert session_principal(settings, cookie, now=1001.0) == session_principal(settings, cookie, now=4599.0)
    principal = session_principal(settings, cookie, now=1001.0)
    assert principal is not None and (principal.name, principal.can_write, principal.via) == ("ada", True, "session")
    assert session_principal(settings, cookie, now=4601.0) is None  # expired


def test_session_cookie_is_refused_when_forged_or_its_token_is_removed() -> None:
    token = ApiToken("ada", SECRET)
    settings = ApiSettings(tokens=(token,))
    cookie = session_cookie_value(settings, token)
    fingerprint, expires, signature = cookie.split(".")
    assert session_principal(settings, f"{fingerprint}.{int(expires) + 999}.{signature}") is None
    other_secret = ApiSettings(tokens=(token,), session_secret=b"another-secret")
    assert session_principal(other_secret, cookie) is None
    revoked = ApiSettings(tokens=(ApiToken("bob", SECRET + "-new"),), session_secret=settings.session_secret)
    assert session_principal(revoked, cookie) is None
    assert session_principal(settings, "garbage") is None


# -- gate forms ----------------------------------------------------------------------------------


def gate_with(*fields: SchemaField) -> Gate:
    return Gate(gate="g", interaction_id="r:g:1", schema=Schema(name="s", fields=list(fields)))


def test_each_field_type_gets_its_widget() -> None:
    gate = gate_with(SchemaField(name="ok", type="bool"), SchemaField(name="lvl", type="string", enum_values=["a", "b"]),
                     SchemaField(name="n", type="int"), SchemaField(name="x", type="float"),
                     SchemaField(name="tags", type="string[]"),
                     SchemaField(name="ch", type="string[]", enum_values=["email", "push"]),
                     SchemaField(name="cfg", type="json"), SchemaField(name="note", type="string"))
    widgets = {f.name: (f.widget, f.step, [v for v, _ in f.options]) for f in form_fields(gate)}
    assert widgets == {"ok": ("select", "", ["true", "false"]), "lvl": ("select", "", ["a", "b"]),
                       "n": ("number", "1", []), "x": ("number", "any", []), "tags": ("lines", "", []),
                       "ch": ("checkboxes", "", ["email", "push"]), "cfg": ("json", "", []), "note": ("text", "", [])}


def test_a_gate_without_a_schema_takes_free_text() -> None:
    gate = Gate(gate="g", interaction_id="r:g:1")
    [field] = form_fields(gate)
    assert (field.name, field.widget) == ("text", "text")
    assert answers_from_form(gate, {"field.text": ["looks good"]}) == ({"text": "looks good"}, [])


def test_form_values_become_the_answer() -> None:
    gate = gate_with(SchemaField(name="ok", type="bool"), SchemaField(name="n", type="int"),
                     SchemaField(name="tags", type="string[]"),
                     SchemaField(name="ch", type="string[]", enum_values=["email", "push"]),
                     SchemaField(name="cfg", type="json"), SchemaField(name="note", type="string"),
                     SchemaField(name="lvl", type="string", enum_values=["a", "b"]))
    answers, problems = answers_from_form(gate, {
        "field.ok": ["true"], "field.n": [" 4 "], "field.tags": ["a\n\n b \n"], "field.ch": ["push"],
        "field.cfg": ['{"k": 1}'], "field.note": [""], "field.lvl": [""]})
    assert problems == []
    # text goes to the gate as `iterloop answer` sends it; blanks are left out so the gate names them
    assert answers == {"ok": "true", "n": "4", "tags": ["a", "b"], "ch": ["push"], "cfg": {"k": 1}, "note": ""}


def test_invalid_json_is_a_form_problem() -> None:
    gate = gate_with(SchemaField(name="cfg", type="json"))
    answers, problems = answers_from_form(gate, {"field.cfg": ["{oops"]})
    assert answers == {} and "field 'cfg' must be a JSON value" in problems[0]


def test_a_rejected_form_keeps_what_was_typed() -> None:
    gate = gate_with(SchemaField(name="note", type="string"),
                     SchemaField(name="ch", type="string[]", enum_values=["email", "push"]))
    fields = {f.name: f for f in form_fields(gate, {"field.note": ["draft"], "field.ch": ["email"]})}
    assert fields["note"].value == "draft" and fields["ch"].selected == ["email"]


# -- vars from JSON --------------------------------------------------------------------------------


def test_var_values_from_json_are_checked_against_their_types() -> None:
    wf = compile_ok(textwrap.dedent("""\
        vars:
          days: int = 1
          alpha: float = 0.05
          metrics: string[] = []
          split: json = {}
          name: string = "x"

        agent a:
          model: "scripted"

        workflow w:
          entry: a
          a -> done
        """))
    assert check_var_values({"days": 3, "alpha": 1, "metrics": ["a"], "split": {"a": 1}, "name": "n"}, wf) == {
        "days": 3, "alpha": 1.0, "metrics": ["a"], "split": {"a": 1}, "name": "n"}
    assert check_var_values({"days": "7", "metrics": '["b"]', "name": "28"}, wf) == {
        "days": 7, "metrics": ["b"], "name": "28"}
    with pytest.raises(UsageError, match=r"vars.days: var 'days' is int, so give an integer, e.g. 28; got true"):
        check_var_values({"days": True}, wf)
    with pytest.raises(UsageError, match=r"vars.metrics: var 'metrics' is string\[\]"):
        check_var_values({"metrics": [1]}, wf)
    with pytest.raises(UsageError, match="declares no var 'nope'"):
        check_var_values({"nope": 1}, wf)
    assert missing_vars(compile_ok(GATED), {}) == ["topic"]


# -- the command -----------------------------------------------------------------------------------


def iterloop(*args: str, env: dict[str, str] | None = None, **kwargs: Any) -> Any:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ITERLOOP_API", "TEMPORAL_"))}
    return subprocess.run([sys.executable, "-c", "import cli; cli.main()", *args], cwd=ROOT,
                          env={**clean, **(env or {})}, capture_output=True, text=True, timeout=60, **kwargs)


def test_api_command_refuses_to_serve_without_tokens() -> None:
    result = iterloop("api")
    assert result.returncode == 2 and "no API tokens: set ITERLOOP_API_TOKENS" in result.stderr


def test_api_command_reports_an_unusable_runtime_setting_in_one_line() -> None:
    result = iterloop("api", "--no-auth", env={"ITERLOOP_NOTIFY_EVENTS": "run_ended"})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr == ("iterloop: ITERLOOP_NOTIFY_EVENTS names unknown event(s) run_ended; choose from "
                             "gate_opened, run_finished, run_failed\n")


def test_api_command_refuses_no_auth_on_a_public_address() -> None:
    result = iterloop("api", "--no-auth", "--host", "0.0.0.0")
    assert result.returncode == 2 and "only allowed on a loopback address" in result.stderr


@pytest.mark.asyncio
async def test_api_command_serves_the_api(temporal_env: Any, tmp_path: Path) -> None:
    port = free_port()
    address = temporal_env.client.service_client.config.target_host  # type: ignore[attr-defined]
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ITERLOOP_API", "TEMPORAL_"))}
    env = {**clean, "ITERLOOP_API_TOKENS": f"ada:{SECRET}", "TEMPORAL_ADDRESS": address,
           "ITERLOOP_HOME": str(tmp_path)}
    log = (tmp_path / "api.log").open("w")
    proc = subprocess.Popen([sys.executable, "-c", "import cli; cli.main()", "api", "--port", str(port)], cwd=ROOT,
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        async def health() -> httpx.Response | None:
            assert proc.poll() is None, (tmp_path / "api.log").read_text()
            try:
                async with httpx.AsyncClient(timeout=5) as http:
                    return await http.get(f"http://127.0.0.1:{port}/api/health")
            except httpx.TransportError:
                return None

        response = await poll(health, "iterloop api to answer", timeout=30, interval=0.2)
        assert response.status_code == 200 and response.json()["temporal"] == "reachable"
        async with httpx.AsyncClient(timeout=10) as http:
            unauthorised = await http.get(f"http://127.0.0.1:{port}/api/runs")
            listed = await http.get(f"http://127.0.0.1:{port}/api/runs", headers={"Authorization": f"Bearer {SECRET}"})
        assert unauthorised.status_code == 401 and listed.status_code == 200
    finally:
        proc.terminate()
        started = time.monotonic()
        while proc.poll() is None and time.monotonic() - started < 15:
            time.sleep(0.1)
        if proc.poll() is None:
            proc.kill()
        log.close()
    assert "API and dashboard on http://127.0.0.1:" in (tmp_path / "api.log").read_text()


# -- the event stream ------------------------------------------------------------------------------


class ScriptedRun:
    """A run handle whose `events` query returns one scripted batch per call; counts every call."""

    id = "run-1"

    def __init__(self, batches: list[list[str]], *, terminated_at_poll: int = 0) -> None:
        from collections import Counter

        self.batches = batches
        self.calls: Counter[str] = Counter()
        self.seq = 0
        self.ended = False
        self.terminated_at_poll = terminated_at_poll  # ended from outside: no run_* event

    async def describe(self, rpc_timeout: Any = None) -> Any:
        from types import SimpleNamespace

        from temporalio.client import WorkflowExecutionStatus

        self.calls["describe"] += 1
        return SimpleNamespace(status=WorkflowExecutionStatus.COMPLETED if self.ended else WorkflowExecutionStatus.RUNNING)

    async def query(self, name: str, *args: Any, result_type: Any = None, rpc_timeout: Any = None) -> Any:
        from workflows.contract.messages import Usage
        from workflows.contract.state import Event, RunView

        self.calls[name] += 1
        if name == "events":
            self.ended = self.ended or self.calls["events"] == self.terminated_at_poll
            batch = []
            for kind in self.batches.pop(0) if self.batches else []:
                self.seq += 1
                batch.append(Event(seq=self.seq, time="2026-01-01T00:00:00+00:00", type=kind))
                self.ended = self.ended or kind == "run_finished"
            return [e for e in batch if e.seq > args[0]]
        return RunView(workflow="w", source="w.iter", status="finished" if self.ended else "running",
                       current_nodes=[], nodes={}, outputs={}, artifacts={}, vars={}, loop_counters={},
                       budget_used={}, usage=Usage(), open_gates=[], failures=[], answers=[], last_seq=self.seq)


@pytest.mark.asyncio
async def test_the_event_stream_polls_events_and_asks_for_the_status_only_when_a_run_event_says_so() -> None:
    from api.event_stream import stream_events
    from runtime.run_service import FoundRun
    from runtime.settings import Settings

    run = ScriptedRun([["run_started", "node_started"], [], [], [], ["node_finished"], [], [], ["run_finished"]])
    found = FoundRun(client=None, settings=Settings(), handle=run, desc=None)  # type: ignore[arg-type]

    messages = [m async for m in stream_events(found, 0, poll_seconds=0.001, status_seconds=3600)]

    assert [m.split("\n")[0] for m in messages if m.startswith("id: ")] == ["id: 1", "id: 2", "id: 3", "id: 4"]
    assert messages[-1].startswith("event: end")
    assert '"status": "finished"' in messages[-1]
    # eight polls of the events query (and one last look), but describe + state only at the start and at run_finished
    assert (run.calls["events"], run.calls["describe"], run.calls["state"]) == (9, 2, 2)


@pytest.mark.asyncio
async def test_the_event_stream_still_notices_a_run_that_ends_without_an_event() -> None:
    from api.event_stream import stream_events
    from runtime.run_service import FoundRun
    from runtime.settings import Settings

    run = ScriptedRun([], terminated_at_poll=20)
    found = FoundRun(client=None, settings=Settings(), handle=run, desc=None)  # type: ignore[arg-type]

    messages = [m async for m in stream_events(found, 0, poll_seconds=0.001, status_seconds=0.05)]

    assert messages[-1].startswith("event: end") and '"status": "finished"' in messages[-1]
    assert run.calls["describe"] >= 2 and run.calls["events"] > run.calls["describe"]

"""Secrets are taken out of what leaves an activity (`activities.redaction`, the error tree, the
worker's interceptor and log filter)."""

from __future__ import annotations

import logging
import sys

import httpx
import pytest
from temporalio.exceptions import ApplicationError

from activities.connectors.http_api import get_json
from activities.errors import CommandFailedError, ConnectorConfigError, ConnectorUnavailableError
from activities.redacting_interceptor import _RedactingInbound, _RedactingOutbound, redacted_error
from activities.redaction import (
    MIN_SECRET_LENGTH,
    RedactingLogFilter,
    is_secret_name,
    redact,
    redact_data,
    secret_values,
)
from workflows.contract.messages import ShellResult

TOKEN = "tok-4f9c2a17e3b8"
ENV = {"X_API_TOKEN": TOKEN, "SHORT_KEY": "abc12", "HOME": "/home/ada", "ITERLOOP_SECRET_VARS": "DUCKDB_PATH, OTHER",
       "DUCKDB_PATH": "/data/q3-private/analytics.duckdb", "DB_PASSWORD": "p@ss w/rd!"}


# -- which variables are secret ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ANTHROPIC_API_KEY", "X_API_TOKEN", "ITERLOOP_API_TOKENS", "MIXPANEL_SECRET",
                                  "WAREHOUSE_PASSWORD", "aws_secret_key", "TOKEN", "PASSWORD", "PGPASSWORD",
                                  "MIXPANEL_SECRET_KEY"])
def test_names_ending_like_a_credential_are_secret(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["HOME", "PATH", "PWD", "ITERLOOP_TEST_MODEL", "TOKENIZER", "KEYBOARD",
                                  "ITERLOOP_SECRET_VARS"])
def test_other_names_are_not(name: str) -> None:
    assert not is_secret_name(name)


def test_secret_vars_setting_adds_names() -> None:
    names = {name for _, name in secret_values(ENV)}
    assert {"X_API_TOKEN", "DUCKDB_PATH", "DB_PASSWORD"} <= names and "HOME" not in names


# -- environment values --------------------------------------------------------------------------


def test_a_secret_value_becomes_a_marker_naming_its_variable() -> None:
    assert redact(f"curl failed with token {TOKEN}\n", ENV) == "curl failed with token [redacted:X_API_TOKEN]\n"
    assert redact("cannot open /data/q3-private/analytics.duckdb: IO Error", ENV) == \
        "cannot open [redacted:DUCKDB_PATH]: IO Error"


def test_percent_encoded_values_are_redacted_too() -> None:
    assert redact("postgresql://u@db/x?options=p%40ss%20w%2Frd%21", ENV).endswith("options=[redacted:DB_PASSWORD]")


def test_short_values_are_not_redacted_from_ordinary_text() -> None:
    assert len(ENV["SHORT_KEY"]) < MIN_SECRET_LENGTH
    assert redact("exit code abc12 (see abc12.log)", ENV) == "exit code abc12 (see abc12.log)"


def test_the_environment_is_read_at_each_call(monkeypatch: pytest.MonkeyPatch) -> None:
    assert redact("late-secret-value") == "late-secret-value"
    monkeypatch.setenv("LATE_TOKEN", "late-secret-value")
    assert redact("late-secret-value") == "[redacted:LATE_TOKEN]"


# -- secret-shaped text --------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("postgresql://analyst:hunter22@db:5432/analytics", "postgresql://analyst:[redacted]@db:5432/analytics"),
    ("https://user:p@ss@host/x", "https://user:[redacted]@host/x"),
    ("https://api.test/v1?password=hunter22&page=2", "https://api.test/v1?password=[redacted]&page=2"),
    ("https://api.test/?api_key=K1&access_token=T1&sig=S1",
     "https://api.test/?api_key=[redacted]&access_token=[redacted]&sig=[redacted]"),
    ("s3://b/o?X-Amz-Signature=abc&X-Amz-Credential=def",
     "s3://b/o?X-Amz-Signature=[redacted]&X-Amz-Credential=[redacted]"),
    ("md:analytics?motherduck_token=zzz", "md:analytics?motherduck_token=[redacted]"),
    ("host=db user=bi password=hunter22 dbname=x", "host=db user=bi password=[redacted] dbname=x"),
    ("export GITHUB_TOKEN=ghp_abc", "export GITHUB_TOKEN=[redacted]"),
    ('{"error": "bad", "client_secret": "cs-1"}', '{"error": "bad", "client_secret": "[redacted]"}'),
    ("Authorization: Bearer eyJhbGciOi", "Authorization: Bearer [redacted]"),
    ("git clone https://ghp_16C7e42F292c6912E7710c838347Ae178B4a@github.com/o/r.git",
     "git clone https://[redacted]@github.com/o/r.git"),
])
def test_url_credentials_and_secret_parameters_are_redacted(text: str, expected: str) -> None:
    assert redact(text, {}) == expected


@pytest.mark.parametrize("text", [
    "experiment_key=exp_1 flag_key=checkout max_tokens=1000 input_tokens=12 PWD=/work",
    "https://api.test/v1/funnels?funnel=checkout&from=2026-01-01",
    "postgresql://analyst@db/analytics",
    "ssh://git@github.com/o/r.git",
    "a = b, key: value",
])
def test_ordinary_parameters_and_urls_are_kept(text: str) -> None:
    assert redact(text, {}) == text


@pytest.mark.parametrize("text", [
    f"token {TOKEN} at postgresql://a:b1@h/x?password=pw&token=t",
    "already [redacted:X_API_TOKEN] and password=[redacted]",
])
def test_redaction_is_idempotent(text: str) -> None:
    once = redact(text, ENV)
    assert redact(once, ENV) == once


def test_a_value_inside_a_marker_is_not_redacted_again() -> None:
    env = {"ODD_TOKEN": "redacted:X_API"}
    assert redact("[redacted:X_API_TOKEN]", env) == "[redacted:X_API_TOKEN]"


# -- data, errors, logs --------------------------------------------------------------------------


def test_data_is_redacted_at_any_depth_and_clean_data_is_returned_as_is() -> None:
    clean = {"a": [1, "two", {"b": None}]}
    assert redact_data(clean, ENV) is clean
    assert redact_data({"out": [f"x {TOKEN}"], TOKEN: 1}, ENV) == {"out": ["x [redacted:X_API_TOKEN]"],
                                                                   "[redacted:X_API_TOKEN]": 1}


def test_a_pydantic_result_is_rebuilt_only_when_it_held_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_API_TOKEN", TOKEN)
    clean = ShellResult(exit_code=0, stdout="ok", stderr="", duration_ms=1, output={"result": "ok"})
    assert redact_data(clean) is clean
    leaked = ShellResult(exit_code=0, stdout=f"{TOKEN}\n", stderr=TOKEN, duration_ms=1, output={"result": TOKEN})
    safe = redact_data(leaked)
    assert isinstance(safe, ShellResult) and TOKEN not in safe.model_dump_json()


def test_the_error_tree_redacts_messages_and_details(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_API_TOKEN", TOKEN)
    err = CommandFailedError(f"shell node 'x': command exited with code 3; last lines of stderr:\nusing {TOKEN}",
                             details={"stderr_tail": f"using {TOKEN}\n", "exit_code": 3})
    assert TOKEN not in err.message and TOKEN not in str(err) and err.details[0]["exit_code"] == 3
    assert err.details[0]["stderr_tail"] == "using [redacted:X_API_TOKEN]\n"
    url = ConnectorConfigError("warehouse: cannot open postgresql://a:***@db/x?password=pw1234: boom")
    assert "pw1234" not in url.message


def test_a_foreign_exception_holding_a_secret_becomes_a_clean_failure_of_the_same_type(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_API_TOKEN", TOKEN)
    try:
        try:
            raise OSError(f"connect failed for {TOKEN}")
        except OSError:
            raise ValueError("wrapped") from None
    except ValueError as exc:
        assert redacted_error(exc) is exc  # nothing to hide, the context was suppressed
    try:
        try:
            raise OSError(f"connect failed for {TOKEN}")
        except OSError:
            raise ApplicationError(f"wrapping {TOKEN}", {"k": TOKEN}, type="Boom")  # the OSError is its context
    except ApplicationError as exc:
        cleaned = redacted_error(exc)
    assert cleaned.message == "wrapping [redacted:X_API_TOKEN]" and cleaned.details == ({"k": "[redacted:X_API_TOKEN]"},)
    cause = cleaned.__cause__
    assert isinstance(cause, ApplicationError) and cause.type == "OSError" and TOKEN not in cause.message


def test_the_log_filter_redacts_messages_and_tracebacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_API_TOKEN", TOKEN)
    try:
        raise RuntimeError(f"failed with {TOKEN}")
    except RuntimeError:
        record = logging.LogRecord("t", logging.WARNING, __file__, 1, "token %s", (TOKEN,), sys.exc_info())
    assert RedactingLogFilter().filter(record)
    line = logging.Formatter().format(record)
    assert TOKEN not in line and "token [redacted:X_API_TOKEN]" in line and "RuntimeError" in line


# -- the worker's interceptor --------------------------------------------------------------------


class _Activity:
    """The next inbound interceptor: the activity itself, returning or raising what it is given."""

    def __init__(self, outcome: object) -> None:
        self.outcome = outcome

    async def execute_activity(self, input: object) -> object:
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


async def test_the_interceptor_redacts_results_and_foreign_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_API_TOKEN", TOKEN)
    leaked = ShellResult(exit_code=0, stdout=f"{TOKEN}\n", stderr="", duration_ms=1, output={"result": TOKEN})
    result = await _RedactingInbound(_Activity(leaked)).execute_activity(None)  # type: ignore[arg-type]
    assert isinstance(result, ShellResult) and result.output == {"result": "[redacted:X_API_TOKEN]"}
    with pytest.raises(ApplicationError) as info:
        await _RedactingInbound(_Activity(KeyError(f"no {TOKEN}"))).execute_activity(None)  # type: ignore[arg-type]
    assert info.value.type == "KeyError" and not info.value.non_retryable and TOKEN not in info.value.message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_heartbeat_details_are_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_API_TOKEN", TOKEN)
    sent: list[object] = []

    class Outbound:
        def heartbeat(self, *details: object) -> None:
            sent.extend(details)

    _RedactingOutbound(Outbound()).heartbeat({"last_line": f"using {TOKEN}", "elapsed_seconds": 1.5})  # type: ignore[arg-type]
    assert sent == [{"last_line": "using [redacted:X_API_TOKEN]", "elapsed_seconds": 1.5}]


async def test_a_connector_that_cannot_reach_its_base_url_names_it_without_credentials() -> None:
    base = "http://analyst:pw-5d81c3@127.0.0.1:9/api?api_key=k-77a0e1"
    async with httpx.AsyncClient(base_url=base, timeout=5) as client:
        with pytest.raises(ConnectorUnavailableError) as info:
            await get_json(client, "/funnels", {}, source="mixpanel", auth_hint="")
    assert "mixpanel cannot be reached at http://analyst:[redacted]@127.0.0.1:9/api" in info.value.message
    assert "pw-5d81c3" not in info.value.message and "k-77a0e1" not in info.value.message

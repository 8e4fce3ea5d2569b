"""Workers that match the run, and the run's working directory (`iterloop run`, `retry`, `worker status|stop`).

Integration tests run `iterloop` as a real subprocess against the session's dev server. With
`bare_cli` nobody polls the test's task queue, so the commands start background workers (`python
-m worker`) and, when their settings no longer suit a run, restart them; the Anthropic fake plays
the model of the real runs. The pure parts (fingerprints, `.env`, identities) are unit tests.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from cli_harness import Cli
from fakes.llm_servers import TEST_API_KEY, FakeAnthropic, Reply
from runs import poll, start_worker_process, stop_process
from test_run_cli import REVIEW, REVIEW_SCRIPT, inspect_json, wait_for_status, with_pid_gone

from activities.llm import settings as llm_settings
from runtime.dotenv_file import command_environment, parse_dotenv
from runtime.processes import pid_alive
from runtime.worker_fingerprint import (
    MODEL_KEY_VARS,
    MODEL_SETTING_VARS,
    caller_fingerprint,
    model_variables,
    offline_task_queue,
    parse_identity,
    run_task_queue,
    worker_fingerprint,
    worker_identity,
)

REAL = """\
schema answer:
  text: string

agent writer:
  model: "${ITERLOOP_TEST_MODEL}"
  output: answer

workflow real:
  entry: writer
  writer -> done
"""

WHERE = """\
tool where:
  command: "pwd -P"

workflow where:
  entry: where
  where -> done
"""


def _without_keys(cli: Cli) -> Cli:
    """The CLI with no model key in its environment (whatever the machine running the tests has)."""
    env = {k: v for k, v in cli.env.items() if k not in (*MODEL_KEY_VARS, *MODEL_SETTING_VARS)}
    return Cli({**env, "ITERLOOP_TEST_MODEL": "claude-sonnet-4-5"}, cli.cwd)


def _records(cli: Cli) -> list[dict[str, Any]]:
    path = Path(cli.env["ITERLOOP_HOME"]) / "worker.json"
    return json.loads(path.read_text())["workers"] if path.exists() else []


def _stop_all(cli: Cli, pids: set[int]) -> None:
    for pid in pids | {r["pid"] for r in _records(cli)}:
        with_pid_gone(pid)


# -- offline and real runs never share a worker ------------------------------------------------------


async def test_an_offline_runs_worker_never_serves_a_real_run(bare_cli: Cli) -> None:
    cli = _without_keys(bare_cli)
    cli.write("review.iter", REVIEW)
    cli.write("script.yaml", REVIEW_SCRIPT)
    cli.write("real.iter", REAL)
    pids: set[int] = set()
    with FakeAnthropic(api_key=TEST_API_KEY) as fake:
        fake.default = Reply(answer={"text": "from the real model"})
        try:
            offline = await cli("run", "review.iter", "--offline", "--script", "script.yaml", "--detach", "--json")
            assert offline.code == 0, offline.err
            offline_worker = offline.json()["worker"]
            pids.add(offline_worker["pid"])
            assert offline.json()["task_queue"] == offline_task_queue(cli.env["ITERLOOP_TASK_QUEUE"])
            assert "(offline: scripted model)" in offline.err

            real_cli = Cli({**cli.env, **fake.env()}, cli.cwd)
            real = await real_cli("run", "real.iter", "--run-id", "real-after-offline")
            assert real.code == 0, real.out + real.err
            assert "(scripted model)" not in real.out
            assert len(fake.requests) == 1  # the real model answered, with the model the worker resolved
            assert fake.requests[0].body["model"] == "claude-sonnet-4-5"
            doc = await inspect_json(real_cli, "real-after-offline")
            # The run records the reference as written, never its resolved value (docs/security.md).
            assert doc["nodes"]["writer"]["model"] == "${ITERLOOP_TEST_MODEL}" and doc["task_queue"] == cli.env[
                "ITERLOOP_TASK_QUEUE"]
            records = {r["task_queue"]: r for r in _records(cli)}
            pids.update(r["pid"] for r in records.values())
            assert records[offline_task_queue(cli.env["ITERLOOP_TASK_QUEUE"])]["pid"] == offline_worker["pid"]
            real_record = records[cli.env["ITERLOOP_TASK_QUEUE"]]
            assert real_record["offline"] is False and real_record["pid"] != offline_worker["pid"]
            assert real_record["fingerprint"]["model_keys"] == ["ANTHROPIC_API_KEY"]
            assert real_record["fingerprint"]["model_vars"]["ITERLOOP_TEST_MODEL"] == "claude-sonnet-4-5"
            assert TEST_API_KEY not in json.dumps(_records(cli))  # names only, never values
            await wait_for_status(cli, offline.json()["run_id"], "finished")
        finally:
            _stop_all(cli, pids)


async def test_a_worker_iterloop_did_not_start_is_refused_when_its_settings_differ(
        bare_cli: Cli, tmp_path: Path) -> None:
    cli = _without_keys(bare_cli)
    cli.write("real.iter", REAL)
    env = {k: v for k, v in os.environ.items() if k not in (*MODEL_KEY_VARS, *MODEL_SETTING_VARS)}
    foreign = start_worker_process(cli.env["TEMPORAL_ADDRESS"], cli.env["ITERLOOP_TASK_QUEUE"],
                                   tmp_path / "foreign.log", extra_env={**env, "ITERLOOP_OFFLINE": "0"})
    try:
        from temporalio.client import Client

        from runtime.background_workers import live_pollers

        client = await Client.connect(cli.env["TEMPORAL_ADDRESS"])

        async def polling() -> bool:
            return any(p.startswith(f"{foreign.pid}@")
                       for p in await live_pollers(client, "default", cli.env["ITERLOOP_TASK_QUEUE"]))

        await poll(polling, "the foreign worker to poll", timeout=30)
        with FakeAnthropic(api_key=TEST_API_KEY) as fake:
            result = await Cli({**cli.env, **fake.env()}, cli.cwd)("run", "real.iter", "--detach")
        assert result.code == 1, result.out + result.err
        assert f"pid {foreign.pid}, started 20" in result.err
        assert f"in directory {Path(__file__).resolve().parents[1]}" in result.err
        assert "iterloop did not start from here" in result.err and "started run" not in result.out
        assert foreign.poll() is None  # not ours: left alone
    finally:
        await stop_process(foreign)


# -- a worker started before a fix is restarted by `iterloop retry` ---------------------------------


async def test_retry_after_exporting_the_key_restarts_the_worker_and_succeeds(bare_cli: Cli) -> None:
    cli = _without_keys(bare_cli)
    cli.write("real.iter", REAL)
    pids: set[int] = set()
    with FakeAnthropic(api_key=TEST_API_KEY) as fake:
        fake.default = Reply(answer={"text": "with the key"})
        no_key = Cli({**cli.env, "ANTHROPIC_BASE_URL": fake.base_url}, cli.cwd)
        try:
            first = await no_key("run", "real.iter", "--run-id", "needs-key")
            pids.update(r["pid"] for r in _records(cli))
            assert first.code == 4, first.out + first.err  # parked: the fake refuses the missing key
            assert "iterloop retry needs-key" in first.out

            with_key = Cli({**no_key.env, "ANTHROPIC_API_KEY": TEST_API_KEY}, cli.cwd)  # `export ANTHROPIC_API_KEY=…`
            retried = await with_key("retry", "needs-key")
            pids.update(r["pid"] for r in _records(cli))
            assert retried.code == 0, retried.err
            assert "restarted the background worker" in retried.err
            assert "ANTHROPIC_API_KEY is set here and not set in the worker" in retried.err
            assert TEST_API_KEY not in retried.err + retried.out
            doc = await wait_for_status(with_key, "needs-key", "finished")
            assert doc["outputs"]["writer"]["text"] == "with the key"
        finally:
            _stop_all(cli, pids)


# -- the run's working directory ---------------------------------------------------------------------


async def test_shell_commands_run_where_iterloop_run_was_called_and_workdir_overrides(cli: Cli) -> None:
    cli.write("where.iter", WHERE)
    (cli.cwd / "sub").mkdir()
    assert (await cli("run", "where.iter", "--run-id", "where-here")).code == 0
    assert (await inspect_json(cli, "where-here"))["outputs"]["where"]["result"] == str(cli.cwd.resolve())
    assert (await cli("run", "where.iter", "--run-id", "where-sub", "--workdir", "sub")).code == 0
    assert (await inspect_json(cli, "where-sub"))["outputs"]["where"]["result"] == str((cli.cwd / "sub").resolve())


async def test_a_workdir_the_worker_cannot_see_parks_the_node_naming_it_and_the_host(cli: Cli) -> None:
    cli.write("where.iter", WHERE)
    missing = cli.cwd / "not-on-the-worker"
    result = await cli("run", "where.iter", "--run-id", "where-missing", "--workdir", str(missing))
    assert result.code == 4, result.out + result.err
    doc = await inspect_json(cli, "where-missing")
    [failure] = doc["failures"]
    assert str(missing) in failure["error"] and socket.gethostname() in failure["error"]


# -- .env --------------------------------------------------------------------------------------------


async def test_dotenv_is_read_and_the_process_environment_wins(cli: Cli) -> None:
    cli.write("topics.iter", REVIEW.replace('  topic: string = "${ITERLOOP_TEST_TOPIC}"\n',
                                            '  topic: string = "${ITERLOOP_TEST_TOPIC}"\n'
                                            '  other: string = "${ITERLOOP_DOTENV_ONLY}"\n'))
    cli.write("script.yaml", REVIEW_SCRIPT)
    cli.write(".env", "# comment\nexport ITERLOOP_TEST_TOPIC=from-the-file\nITERLOOP_DOTENV_ONLY='only in the file'\n")
    result = await cli("run", "topics.iter", "--script", "script.yaml", "--run-id", "dotenv")
    assert result.code == 0, result.out + result.err
    doc = await inspect_json(cli, "dotenv")
    assert doc["vars"] == {**doc["vars"], "topic": "durable loops", "other": "only in the file"}


async def test_dotenv_reaches_background_workers_and_status_shows_names_only(bare_cli: Cli) -> None:
    cli = _without_keys(bare_cli)
    cli.write("real.iter", REAL)
    with FakeAnthropic(api_key=TEST_API_KEY) as fake:
        fake.default = Reply(answer={"text": "key from .env"})
        cli.write(".env", f"ANTHROPIC_API_KEY={TEST_API_KEY}\nANTHROPIC_BASE_URL={fake.base_url}\n")
        try:
            result = await cli("run", "real.iter", "--run-id", "dotenv-key")
            assert result.code == 0, result.out + result.err

            status = await cli("worker", "status", "--json")
            assert status.code == 0, status.err
            [row] = status.json()["workers"]
            assert row["task_queue"] == cli.env["ITERLOOP_TASK_QUEUE"] and row["offline"] is False
            assert Path(row["cwd"]).resolve() == cli.cwd.resolve() and row["fingerprint"]["model_keys"] == ["ANTHROPIC_API_KEY"]
            assert row["fingerprint"]["settings"] == {"ANTHROPIC_BASE_URL": fake.base_url}
            text = await cli("worker", "status")
            assert f"pid {row['pid']}" in text.out and "model keys set: ANTHROPIC_API_KEY" in text.out
            assert TEST_API_KEY not in status.out + text.out

            stopped = await cli("worker", "stop", "--json")
            assert stopped.code == 0 and stopped.json() == {"stopped": [row["pid"]]}
            assert not pid_alive(row["pid"])  # stopped, and waited for
            assert (await cli("worker", "status", "--json")).json() == {"workers": []}
            assert (await cli("worker", "stop", "--json")).json() == {"stopped": []}
        finally:
            _stop_all(cli, set())


# -- pure parts ----------------------------------------------------------------------------------------


def test_the_fingerprint_lists_match_the_model_layers_variables() -> None:
    assert set(MODEL_KEY_VARS) == {llm_settings.ANTHROPIC_API_KEY_VAR, llm_settings.OPENAI_API_KEY_VAR}
    assert {llm_settings.ANTHROPIC_BASE_URL_VAR, llm_settings.OPENAI_BASE_URL_VAR, llm_settings.OPENAI_API_VAR,
            llm_settings.PRICES_FILE_VAR, llm_settings.MAX_OUTPUT_TOKENS_VAR, llm_settings.REQUEST_TIMEOUT_VAR,
            llm_settings.PROMPT_CACHING_VAR} == set(MODEL_SETTING_VARS)


def test_fingerprints_name_variables_never_values() -> None:
    worker = worker_fingerprint({"ANTHROPIC_BASE_URL": "http://a"}, offline=False, model_vars=["M"])
    caller = caller_fingerprint({"ANTHROPIC_API_KEY": "sk-secret", "ANTHROPIC_BASE_URL": "http://b", "M": "claude-x"},
                                offline=False, model_vars=["M"])
    reasons = caller.differences(worker)
    assert reasons == ["ANTHROPIC_API_KEY is set here and not set in the worker",
                       "ANTHROPIC_BASE_URL is 'http://b' here and 'http://a' in the worker",
                       "M is 'claude-x' here and unset in the worker"]
    assert "sk-secret" not in json.dumps(caller.to_json()) + caller.digest()
    assert caller.differences(caller) == []
    assert caller_fingerprint({"ANTHROPIC_API_KEY": "k"}, offline=True).differences(
        worker_fingerprint({}, offline=True)) == []  # offline runs need no model settings
    assert caller_fingerprint({}, offline=False).differences(worker_fingerprint({}, offline=True)) == [
        "the worker is offline (scripted model) and the run is not"]
    # a variable the worker was not started for (and not MODEL-like) cannot be compared: restart
    assert caller_fingerprint({"X": "a"}, offline=False, model_vars=["X"]).differences(
        worker_fingerprint({}, offline=False)) == ["the worker was not started for X (read by a model string)"]


def test_offline_runs_have_their_own_task_queue_and_identities_carry_the_digest() -> None:
    assert run_task_queue("iterloop", offline=True) == "iterloop-offline" == offline_task_queue("iterloop-offline")
    assert run_task_queue("iterloop", offline=False) == "iterloop"
    fp = worker_fingerprint({"OPENAI_API_KEY": "k"}, offline=False)
    assert parse_identity(worker_identity(42, "box", fp)) == (42, "box", fp.digest())
    assert parse_identity("42@box") == (42, "box", None)


def test_model_variables_are_the_ones_model_strings_read() -> None:
    import dsl

    result = dsl.check_source(REAL.replace('"${ITERLOOP_TEST_MODEL}"', '"${PROVIDER}/${MODEL_NAME}"'))
    assert result.workflow is not None
    assert model_variables(result.workflow) == ["MODEL_NAME", "PROVIDER"]


def test_dotenv_parsing_and_precedence(tmp_path: Path) -> None:
    text = ("# comment\n\nexport A=1\nB = 'two words' \nC=\"x\\ny\"\nD=plain # trailing\nnot a line\nE=\n")
    assert parse_dotenv(text) == {"A": "1", "B": "two words", "C": "x\ny", "D": "plain", "E": ""}
    (tmp_path / ".env").write_text("A=file\nB=file\n")
    assert command_environment({"A": "process"}, tmp_path) == {"A": "process", "B": "file"}
    assert command_environment({"A": "process"}, tmp_path / "none") == {"A": "process"}

"""The shell activity, run with real subprocesses in an ActivityEnvironment (no server needed)."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities import shell
from activities.artifacts import LocalArtifactStore
from activities.shell import OUTPUT_LIMIT_BYTES, shell_exec
from workflows.contract.env_refs import expand_env, expand_env_in_command
from workflows.contract.messages import ERR_BAD_REQUEST, ERR_COMMAND_FAILED, ShellRequest, ShellResult, ShellValue

DEADLINE_SECONDS = 10.0


def request(command: str, **kw: Any) -> ShellRequest:
    return ShellRequest(run_id="run-1", node_id="build", command=command, **kw)


async def run(command: str, env: ActivityEnvironment | None = None, **kw: Any) -> ShellResult:
    return await (env or ActivityEnvironment()).run(shell_exec, request(command, **kw))


async def run_failing(command: str, **kw: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as info:
        await run(command, **kw)
    return info.value


def process_gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie waiting to be reaped counts as exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


async def poll(condition: Any, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def pids_in(path: Path, count: int) -> list[int] | None:
    lines = path.read_text().split() if path.exists() else []
    return [int(p) for p in lines] if len(lines) >= count else None


async def wait_for_pids(path: Path, count: int) -> list[int]:
    await poll(lambda: pids_in(path, count) is not None, f"{count} pids in {path}")
    return pids_in(path, count) or []


def group_command(pid_file: Path) -> str:
    """`sh` starts two background children and waits; every pid (sh's too) goes to ``pid_file``."""
    return (f"sleep 30 & echo $! >> {pid_file}; sleep 30 & echo $! >> {pid_file}; "
            f"echo $$ >> {pid_file}; wait")


# -- output ---------------------------------------------------------------------------------------

async def test_json_object_on_stdout_is_the_output() -> None:
    result = await run("""printf '  {"score": 3, "tags": ["a"]}\\n'""")
    assert result.output == {"score": 3, "tags": ["a"]}
    assert result.exit_code == 0


async def test_plain_text_is_the_trimmed_result() -> None:
    result = await run("echo; echo '  hello world  '")
    assert result.output == {"result": "hello world"}
    assert result.stdout == "\n  hello world  \n"


async def test_json_that_is_not_an_object_is_text() -> None:
    result = await run("echo '[1, 2]'")
    assert result.output == {"result": "[1, 2]"}


async def test_stderr_is_captured_separately() -> None:
    result = await run("echo out; echo err >&2")
    assert (result.stdout, result.stderr) == ("out\n", "err\n")
    assert result.output == {"result": "out"}


async def test_large_output_keeps_only_the_last_bytes() -> None:
    size = 3 * OUTPUT_LIMIT_BYTES
    result = await run(f"head -c {size} /dev/zero | tr '\\0' a; printf END; head -c {size} /dev/zero >&2")
    marker, kept = result.stdout.split("\n", 1)
    assert marker == f"[iterloop: {size + 3 - OUTPUT_LIMIT_BYTES} earlier bytes of stdout dropped; " \
                     f"last {OUTPUT_LIMIT_BYTES} kept]"
    assert len(kept) == OUTPUT_LIMIT_BYTES and kept.endswith("aaaEND")
    assert len(result.stderr.split("\n", 1)[1]) == OUTPUT_LIMIT_BYTES


async def test_cwd_is_honoured(tmp_path: Path) -> None:
    result = await run("pwd -P", cwd=str(tmp_path))
    assert result.output == {"result": str(tmp_path.resolve())}


# -- environment --------------------------------------------------------------------------------

async def test_env_reference_is_expanded_on_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    # A variable holding a whole command only works if the worker splices it before `sh` parses.
    monkeypatch.setenv("ITERLOOP_TEST_CMD", "echo a && echo b")
    result = await run("${ITERLOOP_TEST_CMD}")
    assert result.stdout == "a\nb\n"


async def test_single_quoted_text_is_not_expanded(monkeypatch: pytest.MonkeyPatch) -> None:
    # As in sh: nothing inside single quotes is an environment reference.
    monkeypatch.setenv("ITERLOOP_TEST_SECRET", "s3cret")
    result = await run("echo 'leak: $ITERLOOP_TEST_SECRET ${ITERLOOP_TEST_SECRET}'")
    assert result.output == {"result": "leak: $ITERLOOP_TEST_SECRET ${ITERLOOP_TEST_SECRET}"}


async def test_shell_variables_and_parameters_are_left_to_the_shell() -> None:
    result = await run('for f in x y; do printf "$f"; done; set -- p q; printf " $2 ${1} ${NOPE:-dflt}"')
    assert result.output == {"result": "xy q p dflt"}


async def test_template_values_arrive_as_variables_the_shell_reads_as_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ITERLOOP_TEST_SECRET", "s3cret")
    value = "'; echo pwned; ' $(echo pwned) `echo pwned` $ITERLOOP_TEST_SECRET\nline"
    result = await run('printf "%s|" "${ITERLOOP_VALUE_1}" x"${ITERLOOP_VALUE_2}"y',
                       values=[ShellValue(env="ITERLOOP_VALUE_1", ref="{{vars.a}}", value=value),
                               ShellValue(env="ITERLOOP_VALUE_2", ref="{{vars.n}}", value={"n": [1, "é"]})])
    assert result.stdout == value + '|x{"n": [1, "é"]}y|'


async def test_token_text_in_a_command_is_never_expanded(tmp_path: Path) -> None:
    uri = LocalArtifactStore(tmp_path).put("r", "n", b'{"result": "$(echo pwned)"}')
    result = await run(f"printf %s ⟦artifact:{uri}#result⟧")  # e.g. a request from an older workflow
    assert result.stdout == f"⟦artifact:{uri}#result⟧"


async def test_a_value_variable_name_outside_the_reserved_prefix_is_refused() -> None:
    error = await run_failing("true", values=[ShellValue(env="PATH", ref="{{vars.a}}", value="/tmp")])
    assert error.type == ERR_BAD_REQUEST and "ITERLOOP_VALUE_N" in str(error)


def test_env_expansion_never_splices_a_value_variable() -> None:
    env = {"ITERLOOP_VALUE_1": "x; rm -rf /", "HOME": "/h"}
    assert expand_env_in_command('echo "${ITERLOOP_VALUE_1}" $ITERLOOP_VALUE_1 $HOME', env) == \
        'echo "${ITERLOOP_VALUE_1}" $ITERLOOP_VALUE_1 /h'


def test_expand_env_follows_go_os_expandenv() -> None:
    env = {"A": "1", "B_2": "two", "$": "dollar"}
    assert expand_env("$A-${B_2}-$Bx-${A}", env) == "1-two--1"
    assert expand_env("$$ $ $( ${} tail$", env) == "dollar $ $(  tail$"
    assert expand_env("x${A", env) == "xA"  # unclosed `${` is dropped
    assert expand_env("${A:-d} $1", env) == "1 "  # `${VAR:-default}`: Iterion's addition to Go's rule
    assert expand_env("${NOPE:-d}", env) == "d"


def test_expand_env_in_command_respects_quotes_and_escapes() -> None:
    env = {"A": "1"}
    assert expand_env_in_command("""$A "$A" '$A' \\$A "\\$A" ${A}x $B $1 $$""", env) == \
        """1 "1" '$A' \\$A "\\$A" 1x $B $1 $$"""
    assert expand_env_in_command("""'it'"'"'s $A' $A""", env) == """'it'"'"'s $A' 1"""


# -- failures -----------------------------------------------------------------------------------

async def test_non_zero_exit_is_a_non_retryable_command_failure() -> None:
    err = await run_failing("echo partial; echo first >&2; echo 'boom: disk full' >&2; exit 3")
    assert (err.type, err.non_retryable) == (ERR_COMMAND_FAILED, True)
    assert "'build'" in err.message and "exited with code 3" in err.message
    assert err.message.endswith("first\nboom: disk full")
    assert err.details[0] == {"exit_code": 3, "timed_out": False, "stdout_tail": "partial\n",
                              "stderr_tail": "first\nboom: disk full\n"}


async def test_missing_cwd_is_a_bad_request(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    err = await run_failing("true", cwd=str(missing))
    assert (err.type, err.non_retryable) == (ERR_BAD_REQUEST, True)
    assert str(missing) in err.message and "'build'" in err.message
    assert f"host {socket.gethostname()}" in err.message  # the worker cannot see the run's directory
    assert err.details[0] == {"cwd": str(missing), "worker_host": socket.gethostname()}


async def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    err = await run_failing(group_command(pid_file), timeout_seconds=1.0)
    assert (err.type, err.non_retryable) == (ERR_COMMAND_FAILED, True)
    assert "timed out after 1 s" in err.message and err.details[0]["timed_out"] is True
    pids = pids_in(pid_file, 3)
    assert pids is not None
    await poll(lambda: all(process_gone(p) for p in pids), "the command's processes to exit")


async def test_child_ignoring_sigterm_is_killed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shell, "KILL_GRACE_SECONDS", 0.2)
    pid_file = tmp_path / "pids"
    command = f"""sh -c 'trap "" TERM; echo $$ >> {pid_file}; exec sleep 30' & wait"""
    started = time.monotonic()
    await run_failing(command, timeout_seconds=0.5)
    assert time.monotonic() - started < 5
    pids = pids_in(pid_file, 1)
    assert pids is not None
    await poll(lambda: process_gone(pids[0]), "the SIGTERM-proof child to be killed")


async def test_cancellation_kills_the_process_group_and_reraises(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    env = ActivityEnvironment()
    task = asyncio.create_task(run(group_command(pid_file), env))
    pids = await wait_for_pids(pid_file, 3)
    env.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await poll(lambda: all(process_gone(p) for p in pids), "the command's processes to exit")


# -- heartbeats ---------------------------------------------------------------------------------

async def test_heartbeats_report_elapsed_time_and_last_line() -> None:
    beats: list[dict[str, Any]] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details[0])
    await run("echo starting; echo 'step 1 of 2'; sleep 0.5; echo done", env, heartbeat_seconds=0.05)
    assert len(beats) >= 3
    assert beats[-1]["last_line"] == "step 1 of 2"
    assert beats[-1]["elapsed_seconds"] >= beats[0]["elapsed_seconds"]
    assert beats[-1]["stdout_bytes"] == len("starting\nstep 1 of 2\n")

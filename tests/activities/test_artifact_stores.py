"""The artifact stores: the local directory and an S3-compatible bucket (a real versitygw on loopback)."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from s3_harness import S3Server, s3_server  # noqa: F401  (the fixture)

from activities import artifact_stores, artifacts
from activities.artifact_stores import (
    CONNECT_TIMEOUT_SECONDS,
    MAX_ATTEMPTS,
    READ_TIMEOUT_SECONDS,
    ArtifactStore,
    ArtifactStoreSettings,
    LocalArtifactStore,
    S3ArtifactStore,
    open_store,
    parse_s3_url,
)
from activities.errors import ArtifactStoreUnavailableError, BadRequestError
from runtime.settings import Settings, SettingsError
from workflows.contract.state import RunOptions

ROOT = Path(__file__).resolve().parents[2]
BODY = json.dumps({"ok": True, "body": "x" * 5000}, sort_keys=True).encode()


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:  # noqa: F811
    """The server, with its root keys in the worker's environment (where boto3's chain finds them)."""
    for name, value in s3_server.credentials_env().items():
        monkeypatch.setenv(name, value)
    return s3_server


def s3_store(server: S3Server, prefix: str = "artifacts/") -> S3ArtifactStore:
    return S3ArtifactStore(server.bucket, prefix, endpoint=server.endpoint)


@pytest.fixture(params=["local", "s3"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ArtifactStore]:
    if request.param == "local":
        yield LocalArtifactStore(tmp_path / "artifacts")
    else:
        yield s3_store(request.getfixturevalue("s3_env"))


# -- both backends ------------------------------------------------------------------------------


def test_a_stored_object_reads_back_under_a_backend_agnostic_reference(any_store: ArtifactStore) -> None:
    uri = any_store.put("run/1", "node", BODY)
    assert uri == f"artifact://run_1/node/{hashlib.sha256(BODY).hexdigest()}.json"
    assert any_store.get(uri) == BODY


def test_storing_the_same_bytes_again_gives_the_same_reference(any_store: ArtifactStore) -> None:
    first = any_store.put("r", "n", BODY)
    assert any_store.put("r", "n", BODY) == first
    assert any_store.list("r") == [first]


def test_listing_a_run_gives_its_objects_and_no_other_runs(any_store: ArtifactStore) -> None:
    a = any_store.put("run-a", "n1", b'{"a":1}')
    b = any_store.put("run-a", "n2", b'{"b":2}')
    any_store.put("run-ab", "n1", b'{"c":3}')  # a run whose id starts like the other's
    assert any_store.list("run-a") == sorted([a, b])
    assert any_store.list("nothing-here") == []


def test_a_missing_object_is_a_non_retryable_error_naming_where_it_was_looked_for(any_store: ArtifactStore) -> None:
    with pytest.raises(BadRequestError, match="artifact://r/n/feed.json is missing from the store") as err:
        any_store.get("artifact://r/n/feed.json")
    assert err.value.non_retryable


def test_references_that_leave_the_store_are_refused(any_store: ArtifactStore) -> None:
    for uri in ("artifact://../etc/passwd", "artifact:///etc/passwd", "artifact://r//x.json", "file:///etc/passwd"):
        with pytest.raises(BadRequestError):
            any_store.get(uri)


def test_offloaded_outputs_resolve_through_the_configured_store(any_store: ArtifactStore) -> None:
    artifacts.configure(any_store)
    try:
        out = {"ok": True, "body": "y" * 5000}
        stub = artifacts.offload(out, run_id="r", node_id="n", threshold=1024)
        assert stub["ok"] is True and stub["$artifact"]["fields"] == ["body"]
        assert artifacts.resolve({"v": {"$artifact_ref": stub["$artifact"]["uri"], "path": ["body"]}}) == {
            "v": "y" * 5000}
    finally:
        artifacts.configure(Path(".iterloop/artifacts"))


# -- the local directory ------------------------------------------------------------------------


def test_the_local_store_keeps_its_layout_on_disk(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    uri = store.put("run/1", "node", BODY)
    assert (tmp_path / uri.removeprefix("artifact://")).read_bytes() == BODY
    assert store.location == str(tmp_path)


def test_the_default_settings_choose_the_local_directory(tmp_path: Path) -> None:
    store = open_store(ArtifactStoreSettings(local_dir=tmp_path))
    assert isinstance(store, LocalArtifactStore) and store.root == tmp_path


def test_an_unwritable_local_directory_fails_the_check_naming_the_setting(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(BadRequestError, match="ITERLOOP_ARTIFACT_DIR"):
        LocalArtifactStore(blocker / "artifacts").check()


# -- an S3-compatible bucket --------------------------------------------------------------------


def test_s3_objects_are_named_like_local_files_under_the_prefix(s3_env: S3Server) -> None:
    uri = s3_store(s3_env, "team/loops/").put("run/1", "node", BODY)
    key = "team/loops/" + uri.removeprefix("artifact://")
    assert s3_env.keys() == [key] and s3_env.read(key) == BODY


def test_storing_again_writes_nothing_when_the_object_is_there(s3_env: S3Server) -> None:
    store = s3_store(s3_env)
    uri = store.put("r", "n", BODY)
    key = "artifacts/" + uri.removeprefix("artifact://")
    s3_env.client().put_object(Bucket=s3_env.bucket, Key=key, Body=b"changed behind the store's back")
    store.put("r", "n", BODY)  # HEAD finds the object: no second PUT
    assert s3_env.read(key) == b"changed behind the store's back"


def test_listing_a_run_follows_every_page(s3_env: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(artifact_stores, "LIST_PAGE_SIZE", 2)
    store = s3_store(s3_env)
    uris = [store.put("r", f"n{i}", b'{"i":%d}' % i) for i in range(5)]
    assert store.list("r") == sorted(uris)


def test_a_reference_written_by_the_local_store_resolves_from_the_bucket(s3_env: S3Server, tmp_path: Path) -> None:
    local = LocalArtifactStore(tmp_path)
    uri = local.put("old-run", "node", BODY)
    # Moving to S3: copy the directory's files to the prefix; the histories' references stay as they are.
    s3_env.client().put_object(Bucket=s3_env.bucket, Key="artifacts/" + uri.removeprefix("artifact://"), Body=BODY)
    assert s3_store(s3_env).get(uri) == BODY


def test_the_factory_builds_an_s3_store_from_the_url_and_endpoint(s3_env: S3Server) -> None:
    store = open_store(ArtifactStoreSettings(url=f"s3://{s3_env.bucket}/p", endpoint=s3_env.endpoint))
    store.check()
    uri = store.put("r", "n", BODY)
    assert s3_env.keys() == ["p/" + uri.removeprefix("artifact://")]


def test_a_missing_bucket_is_non_retryable_and_names_the_bucket_and_the_setting(s3_env: S3Server) -> None:
    store = S3ArtifactStore("no-such-bucket", endpoint=s3_env.endpoint)
    for call in (store.check, lambda: store.put("r", "n", BODY)):
        with pytest.raises(BadRequestError, match="bucket 'no-such-bucket' does not exist .*ITERLOOP_ARTIFACTS_URL") \
                as err:
            call()
        assert err.value.non_retryable


def test_refused_credentials_are_non_retryable_and_never_show_the_secret(s3_env: S3Server,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = "wrong-secret-" + "q" * 24
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", wrong)
    store = s3_store(s3_env)
    with pytest.raises(BadRequestError, match="refused the worker's credentials .*AWS_SECRET_ACCESS_KEY") as err:
        store.put("r", "n", BODY)
    assert err.value.non_retryable
    text = f"{err.value.message} {err.value.details}"
    assert wrong not in text and s3_env.secret_key not in text and s3_env.bucket in text


def test_no_credentials_at_all_is_non_retryable_naming_the_variables(s3_env: S3Server,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(BadRequestError, match="no credentials .*AWS_ACCESS_KEY_ID") as err:
        s3_store(s3_env).check()
    assert err.value.non_retryable


def test_an_unreachable_endpoint_is_retryable(s3_env: S3Server) -> None:
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = S3ArtifactStore(s3_env.bucket, endpoint=f"http://127.0.0.1:{port}")
    with pytest.raises(ArtifactStoreUnavailableError, match=f"did not answer .*127.0.0.1:{port}") as err:
        store.get("artifact://r/n/feed.json")
    assert err.value.type == "ArtifactStoreUnavailable" and not err.value.non_retryable


def test_a_stalled_endpoint_times_out_within_the_client_bounds_and_is_retryable(s3_env: S3Server) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept_and_say_nothing() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept_and_say_nothing, daemon=True)
    thread.start()
    try:
        store = S3ArtifactStore(s3_env.bucket, endpoint=f"http://127.0.0.1:{listener.getsockname()[1]}",
                                connect_timeout=0.5, read_timeout=0.5)
        started = time.monotonic()
        with pytest.raises(ArtifactStoreUnavailableError, match="ReadTimeoutError"):
            store.get("artifact://r/n/feed.json")
        assert time.monotonic() - started < 10
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()


def test_the_default_client_bounds_end_a_call_inside_the_shortest_heartbeat_timeout() -> None:
    worst = MAX_ATTEMPTS * (CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS) + 1  # + botocore's back-off
    assert worst < RunOptions().shell_heartbeat_timeout_seconds


def test_an_s3_url_that_is_not_one_names_the_setting() -> None:
    assert parse_s3_url("s3://bucket") == ("bucket", "")
    assert parse_s3_url("s3://bucket/a/b/") == ("bucket", "a/b/")
    for bad in ("https://bucket/x", "s3://", "s3://UPPER/x", "s3://b?x=1"):
        with pytest.raises(BadRequestError, match="ITERLOOP_ARTIFACTS_URL"):
            parse_s3_url(bad)
    with pytest.raises(BadRequestError, match="ITERLOOP_ARTIFACTS_S3_ENDPOINT"):
        S3ArtifactStore("bucket", endpoint="127.0.0.1:7070")


def test_settings_read_the_s3_store_from_the_environment() -> None:
    s = Settings.from_env({"ITERLOOP_ARTIFACTS_URL": "s3://b/p", "ITERLOOP_ARTIFACTS_S3_ENDPOINT": "http://h:1",
                           "ITERLOOP_ARTIFACTS_S3_REGION": "eu-west-1", "ITERLOOP_ARTIFACTS_S3_ADDRESSING": "virtual"})
    assert (s.artifacts_url, s.artifacts_s3_endpoint, s.artifacts_s3_region, s.artifacts_s3_addressing) == (
        "s3://b/p", "http://h:1", "eu-west-1", "virtual")
    with pytest.raises(SettingsError, match="ITERLOOP_ARTIFACTS_URL='/data/artifacts' is not an S3 location"):
        Settings.from_env({"ITERLOOP_ARTIFACTS_URL": "/data/artifacts"})


def test_iterloop_worker_refuses_to_start_when_its_bucket_is_missing(s3_env: S3Server, tmp_path: Path) -> None:
    with socket.socket() as s:  # no Temporal here: the check must come before connecting
        s.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{s.getsockname()[1]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "ITERLOOP_"))}
    env.update(s3_env.worker_env(), ITERLOOP_ARTIFACTS_URL="s3://missing-bucket/x", TEMPORAL_ADDRESS=address,
               ITERLOOP_HOME=str(tmp_path / ".iterloop"), PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "cli", "worker"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "artifact store: the artifact bucket 'missing-bucket' does not exist" in proc.stderr
    assert s3_env.secret_key not in proc.stderr + proc.stdout

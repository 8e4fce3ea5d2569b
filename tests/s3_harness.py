"""A real S3-compatible server on loopback for tests: versitygw over a temporary directory.

Why versitygw: it is a single Go binary (`make versitygw` builds the pinned release into
~/.cache/iterloop/bin), serves the S3 API over a plain directory, and needs no account or
network, so the S3 artifact store is tested against a real server speaking the real protocol.

Each server gets a free loopback port, its own directory and random root keys (passed in its
environment, never on its command line), and one bucket created with boto3. Test modules import
the fixture they use (`from s3_harness import s3_server  # noqa: F401`) or wrap `running_s3_server`
themselves (e.g. for a session-wide server). The server is stopped (its process group killed)
when the block ends.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

#: Where `make versitygw` puts the binary; ITERLOOP_VERSITYGW_BIN overrides.
DEFAULT_BIN = Path.home() / ".cache/iterloop/bin/versitygw"
REGION = "us-east-1"
STARTUP_SECONDS = 30.0


def versitygw_binary() -> str:
    """The versitygw binary `make setup` provides (ITERLOOP_VERSITYGW_BIN overrides, then PATH)."""
    for candidate in (os.environ.get("ITERLOOP_VERSITYGW_BIN", ""), str(DEFAULT_BIN), shutil.which("versitygw") or ""):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("no versitygw binary: run `make versitygw` (builds it with Go into ~/.cache/iterloop/bin) "
                       "or set ITERLOOP_VERSITYGW_BIN")


@dataclass(frozen=True)
class S3Server:
    """A running versitygw: its endpoint, root keys and the bucket made for the test."""

    endpoint: str
    access_key: str
    secret_key: str
    bucket: str
    root: Path

    def client(self, *, secret_key: str | None = None) -> Any:
        """A boto3 S3 client for this server (path-style, as S3-compatible servers expect)."""
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, region_name=REGION, aws_access_key_id=self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}))

    def credentials_env(self) -> dict[str, str]:
        """The standard AWS variables a worker reads its credentials from."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_REGION": REGION}

    def worker_env(self, prefix: str = "") -> dict[str, str]:
        """Settings and credentials for a worker storing artifacts in this server's bucket."""
        url = f"s3://{self.bucket}/{prefix}".rstrip("/")
        return {"ITERLOOP_ARTIFACTS_URL": url, "ITERLOOP_ARTIFACTS_S3_ENDPOINT": self.endpoint,
                **self.credentials_env()}

    def keys(self, prefix: str = "") -> list[str]:
        """Every object key in the bucket under ``prefix``, sorted."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def read(self, key: str) -> bytes:
        return self.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(endpoint: str, client: Any) -> bool:
    try:
        client.list_buckets()
    except Exception:  # noqa: BLE001 - not listening yet, or still starting
        return False
    return True


@contextmanager
def running_s3_server(directory: Path, *, bucket: str = "iterloop-test") -> Iterator[S3Server]:
    """versitygw serving ``directory`` on a free loopback port with a fresh ``bucket``, until the block ends."""
    binary = versitygw_binary()
    directory.mkdir(parents=True, exist_ok=True)
    access_key, secret_key = "test" + secrets.token_hex(8), secrets.token_hex(20)
    env = {**os.environ, "ROOT_ACCESS_KEY": access_key, "ROOT_SECRET_KEY": secret_key}
    log = directory.parent / f"{directory.name}.versitygw.log"
    for _ in range(3):  # the port was free a moment ago; another process may take it first
        port = _free_port()
        with log.open("wb") as out:
            proc = subprocess.Popen([binary, "--port", f"127.0.0.1:{port}", "--quiet", "posix", str(directory)],
                                    env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        server = S3Server(endpoint=f"http://127.0.0.1:{port}", access_key=access_key, secret_key=secret_key,
                          bucket=bucket, root=directory)
        client = server.client()
        deadline = time.monotonic() + STARTUP_SECONDS
        while proc.poll() is None and not _answers(server.endpoint, client) and time.monotonic() < deadline:
            time.sleep(0.1)
        if proc.poll() is None:
            break
    else:
        raise RuntimeError(f"versitygw did not start; its output:\n{log.read_text(errors='replace')}")
    try:
        if not _answers(server.endpoint, client):
            raise RuntimeError(f"versitygw did not answer within {STARTUP_SECONDS:g} s; its output:\n"
                               f"{log.read_text(errors='replace')}")
        client.create_bucket(Bucket=bucket)
        yield server
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def s3_server(tmp_path: Path) -> Iterator[S3Server]:
    """A versitygw of this test's own, over ``tmp_path/s3``, with the bucket `iterloop-test`."""
    with running_s3_server(tmp_path / "s3") as server:
        yield server

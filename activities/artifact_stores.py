"""Where stored outputs live: a local directory (the default) or an S3-compatible bucket.

Why two: one machine's workers share a directory, but workers on several machines (a Temporal
cluster, Kubernetes) need a store they can all reach without a network file system, and object
stores are what such deployments already have. Both backends keep the same object names, so a
reference is backend-agnostic: `artifact://<run>/<node>/<sha256>.json`, resolved by whichever
store the worker is configured with (old histories keep working after a switch, once their
objects are copied across). Objects are content-addressed, so storing the same output again (a
retry, a replay, two workers racing) writes nothing new.

Credentials never travel with a run: the S3 store takes them from the worker's own environment
through boto3's standard chain (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, `AWS_PROFILE`, an
instance or pod role). Errors name the bucket and key and the setting to fix, never the secret
(and `activities.errors` redacts every message anyway).

`open_store` is the one factory: the worker builds its store from its settings with it, and so do
the tests.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from activities.errors import ArtifactStoreUnavailableError, BadRequestError

URI_PREFIX = "artifact://"

#: The settings that choose the store (runtime/settings.py reads them; docs/runtime.md lists them).
URL_SETTING = "ITERLOOP_ARTIFACTS_URL"
ENDPOINT_SETTING = "ITERLOOP_ARTIFACTS_S3_ENDPOINT"

#: Bounds on every S3 call, so a stalled endpoint fails an activity well inside its heartbeat
#: timeout (the shortest is a shell node's 30 s): two attempts of at most 3 s to connect and 8 s
#: per read, plus botocore's short back-off between them.
CONNECT_TIMEOUT_SECONDS = 3.0
READ_TIMEOUT_SECONDS = 8.0
MAX_ATTEMPTS = 2

#: Keys per listing request (S3's own maximum); a run with more objects is listed page by page.
LIST_PAGE_SIZE = 1000

Addressing = Literal["auto", "path", "virtual"]


class ArtifactStore(Protocol):
    """What the activities need of a store; `LocalArtifactStore` and `S3ArtifactStore` are the two."""

    @property
    def location(self) -> str:
        """Where the objects are, for messages and as a cache key (never holds a credential)."""
        ...

    def put(self, run_id: str, node_id: str, data: bytes) -> str:
        """Store ``data`` (idempotent: the same bytes give the same reference) and return its URI."""
        ...

    def get(self, uri: str) -> bytes:
        """The bytes stored at ``uri``; `BadRequestError` when the reference is invalid or missing."""
        ...

    def list(self, run_id: str) -> list[str]:
        """The URIs of every object stored for ``run_id``, sorted."""
        ...

    def check(self) -> None:
        """Fail now, with a message naming the setting to fix, when the store cannot be used."""
        ...


class ArtifactStoreSettings(BaseModel):
    """How the worker's store is chosen (built from `runtime.settings.Settings` in worker.py).

    ``url`` empty means the local directory ``local_dir``; `s3://bucket/prefix` means a bucket.
    ``endpoint`` points at an S3-compatible server (MinIO, versitygw, Ceph…); empty means AWS.
    ``addressing`` `auto` is path-style when an endpoint is given (what most S3-compatible
    servers expect) and boto3's default for AWS.
    """

    model_config = ConfigDict(frozen=True)

    local_dir: Path = Path(".iterloop/artifacts")
    url: str = ""
    endpoint: str = ""
    region: str = ""
    addressing: Addressing = "auto"


def open_store(settings: ArtifactStoreSettings) -> ArtifactStore:
    """The store ``settings`` describe; a bad URL or endpoint is a `BadRequestError` naming the setting."""
    if not settings.url:
        return LocalArtifactStore(settings.local_dir)
    bucket, prefix = parse_s3_url(settings.url)
    return S3ArtifactStore(bucket, prefix, endpoint=settings.endpoint, region=settings.region,
                           addressing=settings.addressing)


def parse_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` → (`bucket`, `some/prefix/`); the prefix is "" or ends in `/`."""
    parts = urlsplit(url)
    bucket = parts.netloc
    if parts.scheme != "s3" or not re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", bucket or ""):
        raise BadRequestError(
            f"{URL_SETTING}={url!r} is not an S3 location; expected s3://BUCKET or s3://BUCKET/PREFIX with a bucket "
            "name of 3 to 63 lower-case letters, digits, dots and hyphens (leave it empty for the local directory "
            "ITERLOOP_ARTIFACT_DIR)")
    if parts.query or parts.fragment:
        raise BadRequestError(f"{URL_SETTING}={url!r}: an S3 location takes no ?query or #fragment; "
                              "set the endpoint with ITERLOOP_ARTIFACTS_S3_ENDPOINT")
    prefix = parts.path.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


def relative_name(run_id: str, node_id: str, data: bytes) -> str:
    """`<run>/<node>/<sha256>.json`: the same name in every backend, so references stay valid."""
    return f"{_safe(run_id)}/{_safe(node_id)}/{hashlib.sha256(data).hexdigest()}.json"


def name_of(uri: str) -> str:
    """The relative object name of ``uri``, refused when it is not a reference or leaves the store."""
    if not uri.startswith(URI_PREFIX):
        raise BadRequestError(f"not an artifact reference: {uri!r}")
    rel = uri[len(URI_PREFIX):]
    parts = rel.split("/")
    if rel.startswith("/") or ".." in parts or "" in parts or "\\" in rel:
        raise BadRequestError(f"artifact reference escapes the store: {uri!r}")
    return rel


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", part)[:200] or "_"


def _missing(uri: str, where: str) -> BadRequestError:
    return BadRequestError(
        f"artifact {uri} is missing from the store at {where}; the run's outputs must stay available for as long "
        "as the run (and its history) exists, and every worker must use the same store "
        f"({URL_SETTING} / ITERLOOP_ARTIFACT_DIR)")


# -- the local directory ----------------------------------------------------------------------------


class LocalArtifactStore:
    """Content-addressed JSON objects under ``root/<run>/<node>/<sha256>.json``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def location(self) -> str:
        return str(self.root)

    def put(self, run_id: str, node_id: str, data: bytes) -> str:
        rel = relative_name(run_id, node_id, data)
        path = self.root / rel
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        return URI_PREFIX + rel

    def get(self, uri: str) -> bytes:
        try:
            return (self.root / name_of(uri)).read_bytes()
        except FileNotFoundError:
            raise _missing(uri, str(self.root)) from None

    def list(self, run_id: str) -> list[str]:
        run_dir = self.root / _safe(run_id)
        if not run_dir.is_dir():
            return []
        return sorted(URI_PREFIX + p.relative_to(self.root).as_posix() for p in run_dir.glob("*/*.json"))

    def check(self) -> None:
        """The directory exists (or can be made) and is writable."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.root, suffix=".check")
            os.close(fd)
            os.unlink(tmp)
        except OSError as exc:
            raise BadRequestError(f"the artifact directory {self.root} cannot be written ({exc.strerror}); "
                                  "point ITERLOOP_ARTIFACT_DIR at a writable directory") from None


# -- an S3-compatible bucket ----------------------------------------------------------------------

#: S3 error codes that say the configuration is wrong: retrying cannot help.
_BAD_CREDENTIALS = frozenset({"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken",
                              "ExpiredToken", "InvalidClientTokenId", "AuthorizationHeaderMalformed", "403"})
_NO_BUCKET = frozenset({"NoSuchBucket"})
_NO_KEY = frozenset({"NoSuchKey", "404", "NotFound"})
#: Codes of a busy or failing server: worth another attempt.
_TRANSIENT = frozenset({"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout",
                        "Throttling", "ThrottlingException", "503", "500", "502", "504"})


class S3ArtifactStore:
    """Content-addressed JSON objects at ``s3://bucket/<prefix><run>/<node>/<sha256>.json``.

    One boto3 client per store (thread-safe; built once at worker start), with bounded timeouts
    and attempts (`CONNECT_TIMEOUT_SECONDS`, `READ_TIMEOUT_SECONDS`, `MAX_ATTEMPTS`).
    """

    def __init__(self, bucket: str, prefix: str = "", *, endpoint: str = "", region: str = "",
                 addressing: Addressing = "auto", connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
                 read_timeout: float = READ_TIMEOUT_SECONDS) -> None:
        import boto3
        from botocore.config import Config

        if endpoint and urlsplit(endpoint).scheme not in ("http", "https"):
            raise BadRequestError(f"{ENDPOINT_SETTING}={endpoint!r} is not an http:// or https:// URL; "
                                  "expected e.g. http://127.0.0.1:7070 (or leave it empty for AWS S3)")
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint = endpoint
        style = addressing if addressing != "auto" else ("path" if endpoint else "auto")
        config = Config(connect_timeout=connect_timeout, read_timeout=read_timeout,
                        retries={"total_max_attempts": MAX_ATTEMPTS, "mode": "standard"},
                        s3={"addressing_style": style})
        session = boto3.session.Session()
        self._client: Any = session.client(
            "s3", endpoint_url=endpoint or None, config=config,
            region_name=region or session.region_name or "us-east-1")

    @property
    def location(self) -> str:
        where = f"s3://{self.bucket}/{self.prefix}"
        return f"{where} at {self.endpoint}" if self.endpoint else where

    def put(self, run_id: str, node_id: str, data: bytes) -> str:
        """HEAD first: an object that is there already holds these very bytes (its name is their hash)."""
        rel = relative_name(run_id, node_id, data)
        key = self.prefix + rel
        if not self._exists(key):
            self._call("store", key, lambda: self._client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType="application/json"))
        return URI_PREFIX + rel

    def get(self, uri: str) -> bytes:
        key = self.prefix + name_of(uri)
        try:
            response = self._call("read", key, lambda: self._client.get_object(Bucket=self.bucket, Key=key))
            return self._call("read", key, lambda: response["Body"].read())
        except _NotThere:
            raise _missing(uri, f"{self.location} (key {key})") from None

    def list(self, run_id: str) -> list[str]:
        run_prefix = f"{self.prefix}{_safe(run_id)}/"
        uris: list[str] = []
        token: str | None = None
        while True:
            more = {"ContinuationToken": token} if token else {}
            page = self._call("list", run_prefix, functools.partial(
                self._client.list_objects_v2, Bucket=self.bucket, Prefix=run_prefix, MaxKeys=LIST_PAGE_SIZE, **more))
            uris += [URI_PREFIX + item["Key"][len(self.prefix):] for item in page.get("Contents", [])
                     if item["Key"].endswith(".json")]
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return sorted(uris)

    def check(self) -> None:
        """The bucket exists and these credentials may use it (one HEAD request)."""
        try:
            self._call("reach", "", lambda: self._client.head_bucket(Bucket=self.bucket))
        except _NotThere:
            raise self._no_bucket() from None

    def _exists(self, key: str) -> bool:
        try:
            self._call("check", key, lambda: self._client.head_object(Bucket=self.bucket, Key=key))
        except _NotThere:
            return False
        return True

    def _call(self, what: str, key: str, call: Any) -> Any:
        """``call()``, its failures turned into the error tree's (`_NotThere` for a missing key)."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectionClosedError,
            ConnectTimeoutError,
            EndpointConnectionError,
            NoCredentialsError,
            PartialCredentialsError,
            ReadTimeoutError,
            ResponseStreamingError,
        )

        where = f"s3://{self.bucket}/{key}" + (f" at {self.endpoint}" if self.endpoint else "")
        try:
            return call()
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code in _NO_BUCKET:
                raise self._no_bucket() from None
            if code in _NO_KEY:  # a HEAD answers a bare 404, for a missing key or (HEAD bucket) bucket
                raise _NotThere() from None
            if code in _BAD_CREDENTIALS or status in (401, 403):
                raise BadRequestError(
                    f"the artifact store refused the worker's credentials ({code or status}) trying to {what} "
                    f"{where}; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, or a role) on the "
                    f"worker to a key that may read and write bucket '{self.bucket}'") from None
            if code in _TRANSIENT or status >= 500:
                raise ArtifactStoreUnavailableError(
                    f"the artifact store could not {what} {where}: {code or status} "
                    f"{error.get('Message', '')}".rstrip()) from None
            raise BadRequestError(f"the artifact store refused to {what} {where}: {code or status} "
                                  f"{error.get('Message', '')}".rstrip()) from None
        except (NoCredentialsError, PartialCredentialsError):
            raise BadRequestError(
                f"no credentials for the artifact store {self.location}: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, or a role) in the worker's environment") from None
        except (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError,
                ResponseStreamingError) as exc:
            raise ArtifactStoreUnavailableError(
                f"the artifact store did not answer trying to {what} {where} ({type(exc).__name__}); check "
                f"{ENDPOINT_SETTING} and the network") from None
        except BotoCoreError as exc:
            raise BadRequestError(f"the artifact store cannot {what} {where}: {exc}") from None

    def _no_bucket(self) -> BadRequestError:
        return BadRequestError(
            f"the artifact bucket '{self.bucket}' does not exist" + (f" at {self.endpoint}" if self.endpoint else "")
            + f" ({URL_SETTING}=s3://{self.bucket}/{self.prefix}); create it, or fix the setting")


class _NotThere(Exception):
    """A key (or, for HEAD bucket, the bucket) that does not exist: callers say what it means."""

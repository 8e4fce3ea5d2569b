"""The API's configuration: read once from the environment by `iterloop api`, then passed down.

`ApiSettings` wraps the runtime `Settings` (where Temporal is, which namespace and task queue)
and adds what only the HTTP server needs: who may call it, where registered workflows live, how
large a request may be, and the Slack app's credentials (read by `api.slack`).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from runtime.settings import Settings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_SESSION_HOURS = 12.0

_TOKEN_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


class ApiConfigError(ValueError):
    """A setting of the API is unusable; the message names the variable and what to put in it."""


@dataclass(frozen=True)
class ApiToken:
    """A bearer token; ``name`` is who answers gates with it (``answered_by``) and what logs show."""

    name: str
    secret: str = field(repr=False)
    can_write: bool = True


def parse_tokens(text: str, *, can_write: bool, variable: str) -> list[ApiToken]:
    """`ITERLOOP_API_TOKENS`: comma-separated entries, each `TOKEN` or `NAME:TOKEN`."""
    tokens: list[ApiToken] = []
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        name, sep, secret = entry.partition(":")
        if not sep or not _TOKEN_NAME.match(name) or not secret:
            name, secret = "api", entry
        if len(secret) < 16:
            raise ApiConfigError(f"{variable}: a token must be at least 16 characters long (token "
                                 f"'{name}' has {len(secret)}); generate one with "
                                 "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`")
        tokens.append(ApiToken(name=name, secret=secret, can_write=can_write))
    return tokens


@dataclass(frozen=True)
class ApiSettings:
    """Everything `create_app` needs. Build it with `from_env` at the edge, or directly in tests."""

    runtime: Settings = field(default_factory=Settings)
    tokens: tuple[ApiToken, ...] = ()
    #: No authentication at all. Only `iterloop api --no-auth` sets it, and only on a loopback host.
    auth_disabled: bool = False
    #: Signs dashboard session cookies and CSRF tokens. Random per process unless configured, so
    #: sessions end when the API restarts; set ITERLOOP_API_SESSION_SECRET for several replicas.
    session_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    session_hours: float = DEFAULT_SESSION_HOURS
    #: Registered workflows: every `*.iter` file in this directory, by file stem.
    workflows_dir: Path | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    #: Model for nodes that leave `model:` empty, as for `iterloop run` (ITERLOOP_DEFAULT_MODEL).
    default_model: str = ""
    #: The Temporal Web UI's base URL for run links; empty = the dev server's UI (as the CLI prints).
    temporal_ui_url: str = ""
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    slack_signing_secret: str = field(default="", repr=False)
    slack_bot_token: str = field(default="", repr=False)
    slack_api_url: str = DEFAULT_SLACK_API_URL
    #: The environment `${NAME}` in var defaults is resolved from when the API starts a run (as the
    #: CLI does from its shell's): the API process's environment, captured by `from_env`.
    client_env: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ApiSettings:
        e = os.environ if env is None else env
        tokens = (parse_tokens(e.get("ITERLOOP_API_TOKENS", ""), can_write=True, variable="ITERLOOP_API_TOKENS")
                  + parse_tokens(e.get("ITERLOOP_API_READ_TOKENS", ""), can_write=False,
                                 variable="ITERLOOP_API_READ_TOKENS"))
        secret = e.get("ITERLOOP_API_SESSION_SECRET", "")
        workflows_dir = e.get("ITERLOOP_WORKFLOWS_DIR", "")
        return cls(
            runtime=Settings.from_env(e),
            tokens=tuple(tokens),
            session_secret=secret.encode() if secret else secrets.token_bytes(32),
            session_hours=_number(e, "ITERLOOP_API_SESSION_HOURS", DEFAULT_SESSION_HOURS),
            workflows_dir=Path(workflows_dir) if workflows_dir else None,
            max_body_bytes=int(_number(e, "ITERLOOP_API_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)),
            default_model=(e.get("ITERLOOP_DEFAULT_MODEL") or e.get("ITERION_DEFAULT_SUPERVISOR_MODEL") or "").strip(),
            temporal_ui_url=(e.get("ITERLOOP_TEMPORAL_UI_URL") or "").rstrip("/"),
            host=e.get("ITERLOOP_API_HOST") or DEFAULT_HOST,
            port=int(_number(e, "ITERLOOP_API_PORT", DEFAULT_PORT)),
            slack_signing_secret=e.get("ITERLOOP_SLACK_SIGNING_SECRET") or e.get("SLACK_SIGNING_SECRET", ""),
            slack_bot_token=e.get("ITERLOOP_SLACK_BOT_TOKEN") or e.get("SLACK_BOT_TOKEN", ""),
            slack_api_url=e.get("ITERLOOP_SLACK_API_URL") or e.get("SLACK_API_URL") or DEFAULT_SLACK_API_URL,
            client_env=dict(e),
        )

    def with_overrides(self, *, host: str | None = None, port: int | None = None,
                       auth_disabled: bool | None = None, address: str | None = None,
                       namespace: str | None = None, task_queue: str | None = None,
                       workflows_dir: Path | None = None) -> ApiSettings:
        s = replace(self, runtime=self.runtime.with_overrides(address=address, namespace=namespace,
                                                               task_queue=task_queue))
        if host:
            s = replace(s, host=host)
        if port:
            s = replace(s, port=port)
        if auth_disabled is not None:
            s = replace(s, auth_disabled=auth_disabled)
        if workflows_dir is not None:
            s = replace(s, workflows_dir=workflows_dir)
        return s

    def check(self) -> None:
        """Refuse configurations that would expose runs: no tokens, or no auth on a public address."""
        if self.auth_disabled and not is_loopback_host(self.host):
            raise ApiConfigError(f"--no-auth is only allowed on a loopback address (127.0.0.1, localhost, ::1), "
                                 f"not {self.host}; set ITERLOOP_API_TOKENS to serve other hosts")
        if not self.auth_disabled and not self.tokens:
            raise ApiConfigError("no API tokens: set ITERLOOP_API_TOKENS (comma-separated, each TOKEN or "
                                 "NAME:TOKEN), or pass --no-auth to serve this machine only without authentication")
        if self.max_body_bytes < 1024:
            raise ApiConfigError(f"ITERLOOP_API_MAX_BODY_BYTES must be at least 1024, got {self.max_body_bytes}")


def is_loopback_host(host: str) -> bool:
    return host.strip("[]") in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name, "")
    if not text:
        return default
    try:
        return float(text)
    except ValueError:
        raise ApiConfigError(f"{name} must be a number, got {text!r}") from None

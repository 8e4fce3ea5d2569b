"""The API's configuration: read once from the environment by `iterloop api`, then passed down.

`ApiSettings` wraps the runtime `Settings` (where Temporal is, which namespace and task queue,
the Temporal Web UI's address, the Slack bot token and Web API URL) and adds what only the HTTP
server needs: who may call it, which files a request may name, how large a request may be, and
the Slack app's signing secret (read by `api.slack`). Nothing here re-reads a variable that
`runtime.settings.Settings` already holds.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from runtime.language_commands import default_model_from_env
from runtime.server_address import is_loopback_host
from runtime.settings import Settings
from workflows.contract.env_refs import truthy

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
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


#: `${NAME}` in a var default never reads these variables when the API starts a run (the run's
#: vars are stored in its history, readable in the Temporal Web UI): the API's own settings and
#: Slack's, and anything named like a credential. Compared case-insensitively; docs/api.md.
WITHHELD_PREFIXES = ("ITERLOOP_API_", "ITERLOOP_SLACK_", "SLACK_")
WITHHELD_SUFFIXES = ("_API_KEY", "_ACCESS_KEY", "_PRIVATE_KEY", "_TOKEN", "_TOKENS")
WITHHELD_PARTS = ("SECRET", "PASSWORD", "PASSWD", "CREDENTIAL")


def withheld_from_runs(name: str) -> bool:
    """Whether `${name}` in a var default stays unresolved when the API starts a run."""
    upper = name.upper()
    return (upper.startswith(WITHHELD_PREFIXES) or upper.endswith(WITHHELD_SUFFIXES)
            or any(part in upper for part in WITHHELD_PARTS))


def run_var_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The environment `${NAME}` in var defaults resolves from: ``env`` without what `withheld_from_runs` names."""
    return {name: value for name, value in env.items() if not withheld_from_runs(name)}


@dataclass(frozen=True)
class ApiSettings:
    """Everything `create_app` needs. Build it with `from_env` at the edge, or directly in tests.

    What the Temporal Web UI's address and the Slack bot token are comes from ``runtime``
    (`runtime.settings.Settings`: ``ui_url``, ``slack_bot_token``, ``slack_api_url``).
    """

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
    #: Where `POST /api/runs` may read a `file` from (ITERLOOP_API_FILE_DIRS); empty = the workflows dir.
    file_dirs: tuple[Path, ...] = ()
    #: Where `POST /api/runs` may read a `config` preset (and what it extends) from
    #: (ITERLOOP_API_PRESETS_DIR); None = the workflows dir.
    presets_dir: Path | None = None
    #: Whether `POST /api/runs` may carry `.iter` text (`source`), whose tool nodes run shell
    #: commands on the workers: off unless ITERLOOP_API_ALLOW_SOURCE=1.
    allow_source: bool = False
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    #: Model for nodes that leave `model:` empty, as for `iterloop run` (ITERLOOP_DEFAULT_MODEL).
    default_model: str = ""
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    slack_signing_secret: str = field(default="", repr=False)
    #: The environment `${NAME}` in var defaults is resolved from when the API starts a run (as the
    #: CLI does from its shell's): the API process's environment without the names
    #: `withheld_from_runs` matches (`run_var_environment`), captured by `from_env`.
    client_env: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def file_roots(self) -> tuple[Path, ...]:
        """The directories a request's `file` must be in (none: `file` is refused)."""
        if self.file_dirs:
            return self.file_dirs
        return (self.workflows_dir,) if self.workflows_dir is not None else ()

    @property
    def preset_root(self) -> Path | None:
        """The directory a request's `config` (and every file it extends) must be in."""
        return self.presets_dir or self.workflows_dir

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ApiSettings:
        e = os.environ if env is None else env
        tokens = (parse_tokens(e.get("ITERLOOP_API_TOKENS", ""), can_write=True, variable="ITERLOOP_API_TOKENS")
                  + parse_tokens(e.get("ITERLOOP_API_READ_TOKENS", ""), can_write=False,
                                 variable="ITERLOOP_API_READ_TOKENS"))
        secret = e.get("ITERLOOP_API_SESSION_SECRET", "")
        workflows_dir = e.get("ITERLOOP_WORKFLOWS_DIR", "")
        presets_dir = e.get("ITERLOOP_API_PRESETS_DIR", "")
        return cls(
            runtime=Settings.from_env(e),
            tokens=tuple(tokens),
            session_secret=secret.encode() if secret else secrets.token_bytes(32),
            session_hours=_number(e, "ITERLOOP_API_SESSION_HOURS", DEFAULT_SESSION_HOURS),
            workflows_dir=Path(workflows_dir) if workflows_dir else None,
            file_dirs=tuple(Path(d) for d in e.get("ITERLOOP_API_FILE_DIRS", "").split(os.pathsep) if d.strip()),
            presets_dir=Path(presets_dir) if presets_dir else None,
            allow_source=truthy(e.get("ITERLOOP_API_ALLOW_SOURCE")),
            max_body_bytes=int(_number(e, "ITERLOOP_API_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)),
            default_model=default_model_from_env(e),
            host=e.get("ITERLOOP_API_HOST") or DEFAULT_HOST,
            port=int(_number(e, "ITERLOOP_API_PORT", DEFAULT_PORT)),
            slack_signing_secret=e.get("ITERLOOP_SLACK_SIGNING_SECRET") or e.get("SLACK_SIGNING_SECRET", ""),
            client_env=run_var_environment(e),
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


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name, "")
    if not text:
        return default
    try:
        return float(text)
    except ValueError:
        raise ApiConfigError(f"{name} must be a number, got {text!r}") from None

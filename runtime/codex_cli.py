"""The Codex CLI (`codex`): which binary to run.

`make setup` installs the version the Makefile pins (CODEX_VERSION) into the checkout's
`.tools/node/` with npm, never globally; the `codex` delegation backend's tests run it against a
local fake of the Responses API (tests/activities/test_delegate_codex.py). Which binary wins:
`runtime.agent_cli.find_cli`.
"""

from __future__ import annotations

from pathlib import Path

from runtime.agent_cli import NODE_BIN, find_cli
from runtime.settings import Settings

#: Where `make setup` installs it (the Makefile's CODEX_DIR, plus npm's bin link).
LOCAL_INSTALL = NODE_BIN / "codex"


class CodexNotFound(Exception):
    """No usable `codex` binary; the message says where iterloop looked and how to get one."""


def find_codex_binary(settings: Settings, *, local_install: Path = LOCAL_INSTALL,
                      search_path: str | None = None) -> Path:
    """The `codex` binary to run (`runtime.agent_cli.find_cli`'s order)."""
    return find_cli("codex", "Codex CLI", configured=settings.codex_bin, setting="ITERLOOP_CODEX_BIN",
                    local_install=local_install, search_path=search_path, not_found=CodexNotFound,
                    install_hint="install it yourself (npm install -g @openai/codex), ")

"""The Claude Code CLI (`claude`): which binary to run.

`make setup` installs the version the Makefile pins (CLAUDE_CODE_VERSION) into the checkout's
`.tools/node/` with npm, never globally; the skill's acceptance test runs it against a local fake
of the Messages API (tests/e2e/test_skill_claude_code.py), and the `claude_code` delegation
backend runs it for a node (`activities/delegate/claude_code.py`). A user's own install on PATH
wins over the project-local one (it is the version they keep up to date and are logged in with);
ITERLOOP_CLAUDE_BIN wins over both. Tests that need the pinned version name `LOCAL_INSTALL`.
"""

from __future__ import annotations

from pathlib import Path

from runtime.agent_cli import NODE_BIN, find_cli
from runtime.settings import Settings

#: Where `make setup` installs it (the Makefile's CLAUDE_CODE_DIR, plus npm's bin link).
LOCAL_INSTALL = NODE_BIN / "claude"


class ClaudeCodeNotFound(Exception):
    """No usable `claude` binary; the message says where iterloop looked and how to get one."""


def find_claude_binary(settings: Settings, *, local_install: Path = LOCAL_INSTALL,
                       search_path: str | None = None) -> Path:
    """The `claude` binary to run (`runtime.agent_cli.find_cli`'s order)."""
    return find_cli("claude", "Claude Code CLI", configured=settings.claude_bin, setting="ITERLOOP_CLAUDE_BIN",
                    local_install=local_install, search_path=search_path, not_found=ClaudeCodeNotFound,
                    install_hint="")

"""The Claude Code CLI (`claude`): which binary to run.

`make setup` installs the version the Makefile pins (CLAUDE_CODE_VERSION) into the checkout's
`.tools/node/` with npm, never globally; the skill's acceptance test runs it against a local fake
of the Messages API (tests/e2e/test_skill_claude_code.py), and the `claude_code` delegation
backend runs it for a node (`activities/delegate/claude_code.py`). A user's own install on PATH
wins over the project-local one (it is the version they keep up to date and are logged in with);
ITERLOOP_CLAUDE_BIN wins over both. Tests that need the pinned version name `LOCAL_INSTALL`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from runtime.settings import Settings

#: Where `make setup` installs it (the Makefile's CLAUDE_CODE_DIR, plus npm's bin link).
LOCAL_INSTALL = Path(__file__).resolve().parents[1] / ".tools" / "node" / "node_modules" / ".bin" / "claude"


class ClaudeCodeNotFound(Exception):
    """No usable `claude` binary; the message says where iterloop looked and how to get one."""


def find_claude_binary(settings: Settings, *, local_install: Path = LOCAL_INSTALL,
                       search_path: str | None = None) -> Path:
    """The `claude` binary to run: ITERLOOP_CLAUDE_BIN, else `claude` on PATH, else the
    checkout's `make setup` install.

    An ITERLOOP_CLAUDE_BIN that names a missing or non-executable file is an error, never skipped:
    the user asked for that binary. ``search_path`` replaces $PATH (tests).
    """
    if settings.claude_bin:
        configured = Path(settings.claude_bin).expanduser()
        if not (configured.is_file() and os.access(configured, os.X_OK)):
            problem = "does not exist" if not configured.exists() else "is not an executable file"
            raise ClaudeCodeNotFound(
                f"ITERLOOP_CLAUDE_BIN is set to '{configured}', which {problem}; "
                "point it at a `claude` binary, or unset it to use the one `make setup` installs"
            )
        return configured
    on_path = shutil.which("claude", path=search_path)
    if on_path:
        return Path(on_path)
    # npm's bin entry is a symlink to the package's binary: resolving it checks the target is there.
    if local_install.exists() and os.access(local_install, os.X_OK):
        return local_install
    raise ClaudeCodeNotFound(
        f"the Claude Code CLI (`claude`) was not found in ITERLOOP_CLAUDE_BIN, PATH or {local_install}. "
        "Run `make setup` (installs the pinned version with npm into .tools/node/; needs Node.js and npm), "
        "or set ITERLOOP_CLAUDE_BIN to an existing `claude` binary"
    )

"""The Codex CLI (`codex`): which binary to run.

`make setup` installs the version the Makefile pins (CODEX_VERSION) into the checkout's
`.tools/node/` with npm, never globally; the `codex` delegation backend's tests run it against a
local fake of the Responses API (tests/activities/test_delegate_codex.py). Unlike Claude Code's
finder, a `codex` on PATH comes before the checkout's copy: a user who installed Codex (and logged
it in) chose that version for their nodes; the pinned copy is the fallback for a checkout without one.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from runtime.settings import Settings

#: Where `make setup` installs it (the Makefile's CODEX_DIR, plus npm's bin link).
LOCAL_INSTALL = Path(__file__).resolve().parents[1] / ".tools" / "node" / "node_modules" / ".bin" / "codex"


class CodexNotFound(Exception):
    """No usable `codex` binary; the message says where iterloop looked and how to get one."""


def find_codex_binary(settings: Settings, *, local_install: Path = LOCAL_INSTALL,
                      search_path: str | None = None) -> Path:
    """The `codex` binary to run: ITERLOOP_CODEX_BIN, else `codex` on PATH, else the checkout's
    `make setup` install.

    An ITERLOOP_CODEX_BIN that names a missing or non-executable file is an error, never skipped:
    the user asked for that binary. ``search_path`` replaces $PATH (tests).
    """
    if settings.codex_bin:
        configured = Path(settings.codex_bin).expanduser()
        if not (configured.is_file() and os.access(configured, os.X_OK)):
            problem = "does not exist" if not configured.exists() else "is not an executable file"
            raise CodexNotFound(
                f"ITERLOOP_CODEX_BIN is set to '{configured}', which {problem}; "
                "point it at a `codex` binary, or unset it to use the one on PATH or the one `make setup` installs"
            )
        return configured
    on_path = shutil.which("codex", path=search_path)
    if on_path:
        return Path(on_path)
    # npm's bin entry is a symlink to the package's launcher: resolving it checks the target is there.
    if local_install.exists() and os.access(local_install, os.X_OK):
        return local_install
    raise CodexNotFound(
        f"the Codex CLI (`codex`) was not found in ITERLOOP_CODEX_BIN, PATH or {local_install}. "
        "Run `make setup` (installs the pinned version with npm into .tools/node/; needs Node.js and npm), "
        "install it yourself (npm install -g @openai/codex), or set ITERLOOP_CODEX_BIN to an existing `codex` binary"
    )

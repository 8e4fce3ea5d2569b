"""Finding a coding agent's CLI (`claude`, `codex`): one rule for every delegation backend.

The setting (`ITERLOOP_CLAUDE_BIN`, `ITERLOOP_CODEX_BIN`) wins; then the user's own install on
PATH (the version they keep up to date and are logged in with); then the copy `make setup` pins
into the checkout's `.tools/node/`. A setting that names a missing or non-executable file is an
error, never skipped: the user asked for that binary.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

#: Where `make setup` installs the CLIs (npm's bin links under the Makefile's `.tools/node`).
NODE_BIN = Path(__file__).resolve().parents[1] / ".tools" / "node" / "node_modules" / ".bin"


def find_cli(program: str, label: str, *, configured: str, setting: str, local_install: Path, search_path: str | None,
             not_found: type[Exception], install_hint: str) -> Path:
    """The binary of ``program`` (``label``: its name for people, e.g. "Claude Code CLI"); ``not_found`` (with where iterloop looked and how to get one) if none.
    ``search_path`` replaces $PATH (tests); ``install_hint`` names a way besides `make setup`."""
    if configured:
        chosen = Path(configured).expanduser()
        if not (chosen.is_file() and os.access(chosen, os.X_OK)):
            problem = "does not exist" if not chosen.exists() else "is not an executable file"
            raise not_found(f"{setting} is set to '{chosen}', which {problem}; point it at a `{program}` binary, "
                            "or unset it to use the one on PATH or the one `make setup` installs")
        return chosen
    on_path = shutil.which(program, path=search_path)
    if on_path:
        return Path(on_path)
    # npm's bin entry is a symlink to the package's launcher: `exists` follows it, so the target is there.
    if local_install.exists() and os.access(local_install, os.X_OK):
        return local_install
    raise not_found(
        f"the {label} (`{program}`) was not found in {setting}, PATH or {local_install}. "
        "Run `make setup` (installs the pinned version with npm into .tools/node/; needs Node.js and npm), "
        f"{install_hint}or set {setting} to an existing `{program}` binary")

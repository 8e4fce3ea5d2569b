"""Reading a file a person names: regular files only, and never more than a limit.

A path on a command line or in a request can name anything: a FIFO (reading it waits forever for
a writer), a device (`/dev/zero` never ends, so reading it whole ends in a MemoryError), a
directory, or a file far larger than any workflow, preset or answers file. `read_limited` looks
at what the path is before opening it, opens it without blocking, checks again on the open file
(the path may have been swapped in between) and reads at most ``max_bytes`` + 1 bytes, so a bad
path is one clear error instead of a hang or a traceback.

Its errors are `OSError`s (`UnreadableFile`) whose ``strerror`` says what is wrong and what to
give instead, so every caller that already reports `cannot read 'x': <strerror>` reports these too.
This module is the language's because `dsl.check_file` reads `.iter` files with it; the runtime
reads presets, answers files and scripts with it as well.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

#: The extensions of workflow files, in order of preference: `.iter`, and current Iterion's `.bot`
#: (the same language; upstream's whole catalogue of bots uses it). Where a name is looked up
#: without its extension and both files exist, the first extension wins.
WORKFLOW_SUFFIXES: tuple[str, ...] = (".iter", ".bot")

#: The largest file iterloop reads as input: a workflow, a preset, an answers file. The largest
#: shipped workflow is about 20 KB, so 2 MB leaves room and still bounds memory and parse time.
MAX_FILE_BYTES = 2 * 1024 * 1024

#: The longest file name (one path component) most file systems accept (NAME_MAX); a longer one
#: cannot name a file, and asking the OS about it is ENAMETOOLONG.
MAX_NAME_BYTES = 255


class UnreadableFile(OSError):
    """A path iterloop refuses to read: not a regular file, too large, or a name too long."""

    def __init__(self, path: str | Path, reason: str, code: int = errno.EINVAL) -> None:
        super().__init__(code, reason, str(path))


def _kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def name_problem(path: str | Path) -> str | None:
    """Why ``path`` cannot name a file (a component longer than `MAX_NAME_BYTES`), or None."""
    for part in Path(path).parts:
        size = len(os.fsencode(part))
        if size > MAX_NAME_BYTES:
            return (f"a file name of {size} bytes is longer than the limit of {MAX_NAME_BYTES}; "
                    "give a shorter name")
    return None


def read_limited(path: str | Path, *, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of the regular file at ``path``; `UnreadableFile` for anything else or anything
    larger than ``max_bytes`` (other `OSError`s, such as a missing file, pass through)."""
    problem = name_problem(path)
    if problem is not None:
        raise UnreadableFile(path, problem, errno.ENAMETOOLONG)
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise UnreadableFile(path, f"it is {_kind(mode)}, not a regular file; give the path of a file",
                             errno.EISDIR if stat.S_ISDIR(mode) else errno.EINVAL)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if not stat.S_ISREG(mode):  # swapped for something else since the first look
            raise UnreadableFile(path, f"it is {_kind(mode)}, not a regular file; give the path of a file")
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise UnreadableFile(path, f"it is larger than the limit of {max_bytes:,} bytes; give a smaller file",
                             errno.EFBIG)
    return data


def is_workflow_path(path: str | Path) -> bool:
    """Whether ``path`` names a workflow file by its extension (`.iter` or `.bot`)."""
    return Path(path).suffix in WORKFLOW_SUFFIXES


def workflow_file(directory: Path, name: str) -> Path:
    """The workflow file called ``name`` in ``directory``: `name.iter`, else `name.bot`; the `.iter`
    path when neither exists (so a message names what was looked for first)."""
    for suffix in WORKFLOW_SUFFIXES:
        path = directory / f"{name}{suffix}"
        if path.is_file():
            return path
    return directory / f"{name}{WORKFLOW_SUFFIXES[0]}"


def workflow_files(directory: Path) -> list[Path]:
    """The workflow files directly in ``directory``, sorted, one per name (`x.iter` hides `x.bot`)."""
    found: dict[str, Path] = {}
    for suffix in WORKFLOW_SUFFIXES:
        for path in sorted(directory.glob(f"*{suffix}")):
            if path.is_file():
                found.setdefault(path.stem, path)
    return sorted(found.values())

"""What a delegation backend (one coding-agent CLI) implements.

`activities/delegate/activity.py` picks the backend the request names and gives it the binary the
worker found; each backend module (`claude_code.py`, `codex.py`) turns a `DelegateRequest` into its
CLI's arguments, reads the CLI's streamed JSON lines, and maps the final event to a
`DelegateResult`. ``on_step`` is called for every step as it streams, so the activity can heartbeat
the latest one (live progress in the Web UI) and keep a bounded list for the result.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from workflows.contract.delegation import DelegateRequest, DelegateResult, DelegateStep


class DelegateBackendRunner(Protocol):
    async def __call__(self, req: DelegateRequest, *, binary: Path,
                       on_step: Callable[[DelegateStep], None]) -> DelegateResult: ...

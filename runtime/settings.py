"""Configuration read once, at the edge (CLI, worker, API), and passed down as one typed object."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_ADDRESS = "localhost:7233"
DEFAULT_TASK_QUEUE = "iterloop"
TEMPORAL_CLI_VERSION = "1.5.1"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    """Where Temporal is and how iterloop uses it.

    ``address_configured`` is False when nobody said where the server is: then `iterloop run`
    starts (or reuses) the local dev server instead of failing.
    """

    address: str = DEFAULT_ADDRESS
    namespace: str = "default"
    task_queue: str = DEFAULT_TASK_QUEUE
    address_configured: bool = False
    home: Path = field(default_factory=lambda: Path(".iterloop"))
    temporal_bin: str | None = None
    offline: bool = False
    ui_port: int = 8233
    artifact_dir_override: Path | None = None

    @property
    def artifact_dir(self) -> Path:
        """Where workers store large node outputs (shared by all workers of a deployment)."""
        return self.artifact_dir_override or (self.home / "artifacts").resolve()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        address = e.get("TEMPORAL_ADDRESS", "")
        return cls(
            address=address or DEFAULT_ADDRESS,
            namespace=e.get("TEMPORAL_NAMESPACE") or "default",
            task_queue=e.get("ITERLOOP_TASK_QUEUE") or e.get("TEMPORAL_TASK_QUEUE") or DEFAULT_TASK_QUEUE,
            address_configured=bool(address),
            home=Path(e.get("ITERLOOP_HOME") or ".iterloop"),
            temporal_bin=e.get("ITERLOOP_TEMPORAL_BIN") or None,
            offline=_truthy(e.get("ITERLOOP_OFFLINE")),
            ui_port=int(e.get("ITERLOOP_UI_PORT") or 8233),
            artifact_dir_override=Path(e["ITERLOOP_ARTIFACT_DIR"]) if e.get("ITERLOOP_ARTIFACT_DIR") else None,
        )

    def with_overrides(self, *, address: str | None = None, namespace: str | None = None,
                       task_queue: str | None = None, offline: bool | None = None) -> Settings:
        s = self
        if address:
            s = replace(s, address=address, address_configured=True)
        if namespace:
            s = replace(s, namespace=namespace)
        if task_queue:
            s = replace(s, task_queue=task_queue)
        if offline is not None:
            s = replace(s, offline=offline)
        return s

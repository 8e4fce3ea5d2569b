"""The flag provider interface: what the growth loop's Executor asks of a feature-flag service.

An approved experiment becomes one flag, described by a `FlagSpec` (`activities.flags.models`).
Every provider answers with the same `Flag` model and keeps the same promises:

- **Created disabled.** `create_flag` never turns a flag on; launching is a separate, explicit
  `set_enabled(key, True)`, so nothing reaches users before the loop decides it should.
- **Idempotent.** Activities are retried, so `create_flag` may run twice for one decision.
  Creating a key that already exists with the same definition returns the existing flag with
  ``created=False``; a *different* definition for an existing key is a non-retryable
  `FlagConflictError` that says what differs (the description is not compared: it is prose).
- **Rollback is one call.** `rollback(key)` disables the flag and sends 100 % of traffic to the
  control variant (the variant named ``control``, else the first one).

Failures are `FlagError`s (`activities.errors`), which *are* Temporal `ApplicationError`s, so
activities can let them propagate: bad credentials, conflicts and bad requests are non-retryable
(the message says what to fix); rate limits are retried after the server's own delay
(``next_retry_delay``); outages are retried with the activity's backoff.

Providers read credentials from the worker's environment (never from settings, which travel
through workflow history), through the ``env`` mapping they are given (`ExternalService`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from activities.errors import ActivityError, FlagConfigError
from activities.external_service import ExternalService
from activities.flags.models import Flag, FlagSpec


class FlagProvider(ExternalService, ABC):
    """A feature-flag service. Subclasses set ``name``, a pydantic ``Settings`` model, and
    implement the five operations.

    ``settings`` come from the workflow's configuration (no secrets: they are in history);
    ``env`` is the worker's environment (default ``os.environ``), where credentials live.
    """

    name: ClassVar[str] = "flags"
    service_kind: ClassVar[str] = "flag provider"
    config_error: ClassVar[type[ActivityError]] = FlagConfigError
    detail_key: ClassVar[str] = "provider"

    @abstractmethod
    async def create_flag(self, spec: FlagSpec) -> Flag:
        """Create ``spec`` disabled; the existing flag (``created=False``) if it is already there."""

    @abstractmethod
    async def get_flag(self, key: str) -> Flag:
        """The flag named ``key``; `FlagNotFoundError` when there is none."""

    @abstractmethod
    async def set_enabled(self, key: str, enabled: bool) -> Flag: ...

    @abstractmethod
    async def rollback(self, key: str) -> Flag:
        """Disable the flag and put 100 % of traffic on control, in one operation."""

    @abstractmethod
    async def list_flags(self) -> list[Flag]: ...

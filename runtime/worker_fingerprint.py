"""What a worker must share with the run it serves: its kind (offline or real) and its model settings.

A background worker keeps the environment it was started with. So that a run is only ever executed
by a worker configured for it, the commands compare the *fingerprint* of the settings the run needs
(`caller_fingerprint`, from the caller's environment) with the one the worker was started with
(recorded in `.iterloop/worker.json`, and its digest in the worker's Temporal identity) and restart
or refuse a worker that differs (`runtime.background_workers`).

A fingerprint holds no secret: which model-key variables are set (names only, never values), the
base URLs and other model settings, and the values of the variables model strings read (`${MODEL}`):
model names. Offline runs use none of these (every model call is scripted), so their fingerprint is
the offline flag alone.

Offline runs never share a worker with real runs: a command starts them on their own task queue,
`offline_task_queue(queue)` (`<queue>-offline`), which only offline workers poll.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

#: The model layer's variables (`activities/llm/settings.py`; tests/test_run_workers.py
#: checks the lists match). Keys: only whether they are set counts, and only their names are kept.
MODEL_KEY_VARS = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY")
#: Settings whose values count (none is a secret).
MODEL_SETTING_VARS = ("ANTHROPIC_BASE_URL", "OPENAI_BASE_URL", "ITERLOOP_OPENAI_API", "ITERLOOP_PRICES_FILE",
                      "ITERLOOP_LLM_MAX_OUTPUT_TOKENS", "ITERLOOP_LLM_REQUEST_TIMEOUT", "ITERLOOP_PROMPT_CACHING")

OFFLINE_QUEUE_SUFFIX = "-offline"
_ENV_REF = re.compile(r"\$\{([^}]+)\}")


def offline_task_queue(task_queue: str) -> str:
    """The task queue of the offline runs started for ``task_queue`` (idempotent)."""
    return task_queue if is_offline_queue(task_queue) else task_queue + OFFLINE_QUEUE_SUFFIX


def is_offline_queue(task_queue: str) -> bool:
    return task_queue.endswith(OFFLINE_QUEUE_SUFFIX)


def run_task_queue(task_queue: str, *, offline: bool) -> str:
    """Where a command starts a run: offline (scripted) runs on their own queue, real runs on ``task_queue``."""
    return offline_task_queue(task_queue) if offline else task_queue


def model_variables(workflow: Any) -> list[str]:
    """The environment variables the workflow's model strings read (`model: "${MODEL}"`), sorted."""
    names: set[str] = set()

    def walk(value: Any, key: str = "") -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, str(k))
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif isinstance(value, str) and key.endswith("model") and "${" in value:
            names.update(ref.split(":-")[0].strip() for ref in _ENV_REF.findall(value))

    if workflow is not None:
        walk(workflow.model_dump(mode="json"))
    return sorted(n for n in names if n)


def _model_like(name: str) -> bool:
    return "MODEL" in name.upper()


@dataclass(frozen=True)
class WorkerFingerprint:
    """The settings of a worker that decide how it runs a run's model calls."""

    offline: bool
    model_keys: tuple[str, ...] = ()  # names of the model-key variables that are set
    settings: dict[str, str] = field(default_factory=dict)  # MODEL_SETTING_VARS that are set
    model_vars: dict[str, str] = field(default_factory=dict)  # MODEL-like variables and the ones models read

    def digest(self) -> str:
        """A short hash of everything but ``model_vars`` (published in the worker's Temporal identity,
        so any command can compare a worker it did not start)."""
        core = {"offline": self.offline, "model_keys": list(self.model_keys), "settings": self.settings}
        return hashlib.sha256(json.dumps(core, sort_keys=True).encode()).hexdigest()[:12]

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "model_keys": list(self.model_keys)}

    @classmethod
    def from_json(cls, data: Any) -> WorkerFingerprint | None:
        if not isinstance(data, dict):
            return None
        try:
            return cls(offline=bool(data["offline"]), model_keys=tuple(data.get("model_keys") or ()),
                       settings=dict(data.get("settings") or {}), model_vars=dict(data.get("model_vars") or {}))
        except (KeyError, TypeError, ValueError):
            return None

    def differences(self, worker: WorkerFingerprint) -> list[str]:
        """How ``worker`` (a worker's fingerprint) differs from this one (a caller's), in words that
        name variables, never a key's value."""
        if self.offline != worker.offline:
            return ["the worker is offline (scripted model) and the run is not" if worker.offline
                    else "the run is offline (scripted model) and the worker is not"]
        if self.offline:
            return []
        found = []
        for name in MODEL_KEY_VARS:
            if (name in self.model_keys) != (name in worker.model_keys):
                found.append(f"{name} is {'set' if name in self.model_keys else 'not set'} here and "
                             f"{'set' if name in worker.model_keys else 'not set'} in the worker")
        for name in sorted(set(self.settings) | set(worker.settings)):
            if self.settings.get(name) != worker.settings.get(name):
                found.append(f"{name} is {_shown(self.settings.get(name))} here and "
                             f"{_shown(worker.settings.get(name))} in the worker")
        for name in sorted(set(self.model_vars) | {n for n in worker.model_vars if _model_like(n)}):
            if name not in worker.model_vars and not _model_like(name):
                found.append(f"the worker was not started for {name} (read by a model string)")
            elif (self.model_vars.get(name) or None) != (worker.model_vars.get(name) or None):
                found.append(f"{name} is {_shown(self.model_vars.get(name) or None)} here and "
                             f"{_shown(worker.model_vars.get(name) or None)} in the worker")
        return found


def _shown(value: str | None) -> str:
    return "unset" if value is None else repr(value)


_SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH")


def _recorded(name: str, value: str) -> str:
    """What a fingerprint keeps of a variable a model string reads: the value (a model name), or, when
    the name looks like it holds a secret (`model: "${SOME_TOKEN}"` by mistake), only a digest of it,
    so the file and the worker's identity never hold the secret and a change is still noticed."""
    if any(word in name.upper() for word in _SECRET_WORDS):
        return "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:16]
    return value


def caller_fingerprint(env: Mapping[str, str], *, offline: bool, model_vars: Sequence[str] = ()) -> WorkerFingerprint:
    """The fingerprint a worker needs for a run from this environment (``model_vars``: the variables
    the run's model strings read)."""
    if offline:
        return WorkerFingerprint(offline=True)
    values = {n: _recorded(n, env[n]) for n in env if _model_like(n) and env[n].strip()}
    values.update({n: _recorded(n, env.get(n, "")) for n in model_vars if n not in values and env.get(n, "").strip()})
    return WorkerFingerprint(
        offline=False,
        model_keys=tuple(n for n in MODEL_KEY_VARS if (env.get(n) or "").strip()),
        settings={n: env[n].strip() for n in MODEL_SETTING_VARS if (env.get(n) or "").strip()},
        model_vars=values)


def worker_fingerprint(env: Mapping[str, str], *, offline: bool, model_vars: Sequence[str] = ()) -> WorkerFingerprint:
    """The fingerprint of a worker started with ``env`` (what it records): as `caller_fingerprint`,
    with every variable of ``model_vars`` recorded even when unset (as "")."""
    fp = caller_fingerprint(env, offline=offline, model_vars=model_vars)
    if offline:
        return fp
    return WorkerFingerprint(offline=False, model_keys=fp.model_keys, settings=fp.settings,
                             model_vars={**{n: "" for n in model_vars}, **fp.model_vars})


#: How a worker's Temporal identity carries its fingerprint: `PID@HOST iterloop:DIGEST`.
IDENTITY_MARK = "iterloop:"


def worker_identity(pid: int, host: str, fingerprint: WorkerFingerprint) -> str:
    return f"{pid}@{host} {IDENTITY_MARK}{fingerprint.digest()}"


def parse_identity(identity: str) -> tuple[int | None, str, str | None]:
    """(pid, host, digest) of a poller identity (`PID@HOST`, optionally with ` iterloop:DIGEST`)."""
    head, _, rest = identity.partition(" ")
    pid, _, host = head.partition("@")
    digest = rest[len(IDENTITY_MARK):] if rest.startswith(IDENTITY_MARK) else None
    return (int(pid) if pid.isdigit() else None), host, digest

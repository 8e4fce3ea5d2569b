"""Large outputs live in an artifact store; Temporal history only carries references.

Why: every activity result is written into the workflow's history, which Temporal caps (2 MiB per
payload, 50 MiB per history) and replays on every worker restart. So when a node's output is
larger than the run's threshold, the activity writes the whole output here and returns a *stub*:
the output's small top-level fields (the booleans conditions read, short strings) plus an
`$artifact` entry naming the stored object and the fields left out.

Workflow code never reads the store (that would be I/O). When a template needs an offloaded
value, the workflow passes a reference (`{"$artifact_ref": uri, "path": [...]}`, or the token
`⟦artifact:uri#path⟧` inside a prompt, see workflows/inputs.py) and the next activity resolves it
here, on the worker, just before use. Tokens are expanded only where the request lists them as
placed by the workflow (shell commands get none: their values travel as references).

The default store is a local directory (`.iterloop/artifacts`); an S3-compatible bucket can take
its place (`activities/artifact_stores.py`, chosen by the worker's settings). Either way objects are
content-addressed, so retries and replays that store the same output again write nothing new,
and references look the same (`artifact://<run>/<node>/<sha256>.json`).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

from activities.artifact_stores import URI_PREFIX, ArtifactStore, LocalArtifactStore
from activities.errors import BadRequestError
from workflows.contract.artifact_refs import ARTIFACT_KEY, ARTIFACT_REF_KEY, ARTIFACT_TOKEN_RE

__all__ = ["URI_PREFIX", "ArtifactStore", "LocalArtifactStore", "configure", "expand_tokens", "offload",
           "offload_async", "resolve", "resolve_async", "store"]

#: Fields at most this large (as JSON) stay inline in a stub.
INLINE_FIELD_BYTES = 1024

_store: ArtifactStore = LocalArtifactStore(Path(".iterloop/artifacts"))


def configure(store_or_root: ArtifactStore | Path) -> None:
    """Set by the worker before it starts polling (a directory means the local store there); the
    worker builds its store once with `artifact_stores.open_store` from its settings."""
    global _store
    _store = LocalArtifactStore(store_or_root) if isinstance(store_or_root, Path) else store_or_root


def store() -> ArtifactStore:
    return _store


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def offload(output: dict[str, Any], *, run_id: str, node_id: str, threshold: int) -> dict[str, Any]:
    """``output`` unchanged when small (or threshold is 0), else a stub referencing the stored whole.

    Every activity's output passes here, so this is where a reference is *recorded*: an output
    that already holds the reserved keys (a model's answer, a command's JSON) is refused, and a
    stub or reference in a run's outputs is always one this function wrote.
    """
    _refuse_reserved_keys(output, node_id)
    if threshold <= 0:
        return output
    data = _json_bytes(output)
    if len(data) <= threshold:
        return output
    uri = _store.put(run_id, node_id, data)
    stub: dict[str, Any] = {}
    left_out: list[str] = []
    for key, value in output.items():
        if len(_json_bytes(value)) <= INLINE_FIELD_BYTES:
            stub[key] = value
        else:
            left_out.append(key)
    stub[ARTIFACT_KEY] = {"uri": uri, "bytes": len(data), "fields": left_out}
    return stub


def _refuse_reserved_keys(value: Any, node_id: str) -> None:
    if isinstance(value, dict):
        for key in (ARTIFACT_KEY, ARTIFACT_REF_KEY):
            if key in value:
                raise BadRequestError(
                    f"node '{node_id}' produced an output holding the key {key!r}, which iterloop reserves for "
                    "references to stored outputs (a forged one could read another stored output); rename the key")
        for item in value.values():
            _refuse_reserved_keys(item, node_id)
    elif isinstance(value, list):
        for item in value:
            _refuse_reserved_keys(item, node_id)


def _load(uri: str, cache: dict[str, Any]) -> Any:
    if uri not in cache:
        cache[uri] = json.loads(_store.get(uri))
    return cache[uri]


def _follow(value: Any, path: list[str]) -> Any:
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def resolve(value: Any, cache: dict[str, Any] | None = None, *, tokens: Collection[str] = ()) -> Any:
    """Replace every stub and reference inside ``value`` by the stored data (recursively).

    References are recognised by structure only (`{"$artifact_ref": …}`, a stub's `$artifact`).
    Text is searched for `⟦artifact:…⟧` tokens only for the exact ``tokens`` the workflow says it
    placed in this request: a value that merely contains a token look-alike (a run input, a model's
    answer, a stored output) never makes an activity read another artifact.
    """
    cache = {} if cache is None else cache
    if isinstance(value, dict):
        if ARTIFACT_REF_KEY in value:
            return resolve(_follow(_load(value[ARTIFACT_REF_KEY], cache), list(value.get("path", []))), cache)
        if ARTIFACT_KEY in value and isinstance(value[ARTIFACT_KEY], dict):
            return resolve(_load(value[ARTIFACT_KEY]["uri"], cache), cache)
        return {k: resolve(v, cache, tokens=tokens) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, cache, tokens=tokens) for v in value]
    if isinstance(value, str) and tokens:
        return expand_tokens(value, tokens, cache=cache)
    return value


async def offload_async(output: dict[str, Any], *, run_id: str, node_id: str, threshold: int) -> dict[str, Any]:
    """`offload` for activities: a remote store's network calls (bounded, but seconds at worst) run in
    a thread, so the worker's event loop keeps serving heartbeats and other activities meanwhile."""
    if isinstance(_store, LocalArtifactStore):
        return offload(output, run_id=run_id, node_id=node_id, threshold=threshold)
    return await asyncio.to_thread(offload, output, run_id=run_id, node_id=node_id, threshold=threshold)


async def resolve_async(value: Any, cache: dict[str, Any] | None = None, *, tokens: Collection[str] = ()) -> Any:
    """`resolve` for activities, off the event loop when the store is remote (see `offload_async`)."""
    if isinstance(_store, LocalArtifactStore):
        return resolve(value, cache, tokens=tokens)
    return await asyncio.to_thread(resolve, value, cache, tokens=tokens)


def expand_tokens(text: str, tokens: Collection[str], *, cache: dict[str, Any] | None = None) -> str:
    """Replace the `⟦artifact:uri#a.b⟧` tokens of ``text`` that are in ``tokens`` by the referenced
    value as text; any other token-shaped text stays as it is. Stored data read this way is not
    searched for tokens again."""
    cache = {} if cache is None else cache
    allowed = frozenset(tokens)

    def replace(match: re.Match[str]) -> str:
        if match.group(0) not in allowed:
            return match.group(0)
        uri, _, path = match.group(1).partition("#")
        value = resolve(_follow(_load(uri, cache), [p for p in path.split(".") if p]), cache)
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)

    return ARTIFACT_TOKEN_RE.sub(replace, text)

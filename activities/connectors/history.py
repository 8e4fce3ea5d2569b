"""The learning history: finished experiments and their verdicts, read from a JSON file.

Analytics tools do not store verdicts, so by default a connector's `historical_experiments`
comes from its ``history_file`` setting; the warehouse can query a table instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from pydantic import ValidationError

from activities.connectors.models import HistoricalExperiment
from activities.errors import ConnectorConfigError


def load_history_file(path: str | Path) -> list[HistoricalExperiment]:
    """The experiments in ``path``: a list, or an object holding one under ``historical_experiments``
    (the mock dataset's layout). A missing or malformed file is a `ConnectorConfigError`."""
    p = Path(path).expanduser()
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConnectorConfigError(f"history_file {str(p)!r} does not exist") from None
    except ValueError as e:
        raise ConnectorConfigError(f"history_file {str(p)!r} is not valid JSON: {e}") from None
    items = raw.get("historical_experiments", raw) if isinstance(raw, dict) else raw
    try:
        return [HistoricalExperiment.model_validate(item) for item in items]
    except (ValidationError, TypeError) as e:
        raise ConnectorConfigError(f"history_file {str(p)!r} does not hold a list of experiments: {e}") from None


def select_history(items: Iterable[HistoricalExperiment], *, limit: int, metric: str | None) -> list[HistoricalExperiment]:
    """Filter by metric, newest (by end date) first, at most ``limit``."""
    chosen = [h for h in items if metric is None or h.metric == metric]
    chosen.sort(key=lambda h: (h.ended, h.key), reverse=True)
    return chosen[: max(limit, 0)]

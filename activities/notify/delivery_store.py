"""What each notification target already got, so a retried activity does not post twice.

The `iterloop.notify` activity is retried as a whole; without memory, a webhook that failed after
the Slack post went through would post the Slack message again on the next attempt. Each target's
outcome (delivered, or refused for good) is recorded under the notification's key and skipped on
later attempts. Slack has no idempotency key, so this store is what makes its post happen once;
webhooks also carry the key as `Idempotency-Key` for receivers that deduplicate.

The store is a small SQLite file. Workers of one deployment should share it (put it on the same
volume as the artifact store) because a retry may run on another worker. Entries older than
`KEEP` are dropped: activity retries never span that long.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path

from activities.notify.errors import Outcome

KEEP_SECONDS = 30 * 24 * 3600

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    key TEXT NOT NULL,
    target TEXT NOT NULL,
    delivered INTEGER NOT NULL,
    detail TEXT NOT NULL,
    recorded_at REAL NOT NULL,
    PRIMARY KEY (key, target)
)
"""


class DeliveryStore:
    """Outcomes by (notification key, target). ``path=None`` keeps them in memory (tests, one process)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._memory: dict[tuple[str, str], Outcome] = {}
        self._ready = False  # the file is created on first use: most workers never notify

    def _connect(self) -> sqlite3.Connection:
        assert self.path is not None
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # Several worker processes may share the file: wait for a writer instead of failing.
        db = sqlite3.connect(self.path, timeout=10)
        if not self._ready:
            with db:
                db.execute(_SCHEMA)
                db.execute("DELETE FROM deliveries WHERE recorded_at < ?", (time.time() - KEEP_SECONDS,))
            self._ready = True
        return db

    def get(self, key: str, target: str) -> Outcome | None:
        if self.path is None:
            return self._memory.get((key, target))
        with closing(self._connect()) as db:
            row = db.execute("SELECT delivered, detail FROM deliveries WHERE key = ? AND target = ?",
                             (key, target)).fetchone()
        return Outcome(target, bool(row[0]), row[1]) if row else None

    def put(self, key: str, outcome: Outcome) -> None:
        if self.path is None:
            self._memory[(key, outcome.target)] = outcome
            return
        with closing(self._connect()) as db, db:
            db.execute("INSERT OR REPLACE INTO deliveries VALUES (?, ?, ?, ?, ?)",
                       (key, outcome.target, int(outcome.delivered), outcome.detail, time.time()))

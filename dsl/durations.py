"""Durations as written in `.iter` files: Go's syntax ("1h30m", "1.5h", "90s", "250ms") plus days ("7d").

Iterion interprets `max_duration` with Go's parser; iterloop adds `d` because experiment
monitoring cadences are measured in days.
"""

from __future__ import annotations

import re

_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d)")


def parse_duration(text: str) -> float | None:
    """Seconds, or None if ``text`` is not a duration. "0" alone is zero, as in Go."""
    s = text.strip()
    if s == "0":
        return 0.0
    if not s:
        return None
    pos, total = 0, 0.0
    while pos < len(s):
        m = _PART.match(s, pos)
        if m is None:
            return None
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    return total


def format_duration(seconds: float) -> str:
    """Short human form, e.g. 5400 → "1h30m"."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    parts = []
    rest = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts) or "0s"

"""The one exception the statistics functions raise for unusable input."""

from __future__ import annotations


class StatsInputError(ValueError):
    """The numbers cannot support the requested computation.

    Raised before any statistics are computed, with a message naming the field, what was expected,
    what was found and how to fix it. It is a ``ValueError`` so tool callers that already turn
    ``ValueError`` into a bad-request answer need nothing new.
    """

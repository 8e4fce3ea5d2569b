"""What model calls cost in USD.

Prices come from the `genai-prices` package (a maintained price table shipped as data, with tiered
prices such as Anthropic's long-context rates), unless the user's price file names the model:

    # ITERLOOP_PRICES_FILE=prices.yaml (YAML or JSON); USD per million tokens
    models:
      anthropic/claude-sonnet-4-5:     # or the bare model name: claude-sonnet-4-5
        input: 3.00                    # uncached prompt tokens
        output: 15.00                  # output tokens (reasoning included)
        cached_input: 0.30             # prompt tokens read from the cache (default: input)
        cache_write: 3.75              # prompt tokens written to the cache (default: input)
      openai/my-local-llama: {input: 0, output: 0}

The file wins over the shipped table and is re-read when it changes. A model found in neither
costs 0 USD, with one warning in the worker's log per model (never a failure: a run must not die
because a price is missing, but its cost budget then ignores that model).

The worker checks the file when it starts (`price_table`: a broken file stops it there). After
that, a turn prices its call with `turn_price_table`: if the file has since been deleted or broken,
the last table that loaded keeps being used, with one warning per broken version of the file. The
call has been made and paid for by then; failing the turn over its price would only make the
workflow pay for it again.

``cache_savings_usd`` is what the cached tokens would have cost at the full input price minus
what they cost (cache writes are not savings, and their premium is part of ``cost_usd``).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import genai_prices

from activities.llm.provider import TokenCounts, model_id
from workflows.contract.data_files import read_data_file

log = logging.getLogger("iterloop.llm.pricing")

MILLION = Decimal(1_000_000)
_PRICE_KEYS = ("input", "output", "cached_input", "cache_write")


class PriceFileError(ValueError):
    """The price file cannot be read or does not have the documented shape; the message says where."""


@dataclass(frozen=True)
class ModelPrices:
    """USD per million tokens."""

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None

    def cost(self, t: TokenCounts) -> tuple[Decimal, Decimal]:
        cached = self.input if self.cached_input is None else self.cached_input
        write = self.input if self.cache_write is None else self.cache_write
        uncached = max(t.input_tokens - t.cached_tokens - t.cache_write_tokens, 0)
        total = (uncached * self.input + t.cached_tokens * cached + t.cache_write_tokens * write
                 + t.output_tokens * self.output) / MILLION
        return total, t.cached_tokens * (self.input - cached) / MILLION


@dataclass(frozen=True)
class Cost:
    usd: float
    cache_savings_usd: float
    source: str  # "override", "genai-prices" or "unknown"


class PriceTable:
    """The user's overrides on top of the shipped table."""

    def __init__(self, overrides: dict[str, ModelPrices] | None = None, source: Path | None = None) -> None:
        self.overrides = {k.lower(): v for k, v in (overrides or {}).items()}
        self.source = source

    @classmethod
    def load(cls, path: Path) -> PriceTable:
        data = read_data_file(path, what="price file", missing_hint="fix ITERLOOP_PRICES_FILE", error=PriceFileError)
        return cls(_parse(data, path), path)

    def cost(self, provider: str, model: str, tokens: TokenCounts) -> Cost:
        bare = model_id(model)
        names = (model, f"{provider}/{bare}", bare)
        prices = next((self.overrides[n.lower()] for n in names if n.lower() in self.overrides), None)
        if prices is not None:
            usd, saved = prices.cost(tokens)
            return Cost(float(usd), float(saved), "override")
        shipped = _shipped_cost(provider, bare, tokens)
        if shipped is not None:
            return shipped
        _warn_unknown(provider, model, self.source)
        return Cost(0.0, 0.0, "unknown")


def _parse(data: Any, path: Path) -> dict[str, ModelPrices]:
    if data is None:
        return {}
    if not isinstance(data, dict) or set(data) != {"models"} or not isinstance(data["models"], dict):
        raise PriceFileError(f"price file '{path}': expected a mapping with one key, 'models', mapping model names "
                             "to {input, output, cached_input, cache_write} in USD per million tokens")
    out: dict[str, ModelPrices] = {}
    for name, entry in data["models"].items():
        where = f"price file '{path}', model '{name}'"
        if not isinstance(entry, dict):
            raise PriceFileError(f"{where}: expected a mapping of prices, found {type(entry).__name__}")
        unknown = sorted(set(entry) - set(_PRICE_KEYS))
        if unknown:
            raise PriceFileError(f"{where}: unknown key '{unknown[0]}'; expected {', '.join(_PRICE_KEYS)}")
        for key in ("input", "output"):
            if key not in entry:
                raise PriceFileError(f"{where}: '{key}' is missing (USD per million tokens)")
        values: dict[str, Decimal] = {}
        for key, value in entry.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise PriceFileError(f"{where}: '{key}' must be a non-negative number of USD per million tokens, "
                                     f"found {value!r}")
            values[key] = Decimal(str(value))
        out[str(name)] = ModelPrices(**values)
    return out


def _shipped_cost(provider: str, model: str, tokens: TokenCounts) -> Cost | None:
    usage = genai_prices.Usage(input_tokens=tokens.input_tokens, output_tokens=tokens.output_tokens,
                               cache_read_tokens=tokens.cached_tokens, cache_write_tokens=tokens.cache_write_tokens)
    try:
        priced = genai_prices.calc_price(usage, model, provider_id=provider)
    except LookupError:
        return None
    saved = Decimal(0)
    if tokens.cached_tokens:
        full = genai_prices.Usage(input_tokens=tokens.input_tokens, output_tokens=tokens.output_tokens,
                                  cache_read_tokens=0, cache_write_tokens=tokens.cache_write_tokens)
        saved = genai_prices.calc_price(full, model, provider_id=provider).total_price - priced.total_price
    return Cost(float(priced.total_price), float(saved), "genai-prices")


_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


def _warn_unknown(provider: str, model: str, source: Path | None) -> None:
    with _warned_lock:
        if (provider, model) in _warned:
            return
        _warned.add((provider, model))
    where = f"the price file '{source}'" if source else "a price file (ITERLOOP_PRICES_FILE)"
    log.warning("no price known for %s model %r: its calls count as 0 USD (cost budgets ignore them); "
                "add the model to %s", provider, model, where)


_tables: dict[Path | None, tuple[int, PriceTable]] = {}
_tables_lock = threading.Lock()


#: Price files that failed to load: path → (the broken version's mtime, what was wrong).
_broken: dict[Path, tuple[int, str]] = {}


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return -1


def price_table(path: Path | None) -> PriceTable:
    """The table for ``path`` (None: the shipped table only), re-read when the file changes;
    a missing or broken file raises `PriceFileError` (the worker's start-up check)."""
    if path is None:
        return PriceTable()
    mtime = _mtime(path)
    with _tables_lock:
        cached = _tables.get(path)
        if cached is not None and cached[0] == mtime:
            return cached[1]
    table = PriceTable.load(path)
    with _tables_lock:
        _tables[path] = (mtime, table)
        _broken.pop(path, None)
    return table


def turn_price_table(path: Path | None) -> PriceTable:
    """The table a turn prices its call with: `price_table`, except that a file deleted or broken
    since it last loaded never fails the turn. The last table that loaded is used instead (the
    shipped table alone if none ever did), and the worker's log says so once per broken version."""
    if path is None:
        return PriceTable()
    mtime = _mtime(path)
    with _tables_lock:
        known_broken = _broken.get(path)
        last = _tables.get(path)
    if known_broken is None or known_broken[0] != mtime:
        try:
            return price_table(path)
        except PriceFileError as e:
            with _tables_lock:
                _broken[path] = (mtime, str(e))
            log.warning("%s; pricing calls with %s until the file is fixed", e,
                        "the prices it held when it last loaded" if last else "the shipped price table only")
    return last[1] if last is not None else PriceTable(source=path)

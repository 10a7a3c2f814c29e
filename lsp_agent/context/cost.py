"""Prices and cost accounting: one price table, per-model usage, USD per turn and per session.

Prices are USD per million tokens. Cache writes (5-minute TTL) cost 1.25x the input price and
cache reads 0.1x; the savings reported are what the same tokens would have cost as plain input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lsp_agent.types import events as ev
    from lsp_agent.types.events import SessionCost, Usage
else:  # the event models load with the first use, not with the model client (types/lazy.py)
    from lsp_agent.types.lazy import events as ev

CACHE_WRITE_FACTOR = 1.25
CACHE_READ_FACTOR = 0.1


@dataclass(frozen=True)
class Price:
    input: float
    output: float

    @property
    def cache_write(self) -> float:
        return self.input * CACHE_WRITE_FACTOR

    @property
    def cache_read(self) -> float:
        return self.input * CACHE_READ_FACTOR


# Longest matching prefix wins; dated model ids ("claude-sonnet-4-5-20250929") match too.
PRICES: dict[str, Price] = {
    "claude-opus-4-5": Price(5.0, 25.0),
    "claude-opus-4": Price(15.0, 75.0),
    "claude-sonnet-4": Price(3.0, 15.0),
    "claude-3-7-sonnet": Price(3.0, 15.0),
    "claude-3-5-sonnet": Price(3.0, 15.0),
    "claude-haiku-4": Price(1.0, 5.0),
    "claude-3-5-haiku": Price(0.8, 4.0),
    "claude-3-haiku": Price(0.25, 1.25),
}


def price_for(model: str, table: dict[str, Price] | None = None) -> Price | None:
    table = PRICES if table is None else table
    matches = [prefix for prefix in table if model.startswith(prefix)]
    return table[max(matches, key=len)] if matches else None


def usd(usage: Usage, price: Price) -> float:
    return (usage.input_tokens * price.input + usage.output_tokens * price.output
            + usage.cache_creation_input_tokens * price.cache_write
            + usage.cache_read_input_tokens * price.cache_read) / 1_000_000


def cache_savings(usage: Usage, price: Price) -> float:
    """Plain-input price of the cached tokens minus what caching them actually cost."""
    plain = (usage.cache_read_input_tokens + usage.cache_creation_input_tokens) * price.input
    paid = (usage.cache_read_input_tokens * price.cache_read
            + usage.cache_creation_input_tokens * price.cache_write)
    return (plain - paid) / 1_000_000


class CostLedger:
    """Usage per model; ``summary()`` prices it. Unknown models count tokens but no dollars."""

    def __init__(self, table: dict[str, Price] | None = None) -> None:
        self._table = table
        self._usage: dict[str, Usage] = {}

    def add(self, model: str, usage: Usage) -> None:
        self._usage[model] = self._usage.get(model, ev.Usage()) + usage

    def summary(self) -> SessionCost:
        rows = []
        for model, usage in sorted(self._usage.items()):
            price = price_for(model, self._table)
            rows.append(ev.ModelCost(
                model=model, usage=usage, priced=price is not None,
                usd=round(usd(usage, price), 6) if price else 0.0,
                cache_savings_usd=round(cache_savings(usage, price), 6) if price else 0.0))
        return ev.SessionCost(
            usd=round(sum(r.usd for r in rows), 6),
            cache_savings_usd=round(sum(r.cache_savings_usd for r in rows), 6),
            by_model=rows)

"""Cost estimates from token counts and the per-model price table in the settings."""

from __future__ import annotations

from collections.abc import Mapping

PER_TOKENS = 1_000_000


def price_for(prices: Mapping[str, tuple[float, float]], model: str) -> tuple[float, float] | None:
    """The (input, output) price of `model`, matching dated names to their family
    ("claude-sonnet-4-5-20250929" costs what "claude-sonnet-4-5" does)."""
    if model in prices:
        return prices[model]
    family = max((name for name in prices if model.startswith(name + "-")), key=len, default=None)
    return prices[family] if family else None


def estimate_cost(
    prices: Mapping[str, tuple[float, float]], model: str, input_tokens: int, output_tokens: int
) -> float | None:
    """US dollars for one call, or None when the model has no price in the table."""
    price = price_for(prices, model)
    if price is None:
        return None
    return (input_tokens * price[0] + output_tokens * price[1]) / PER_TOKENS

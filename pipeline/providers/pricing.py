"""Estimated cost of LM calls, in USD, from a price table.

Defaults are public list prices per million tokens (2025, standard tier, prompts under
200k tokens); a provider's `price` table in po.toml overrides them. Local models and
Ollama cost nothing here (the machine's time is not priced).
"""

from __future__ import annotations

DEFAULT_PRICES: dict[str, tuple[float, float]] = {  # model prefix -> (input, output) per 1M tokens
    "gemini-2.5-pro": (1.25, 10.00),
    "gemini-2.5-flash-lite": (0.10, 0.40),
    "gemini-2.5-flash": (0.30, 2.50),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
}


def price_for(kind: str, model: str | None, configured: dict | None) -> tuple[float, float] | None:
    """(input, output) USD per 1M tokens, or None when unknown (cost then shows as unknown)."""
    if configured:
        return configured["input_per_million"], configured["output_per_million"]
    if kind in ("local", "ollama"):
        return 0.0, 0.0
    for prefix, price in DEFAULT_PRICES.items():  # longest prefixes are listed first
        if model and model.split("/")[-1].startswith(prefix):
            return price
    return None


def cost(price: tuple[float, float] | None, input_tokens: int, output_tokens: int) -> float | None:
    if price is None:
        return None
    return (input_tokens * price[0] + output_tokens * price[1]) / 1_000_000

"""Model prices (US dollars per million tokens) and cost estimates from token usage.

The defaults are OpenAI's published list prices for the current models as of 2026-06; prices
change, so `defaults.prices` in agents.yaml (and `prices` in an experiment file) override them.
Models without a price get no estimate rather than a wrong one; the offline model costs nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

from app.config.models import Price

DEFAULT_PRICES: dict[str, Price] = {
    "gpt-5.6-sol": Price(input=5.00, output=30.00),
    "gpt-5.6-terra": Price(input=2.50, output=15.00),
    "gpt-5.6-luna": Price(input=1.00, output=6.00, cached_input=0.10),
}


class PriceTable:
    """Prices by model name: the defaults, overridden by each mapping given, later ones winning."""

    def __init__(self, *overrides: Mapping[str, Price]) -> None:
        self.prices = dict(DEFAULT_PRICES)
        for override in overrides:
            self.prices.update(override)

    def price(self, model: str) -> Price | None:
        """The price of a model; dated snapshots (`gpt-5.6-luna-2026-06-26`) use their family's price."""
        name = model.removeprefix("openai/")
        if name in self.prices:
            return self.prices[name]
        family = [known for known in self.prices if name.startswith(known + "-")]
        return self.prices[max(family, key=len)] if family else None

    def cost(self, model: str | None, usage: Mapping[str, int] | None) -> float | None:
        """Estimated dollars for the usage; None when the model has no price. `model=None` is the offline model."""
        if model is None:
            return 0.0
        price = self.price(model)
        if price is None:
            return None
        if not usage:
            return 0.0  # a run that failed before any model answer
        cached = usage.get("cached_input_tokens", 0) if price.cached_input is not None else 0
        fresh = usage.get("input_tokens", 0) - cached
        total = (
            fresh * price.input + cached * (price.cached_input or 0.0) + usage.get("output_tokens", 0) * price.output
        )
        return total / 1_000_000

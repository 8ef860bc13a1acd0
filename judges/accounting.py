"""Judge accounting (calls, retries, cache hits, failures, tokens, estimated spend) and progress bar."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from tqdm import tqdm

# USD per 1M tokens (input, output), list prices as published by OpenAI (checked 2025). Estimates only:
# cached-input discounts and batch pricing are ignored. Unknown models -> cost None, never a guess.
PRICES_PER_MTOK: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-2024-05-13": (5.00, 15.00),
    "gpt-4o-2024-08-06": (2.50, 10.00),
    "gpt-4o-2024-11-20": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o-mini-2024-07-18": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-2025-04-14": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-mini-2025-04-14": (0.40, 1.60),
    "gpt-4-turbo-2024-04-09": (10.00, 30.00),
}


def price_for(model: str | None, override: tuple[float, float] | None = None) -> tuple[float, float] | None:
    return override if override is not None else PRICES_PER_MTOK.get(model or "")


@dataclass
class Accounting:
    judge: str
    provider: str
    model: str | None
    price: tuple[float, float] | None = None  # USD per 1M (input, output) tokens
    requests: int = 0
    calls: int = 0  # HTTP calls / generations actually made, retries included
    retries: int = 0
    cache_hits: int = 0
    errors: int = 0
    unparseable: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    invalid_usage: int = 0  # replies whose token counts were no counts (NaN, Infinity, ...): counted as 0
    prompt_sha256: dict[str, str] = field(default_factory=dict)
    served_models: set[str] = field(default_factory=set)

    @property
    def cost_usd(self) -> float | None:
        if self.price is None:
            return None
        return (self.prompt_tokens * self.price[0] + self.completion_tokens * self.price[1]) / 1e6

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("price")
        d["served_models"] = sorted(self.served_models)
        d["cost_usd"] = None if self.cost_usd is None else round(self.cost_usd, 6)
        d["price_per_mtok"] = None if self.price is None else list(self.price)
        return d


class Progress:
    """tqdm bar whose postfix shows cached / failed counts and estimated spend."""

    def __init__(self, total: int, desc: str, acct: Accounting, enabled: bool) -> None:
        self.acct = acct
        self.cached = self.failed = 0
        self.bar = tqdm(total=total, desc=desc, disable=not enabled, unit="req", dynamic_ncols=True)

    def update(self, *, cached: bool = False, failed: bool = False) -> None:
        self.cached += cached
        self.failed += failed
        cost = self.acct.cost_usd
        self.bar.set_postfix_str(
            f"cached={self.cached} failed={self.failed} spend={'n/a' if cost is None else f'${cost:.4f}'}",
            refresh=False,
        )
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()

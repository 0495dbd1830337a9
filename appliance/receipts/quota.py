"""Staying under Gmail's per-user quota: a budget of quota units per second per mailbox (a cell-rate
algorithm on Trio's clock), and exponential backoff with jitter when Google says slow down anyway.

Gmail charges quota units per call (a message read is 5, a list 5, a history page 2) and allows about 250
units a second per user; ``GMAIL_QUOTA_UNITS`` (240) keeps just under that, so a sync paces itself rather
than collecting 429s.
"""

from __future__ import annotations

import random

import trio

from appliance.services import Services

COST = {"get": 5, "list": 5, "history": 2, "attachment": 5, "profile": 1}
BACKOFF_FIRST = 1.0
BACKOFF_CAP = 32.0


class Budget:
    """``await spend(units)`` returns when spending them keeps the mailbox under ``rate`` units a second,
    with bursts up to ``burst`` units (one batch of 25 reads: spending evenly leaves Google's own window
    room for requests that arrive bunched up)."""

    def __init__(self, rate: float, burst: float = 125.0) -> None:
        self.rate = rate
        self.tolerance = burst / rate
        self._tat = 0.0  # theoretical arrival time of the next unit (GCRA)
        self._lock = trio.Lock()

    async def spend(self, units: float) -> None:
        async with self._lock:
            now = trio.current_time()
            tat = max(self._tat, now) + units / self.rate
            wait = tat - self.tolerance - now
            self._tat = tat
            if wait > 0:
                await trio.sleep(wait)


def budget_for(services: Services, business_id: int) -> Budget:
    """One budget per mailbox in this process (one run per business at a time, enforced elsewhere),
    kept in the role's ``services.local``."""
    budgets: dict[int, Budget] = services.local.setdefault("receipts.budgets", {})
    if business_id not in budgets:
        budgets[business_id] = Budget(services.settings.gmail_quota_units)
    return budgets[business_id]


def backoff_delay(attempt: int, retry_after: float | None = None, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry ``attempt`` (1, 2, ...): Retry-After if given, else jittered 2^n."""
    if retry_after is not None and retry_after > 0:
        return min(BACKOFF_CAP, retry_after)
    ceiling = min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** (attempt - 1))
    return (rng or random).uniform(ceiling / 2, ceiling)

"""Brute-force limits on ``POST /api/auth/login``: an exponential delay per account and per client address.

After ``free`` failed attempts, each further attempt must wait 1, 2, 4, 8 ... seconds after the last
failure (``429`` with ``Retry-After``), whether its password is right or not. The account's delay stops
growing at one minute, so an attacker can guess about once a minute per account but never locks its real
user out for longer than that; an address that keeps failing (many accounts from one place) waits up to
15 minutes. Failures are forgotten 15 minutes after the last one, and a successful login clears its
account's count. The counts live in Redis, so every API process shares them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from appliance.keys import Keys
from appliance.redis import Redis

FORGET_AFTER = 15 * 60


@dataclass(frozen=True)
class Limit:
    scope: str
    free: int  # failures allowed before any delay
    max_delay: float  # seconds


ACCOUNT = Limit("account", free=5, max_delay=60)
ADDRESS = Limit("address", free=20, max_delay=15 * 60)


def delay_after(failures: int, limit: Limit) -> float:
    if failures < limit.free:
        return 0.0
    return float(min(limit.max_delay, 2 ** (failures - limit.free)))


class LoginLimits:
    def __init__(self, redis: Redis, keys: Keys, clock: Callable[[], float] = time.time) -> None:
        self.redis = redis
        self.keys = keys
        self.clock = clock

    def _targets(self, email: str, address: str) -> list[tuple[str, Limit]]:
        return [(self.keys.login_failures(ACCOUNT.scope, email.strip().lower()), ACCOUNT),
                (self.keys.login_failures(ADDRESS.scope, address), ADDRESS)]

    async def retry_after(self, email: str, address: str) -> int:
        """Seconds this attempt must still wait (0: go ahead)."""
        now = self.clock()
        wait = 0.0
        for key, limit in self._targets(email, address):
            n, last = await self.redis.hmget(key, ["n", "last"])
            if n is not None and last is not None:
                wait = max(wait, float(last) + delay_after(int(n), limit) - now)
        return math.ceil(wait) if wait > 0 else 0

    async def failed(self, email: str, address: str) -> None:
        now = repr(self.clock())
        for key, _ in self._targets(email, address):
            await self.redis.hincrby(key, "n", 1)
            await self.redis.hset(key, {"last": now})
            await self.redis.expire(key, FORGET_AFTER)

    async def succeeded(self, email: str) -> None:
        await self.redis.delete([self.keys.login_failures(ACCOUNT.scope, email.strip().lower())])

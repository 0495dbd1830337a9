"""Lease locks in Redis: held by one token, expiring when the holder dies, released only by the holder.

``async with hold(redis, keys, "gmail-sync:42", ttl=30):`` takes the lock or raises LockHeldError, renews
it every ttl/3 while the body runs, and releases it at the end.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
from coredis.tokens import PureToken

from appliance.keys import Keys
from appliance.redis import Redis

RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
EXTEND = ("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end "
          "return 0")


class LockHeldError(Exception):
    """Someone else holds the lock."""


class LeaseLock:
    def __init__(self, redis: Redis, keys: Keys, name: str, ttl: float) -> None:
        self.redis = redis
        self.key = keys.lock(name)
        self.ttl_ms = int(ttl * 1000)
        self.token = uuid.uuid4().hex

    async def acquire(self) -> bool:
        return bool(await self.redis.set(self.key, self.token, px=self.ttl_ms, condition=PureToken.NX))

    async def extend(self) -> bool:
        return bool(await self.redis.eval(EXTEND, keys=[self.key], args=[self.token, str(self.ttl_ms)]))

    async def release(self) -> bool:
        return bool(await self.redis.eval(RELEASE, keys=[self.key], args=[self.token]))


@asynccontextmanager
async def hold(redis: Redis, keys: Keys, name: str, ttl: float = 30.0,
               wait: float = 0.0) -> AsyncIterator[LeaseLock]:
    """``wait``: keep trying that many seconds (a holder that died frees it within ``ttl``)."""
    lock = LeaseLock(redis, keys, name, ttl)
    deadline = trio.current_time() + wait
    while not await lock.acquire():
        if trio.current_time() >= deadline:
            raise LockHeldError(f"lock {name} is held by another worker")
        await trio.sleep(min(0.1, ttl / 10))

    async def renew() -> None:
        while True:
            await trio.sleep(ttl / 3)
            await lock.extend()

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(renew)
            yield lock
            nursery.cancel_scope.cancel()
    finally:
        with trio.move_on_after(2, shield=True):
            await lock.release()

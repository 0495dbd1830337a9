"""The Redis client: coredis, which runs natively on Trio (through anyio) and is cancelled by cancel scopes.

Why not redis-py: its asyncio client cannot run on Trio, and its sync client pushed through
``trio.to_thread`` measured about a third of coredis' throughput here (see README, benchmarks/redis_clients.py),
and a blocking BRPOP in a thread cannot be cancelled.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import coredis
from coredis.exceptions import ConnectionError as RedisConnectionError
from coredis.exceptions import RedisError
from coredis.tokens import PureToken

__all__ = ["RedisConnectionError", "RedisError", "Redis", "open_redis", "REDIS_DOWN"]

Redis = coredis.Redis
# What "Redis is unreachable" looks like from the client: the errors a caller maps to 503 or retries.
# coredis raises the builtin TimeoutError when a reply does not come in time.
REDIS_DOWN = (RedisConnectionError, TimeoutError)


@asynccontextmanager
async def open_redis(url: str, *, max_connections: int = 64) -> AsyncIterator[coredis.Redis]:
    client = coredis.Redis.from_url(
        url, decode_responses=True, connect_timeout=2.0, max_connections=max_connections
    )
    try:
        async with client:
            yield client
    except BaseExceptionGroup as group:
        # coredis' pool runs in a task group that wraps whatever the body raised; hand callers back the
        # one exception they raised themselves, so `except UnknownJobError` and friends work as written.
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise


async def claim_once(redis: Redis, key: str, holder: str, ttl_seconds: int) -> bool:
    """SET NX with a TTL: True for the first caller only (idempotency of side effects)."""
    return bool(await redis.set(key, holder, ex=ttl_seconds, condition=PureToken.NX))

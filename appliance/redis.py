"""The Redis client: coredis, which runs natively on Trio (through anyio) and is cancelled by cancel scopes.

Why not redis-py: its asyncio client cannot run on Trio, and its sync client pushed through
``trio.to_thread`` measured about a third of coredis' throughput here (see README, benchmarks/redis_clients.py),
and a blocking BRPOP in a thread cannot be cancelled.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import coredis
from coredis.exceptions import ConnectionError as RedisConnectionError
from coredis.exceptions import RedisError
from coredis.tokens import PureToken

__all__ = ["RedisConnectionError", "RedisError", "Redis", "open_redis", "REDIS_DOWN", "is_durable",
           "warn_unless_durable"]

log = logging.getLogger(__name__)

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


async def is_durable(redis: Redis) -> bool:
    """Whether Redis keeps an append-only file (``CONFIG GET appendonly``), so an accepted job survives a
    restart of redis-server. False when the answer is no, or when CONFIG is refused (a managed Redis)."""
    try:
        reply = await redis.config_get(["appendonly"])
    except RedisError as exc:
        if isinstance(exc, REDIS_DOWN):
            raise
        return False
    return str(reply.get("appendonly", "no")).lower() == "yes"


async def warn_unless_durable(redis: Redis, role: str) -> bool:
    """Read ``CONFIG GET appendonly`` once at a role's start; log a loud warning when it is off."""
    try:
        durable = await is_durable(redis)
    except REDIS_DOWN as exc:
        log.warning("%s: could not read Redis' appendonly setting, Redis unreachable: %s", role, exc)
        return False
    if not durable:
        log.warning(
            "%s: REDIS IS NOT DURABLE (appendonly is off): a restart of redis-server or of this machine "
            "loses every queued job and every webhook already answered 200; run scripts/setup.sh, or "
            "`redis-cli CONFIG SET appendonly yes` then `CONFIG REWRITE`", role,
        )
    return durable

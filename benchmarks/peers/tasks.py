"""The same job for every peer: push the job's start time onto a Redis list (what our diagnostics.stamp
does). Each peer's worker imports its own section."""

from __future__ import annotations

import os
import time

import redis

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
_sync = redis.Redis.from_url(REDIS_URL)


def stamp(key: str, sleep: float = 0.0) -> None:  # RQ
    _sync.lpush(key, repr(time.time()))
    if sleep:
        time.sleep(sleep)


# -- dramatiq ------------------------------------------------------------------------------------------
def dramatiq_broker():
    import dramatiq
    from dramatiq.brokers.redis import RedisBroker

    broker = RedisBroker(url=REDIS_URL, namespace=os.environ.get("BENCH_NS", "bench-dramatiq"))
    dramatiq.set_broker(broker)
    return broker


if os.environ.get("BENCH_PEER") == "dramatiq":
    import dramatiq

    dramatiq_broker()

    @dramatiq.actor(max_retries=0, queue_name="bench")
    def dramatiq_stamp(key: str, sleep: float = 0.0) -> None:
        _sync.lpush(key, repr(time.time()))
        if sleep:
            time.sleep(sleep)


# -- taskiq ----------------------------------------------------------------------------------------------
if os.environ.get("BENCH_PEER") == "taskiq":
    from taskiq_redis import RedisStreamBroker

    taskiq_broker = RedisStreamBroker(url=REDIS_URL, queue_name=os.environ.get("BENCH_NS", "bench-taskiq"))

    import asyncio

    from redis.asyncio import Redis as AsyncRedis

    _async = AsyncRedis.from_url(REDIS_URL)

    @taskiq_broker.task
    async def taskiq_stamp(key: str, sleep: float = 0.0) -> None:
        await _async.lpush(key, repr(time.time()))
        if sleep:
            await asyncio.sleep(sleep)


# -- arq -----------------------------------------------------------------------------------------------
async def arq_stamp(ctx: dict, key: str, sleep: float = 0.0) -> None:
    import asyncio

    await ctx["redis"].lpush(key, repr(time.time()))
    if sleep:
        await asyncio.sleep(sleep)


class ArqSettings:
    from arq.connections import RedisSettings

    functions = [arq_stamp]
    redis_settings = RedisSettings.from_dsn(REDIS_URL)
    queue_name = os.environ.get("BENCH_NS", "bench-arq")
    burst = False
    max_jobs = int(os.environ.get("JOB_CONCURRENCY", "32"))  # jobs_bench gives every system the same

"""Why coredis: LPUSH throughput from 16 concurrent Trio tasks, coredis natively on Trio against redis-py
pushed through trio.to_thread (redis-py's asyncio client cannot run on Trio), same run, same Redis.

    .venv/bin/python benchmarks/redis_clients.py [--ops 20000]
"""

from __future__ import annotations

import argparse
import time

import redis
import trio

from appliance.redis import open_redis

URL = "redis://127.0.0.1:6379/0"
TASKS = 16


async def with_coredis(ops: int) -> float:
    async with open_redis(URL) as client:
        async def pusher(n: int) -> None:
            for _ in range(n):
                await client.lpush("appliance:bench:clients", ["x"])

        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(TASKS):
                nursery.start_soon(pusher, ops // TASKS)
        elapsed = time.perf_counter() - started
        await client.delete(["appliance:bench:clients"])
    return ops / elapsed


async def with_redis_py_threads(ops: int) -> float:
    pool = redis.ConnectionPool.from_url(URL, max_connections=TASKS)
    client = redis.Redis(connection_pool=pool)
    limiter = trio.CapacityLimiter(TASKS)

    async def pusher(n: int) -> None:
        for _ in range(n):
            await trio.to_thread.run_sync(client.lpush, "appliance:bench:clients", "x", limiter=limiter)

    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(TASKS):
            nursery.start_soon(pusher, ops // TASKS)
    elapsed = time.perf_counter() - started
    client.delete("appliance:bench:clients")
    client.close()
    return ops / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", type=int, default=20000)
    args = parser.parse_args()
    ours = trio.run(with_coredis, args.ops)
    threads = trio.run(with_redis_py_threads, args.ops)
    print(f"coredis on Trio:              {ours:8.0f} LPUSH/s")
    print(f"redis-py via trio.to_thread:  {threads:8.0f} LPUSH/s")
    print(f"ratio: {ours / threads:.2f}x")


if __name__ == "__main__":
    main()

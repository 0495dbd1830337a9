"""Why coredis: LPUSH throughput from 16 concurrent Trio tasks, coredis natively on Trio against redis-py
pushed through trio.to_thread (redis-py's asyncio client cannot run on Trio), same run, same Redis.

Why a 10 ms job that makes one Redis call takes longer than 10 ms per slot (jobs_bench's 10 ms drain): the
latency of one coredis LPUSH from 1 and from 32 Trio tasks at once, each task looping LPUSH then a 10 ms
sleep for 2 s (--latency).

    .venv/bin/python benchmarks/redis_clients.py [--ops 20000] [--latency]
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


async def concurrent_latency(tasks: int) -> tuple[float, float, int]:
    """(p50, p90 seconds of one LPUSH, connections used) with ``tasks`` tasks looping LPUSH + 10 ms sleep."""
    latencies: list[float] = []
    async with open_redis(URL) as client:
        await client.ping()

        async def loop() -> None:
            while True:
                started = time.perf_counter()
                await client.lpush("appliance:bench:latency", ["x"])
                latencies.append(time.perf_counter() - started)
                await trio.sleep(0.01)

        with trio.move_on_after(2):
            async with trio.open_nursery() as nursery:
                for _ in range(tasks):
                    nursery.start_soon(loop)
        connections = len(client.connection_pool._online_connections)
        await client.delete(["appliance:bench:latency"])
    latencies.sort()
    return latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.9)], connections


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", type=int, default=20000)
    parser.add_argument("--latency", action="store_true")
    args = parser.parse_args()
    if args.latency:
        for tasks in (1, 32):
            p50, p90, connections = trio.run(concurrent_latency, tasks)
            print(f"coredis LPUSH from {tasks:2} tasks: p50 {p50 * 1e3:.2f} ms, p90 {p90 * 1e3:.2f} ms, "
                  f"{connections} connection(s)", flush=True)
    if not args.ops:
        return
    ours = trio.run(with_coredis, args.ops)
    threads = trio.run(with_redis_py_threads, args.ops)
    print(f"coredis on Trio:              {ours:8.0f} LPUSH/s")
    print(f"redis-py via trio.to_thread:  {threads:8.0f} LPUSH/s")
    print(f"ratio: {ours / threads:.2f}x")


if __name__ == "__main__":
    main()

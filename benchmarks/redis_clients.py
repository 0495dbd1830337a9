"""Why coredis: LPUSH throughput from 16 concurrent Trio tasks, coredis natively on Trio against redis-py
pushed through trio.to_thread (redis-py's asyncio client cannot run on Trio), same run, same Redis.

Why the idle worker's blocking pop has a connection of its own (appliance/jobs/blocking.py): the Trio
thread's CPU time per wake-up of a BRPOP, and push -> pop latency, coredis against BlockingConnection,
taking turns round by round; a thread pushes its time.time() every 50 ms (--wakeups per round).

    .venv/bin/python benchmarks/redis_clients.py [--ops 20000] [--wakeups 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import threading
import time

import redis
import trio

from appliance.jobs.blocking import BlockingConnection
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


WAKE_KEY = "appliance:bench:wakeups"


async def wakeups(which: str, n: int) -> tuple[float, float]:
    """(CPU seconds of this thread per wake-up, median push -> pop seconds) of n blocking pops."""
    pusher = redis.Redis.from_url(URL)
    pusher.delete(WAKE_KEY)

    def push() -> None:
        for _ in range(n):
            time.sleep(0.05)
            pusher.lpush(WAKE_KEY, repr(time.time()))

    delays = []
    async with open_redis(URL) as client:
        own = BlockingConnection(URL)
        await client.ping()
        await own.brpop([WAKE_KEY], 0.01)  # both connected before the clock starts
        thread = threading.Thread(target=push)
        cpu = time.thread_time()
        thread.start()
        for _ in range(n):
            reply = await (client.brpop([WAKE_KEY], timeout=5) if which == "coredis" else own.brpop([WAKE_KEY], 5))
            assert reply is not None
            delays.append(time.time() - float(reply[1]))
        cpu = time.thread_time() - cpu
        thread.join()
        await own.aclose()
    pusher.close()
    return cpu / n, sorted(delays)[n // 2]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", type=int, default=20000)
    parser.add_argument("--wakeups", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for _ in range(args.rounds):
        for which in ("coredis", "own connection"):
            cpu, delay = trio.run(wakeups, which, args.wakeups)
            print(f"BRPOP via {which:15} {cpu * 1e6:6.0f} us CPU per wake-up, push -> pop p50 {delay * 1e3:.2f} ms",
                  flush=True)
    if not args.ops:
        return
    ours = trio.run(with_coredis, args.ops)
    threads = trio.run(with_redis_py_threads, args.ops)
    print(f"coredis on Trio:              {ours:8.0f} LPUSH/s")
    print(f"redis-py via trio.to_thread:  {threads:8.0f} LPUSH/s")
    print(f"ratio: {ours / threads:.2f}x")


if __name__ == "__main__":
    main()

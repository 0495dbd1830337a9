"""What durability costs: enqueue throughput of the real job queue against a private redis-server with no
append-only file, with ``appendfsync everysec`` and with ``appendfsync always``, same run, same disk.

    .venv/bin/python benchmarks/redis_durability.py [--jobs 5000] [--tasks 16] [--runs 3]

Each configuration gets a fresh redis-server whose files sit in a temporary directory on the same disk as
/var/lib/redis would (not a tmpfs), so ``always`` pays a real fsync per write.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import trio

from appliance.jobs.queue import JobQueue
from appliance.keys import Keys
from appliance.redis import open_redis
from benchmarks.servers import PrivateRedis

CONFIGS = (("no AOF (appendonly no)", False, "everysec"), ("appendfsync everysec", True, "everysec"),
           ("appendfsync always", True, "always"))


async def enqueue_rate(url: str, jobs: int, tasks: int) -> tuple[float, list[float]]:
    """(enqueues per second, each enqueue's latency in seconds)."""
    async with open_redis(url) as redis:
        queue = JobQueue(redis, Keys("appliance:bench:"))
        await queue.enqueue("diagnostics.noop")  # scripts loaded, connections open

        latencies: list[float] = []

        async def producer(n: int) -> None:
            for _ in range(n):
                sent = time.perf_counter()
                await queue.enqueue("diagnostics.noop")
                latencies.append(time.perf_counter() - sent)

        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(tasks):
                nursery.start_soon(producer, jobs // tasks)
        return (jobs // tasks * tasks) / (time.perf_counter() - started), latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--tasks", default="1,16", help="concurrent producers, comma-separated")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    task_counts = [int(t) for t in args.tasks.split(",")]
    rates: dict[tuple[str, int], list[float]] = {}
    latencies: dict[tuple[str, int], list[float]] = {}
    for _ in range(args.runs):  # interleaved, so a noisy moment hits every configuration alike
        for tasks in task_counts:
            for name, appendonly, fsync in CONFIGS:
                server = PrivateRedis(tempfile.mkdtemp(prefix="appliance-aof-", dir="/var/tmp"),
                                      appendonly=appendonly, appendfsync=fsync)
                server.start()
                try:
                    rate, lat = trio.run(enqueue_rate, server.url, args.jobs, tasks)
                finally:
                    server.remove()
                rates.setdefault((name, tasks), []).append(rate)
                latencies.setdefault((name, tasks), []).extend(lat)
    print(f"enqueue of {args.jobs} jobs, median of {args.runs} interleaved runs per row")
    print("| redis | producers | enqueues/s (runs) | vs no AOF | p50 ms | p99 ms |")
    print("|---|---:|---|---:|---:|---:|")
    for tasks in task_counts:
        base = statistics.median(rates[(CONFIGS[0][0], tasks)])
        for name, _, _ in CONFIGS:
            median = statistics.median(rates[(name, tasks)])
            runs = " / ".join(f"{r:.0f}" for r in rates[(name, tasks)])
            cuts = statistics.quantiles(latencies[(name, tasks)], n=100)
            print(f"| {name} | {tasks} | {median:.0f} ({runs}) | {median / base:.2f}x | "
                  f"{cuts[49] * 1000:.2f} | {cuts[98] * 1000:.2f} |")


if __name__ == "__main__":
    main()

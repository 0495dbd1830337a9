"""Built-in jobs that prove in one command that workers really process jobs."""

from __future__ import annotations

import os
import socket
import time

import trio

from appliance.jobs.registry import JobContext


async def ping(ctx: JobContext) -> dict[str, object]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "attempt": ctx.attempt}



async def sleep(ctx: JobContext, seconds: float = 1.0) -> dict[str, object]:
    await trio.sleep(float(seconds))
    return {"slept": float(seconds), "pid": os.getpid()}



async def noop(ctx: JobContext) -> None:
    return None



async def stamp(ctx: JobContext, key: str, sleep: float = 0.0) -> None:
    """Push this job's start time (epoch seconds) onto the list ``key`` under our prefix, then sleep
    (benchmarks: the same job every peer runs)."""
    await ctx.services.redis.lpush(ctx.services.keys.prefix + key, [repr(time.time())])
    if sleep:
        await trio.sleep(sleep)



async def fail(ctx: JobContext, message: str = "failing on purpose") -> None:
    raise RuntimeError(message)



def block(ctx: JobContext, seconds: float = 60.0) -> None:
    """Blocks a worker thread (not the loop): for timeout tests of synchronous jobs."""
    time.sleep(float(seconds))



async def hang(ctx: JobContext, seconds: float = 60.0) -> None:
    """Blocks the worker's event loop itself, so its watchdog stops: for supervisor tests."""
    time.sleep(float(seconds))  # noqa: ASYNC251 - blocking the loop is the point

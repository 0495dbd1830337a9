"""``appliance enqueue`` and ``appliance jobs stats|show|retry``."""

from __future__ import annotations

import json
import sys

from appliance.jobs.queue import JobQueue
from appliance.jobs.registry import JobError
from appliance.keys import Keys
from appliance.redis import REDIS_DOWN, open_redis
from appliance.settings import Settings


def parse_args(pairs: list[str]) -> dict[str, object]:
    """``key=value`` pairs; a value that parses as JSON is taken as JSON (``seconds=2`` is a number)."""
    out: dict[str, object] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise JobError(f"--arg must be key=value, got {pair!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


async def _with_queue(settings: Settings, fn):
    try:
        async with open_redis(settings.redis_url, max_connections=4) as redis:
            return await fn(JobQueue(redis, Keys(settings.redis_prefix)))
    except JobError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except REDIS_DOWN as exc:
        print(f"error: redis at {settings.redis_url} is unreachable: {exc}", file=sys.stderr)
        return 3


async def enqueue(settings: Settings, name: str, queue: str | None, pairs: list[str], delay: float | None) -> int:
    async def go(q: JobQueue) -> int:
        print(await q.enqueue(name, parse_args(pairs), queue=queue, delay=delay))
        return 0

    return await _with_queue(settings, go)


async def jobs_command(settings: Settings, action: str, job_id: str | None) -> int:
    async def go(q: JobQueue) -> int:
        if action == "stats":
            print(json.dumps(await q.stats(), indent=2))
            return 0
        if not job_id:
            raise JobError(f"jobs {action} needs a job id")
        if action == "show":
            record = await q.get(job_id)
            if record is None:
                raise JobError(f"no job {job_id}")
            print(json.dumps(record, indent=2))
            return 0
        await q.retry(job_id)
        print(f"{job_id} queued again")
        return 0

    return await _with_queue(settings, go)

"""The queue API over Redis: enqueue, fetch, finish, fail, hand back, renew, recover, inspect.

A job is accepted once :meth:`JobQueue.enqueue` returns; from then on it is in exactly one of the queue
lists, the ``scheduled`` set or the ``running`` set (under a lease) until it finishes or dies.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from coredis.exceptions import NoScriptError
from coredis.tokens import PureToken

from appliance.jobs import scripts
from appliance.jobs.catalog import JOBS
from appliance.jobs.registry import Catalog, JobArgumentsError, JobNotFoundError, JobStateError, dumps
from appliance.keys import QUEUES, Keys
from appliance.redis import Redis

RESULT_TTL = 7 * 24 * 3600
DEAD_TTL = 30 * 24 * 3600
WORKER_TTL = 60
POISON_LIMIT = 5  # lease losses (its worker died) before a job is dead-lettered
DURATION_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 300.0)


def duration_bucket(seconds: float) -> str:
    for bound in DURATION_BUCKETS:
        if seconds <= bound:
            return f"le_{bound:g}"
    return "le_inf"


@dataclass(frozen=True)
class TakenJob:
    """A job a worker holds under a lease."""

    id: str
    token: str
    attempt: int
    name: str
    args_json: str
    timeout: float
    max_retries: int
    queue: str
    enqueued_at: float

    @property
    def args(self) -> dict[str, Any]:
        value = json.loads(self.args_json or "{}")
        if not isinstance(value, dict):
            raise JobArgumentsError("stored arguments are not a JSON object")
        return value


def _taken(row: Sequence[Any]) -> TakenJob:
    return TakenJob(row[0], row[1], int(row[2]), row[3], row[4], float(row[5]), int(row[6]), row[7], float(row[8]))


class JobQueue:
    def __init__(self, redis: Redis, keys: Keys, clock: Callable[[], float] = time.time, *,
                 catalog: Catalog = JOBS) -> None:
        self.redis = redis
        self.catalog = catalog
        self.keys = keys
        self.clock = clock
        self._scripts = {name: redis.register_script(getattr(scripts, name)) for name in (
            "ENQUEUE", "FETCH", "FINISH", "FAIL", "RELEASE", "RENEW", "REQUEUE_EXPIRED", "PROMOTE_DUE",
            "RETRY", "COUNT_BY_QUEUE")}
        self._queue_keys = [keys.queue(q) for q in QUEUES]

    async def _run(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        call = self._scripts[script]
        try:
            return await call(keys=list(keys), args=[str(a) for a in args])
        except NoScriptError:
            # A restarted Redis forgets loaded scripts; coredis reloads once but swallows a failed reload
            # (the connection may still be coming back), so load it here where a failure is visible.
            await self.redis.script_load(call.script)
            return await call(keys=list(keys), args=[str(a) for a in args])

    # -- producers -------------------------------------------------------------------------------------
    async def enqueue(self, name: str, args: dict[str, Any] | None = None, *, queue: str | None = None,
                      delay: float | None = None, at: float | None = None, unique_key: str | None = None,
                      once_for: float | None = None, max_retries: int | None = None,
                      timeout: float | None = None) -> str:
        """Accept a job; returns its id (the earlier job's id when ``unique_key`` is already active).

        ``once_for`` makes ``unique_key`` hold for that many seconds whatever becomes of the job (periodic
        jobs: one enqueue per period even with two schedulers).
        """
        spec = self.catalog.lookup(name)
        queue = queue or spec.queue
        if queue not in QUEUES:
            raise JobArgumentsError(f"queue must be one of {', '.join(QUEUES)}, got {queue!r}")
        if args is not None and not isinstance(args, dict):
            raise JobArgumentsError("args must be a JSON object of keyword arguments")
        args_json = dumps(args or {}, "args")
        now = self.clock()
        due = at if at is not None else (now + delay if delay else None)
        job_id = uuid.uuid4().hex
        mode = "0" if unique_key is None else ("2" if once_for else "1")
        fields = {
            "id": job_id, "name": name, "queue": queue, "args": args_json,
            "status": "scheduled" if due and due > now else "queued", "attempts": 0,
            "max_retries": spec.max_retries if max_retries is None else max_retries,
            "timeout": spec.timeout if timeout is None else timeout, "enqueued_at": repr(now),
            "due_at": repr(due) if due else "", "unique_key": unique_key if mode == "1" else "",
        }
        flat = [item for pair in fields.items() for item in pair]
        dedupe = self.keys.unique(unique_key) if unique_key else self.keys.unique("-")
        job_key, added = await self._run(
            "ENQUEUE",
            [self.keys.job(job_id), self.keys.queue(queue), self.keys.scheduled, self.keys.wakeup, dedupe,
             self.keys.idle, self.keys.running],
            [self.keys.prefix, job_id, repr(due) if due and due > now else "", mode, int(once_for or 0), repr(now),
             *flat],
        )
        return job_key

    # -- workers ---------------------------------------------------------------------------------------
    async def fetch(self, worker_id: str, n: int, lease: float, *, register_idle: bool = False) -> list[TakenJob]:
        """Take the jobs handed to ``worker_id`` and up to ``n`` queued ones under a lease. With
        ``register_idle``, a worker that got nothing is registered as idle in the same step (an enqueue then
        hands it its job directly: see :meth:`wait_for_work`); any fetch ends that registration."""
        rows = await self._run("FETCH", [self.keys.running, *self._queue_keys, self.keys.idle],
                               [self.keys.prefix, n, repr(self.clock()), lease, worker_id, int(register_idle)])
        return [_taken(r) for r in rows]

    async def wait_for_work(self, worker_id: str, timeout: float) -> TakenJob | bool:
        """Block until a job is handed to this idle worker (the job, already leased to it), a wake-up
        token arrives (True: fetch), or ``timeout`` passes (False)."""
        inbox = self.keys.inbox(worker_id)
        reply = await self.redis.brpop([inbox, self.keys.wakeup], timeout=timeout)
        if reply is None:
            return False
        key, value = reply
        return _taken(json.loads(value)) if key == inbox else True

    async def finish(self, done: Sequence[tuple[TakenJob, str, float]]) -> int:
        """Acknowledge finished jobs in one round trip: (job, result JSON, duration seconds)."""
        args: list[Any] = [self.keys.prefix, repr(self.clock()), RESULT_TTL]
        for taken, result_json, duration in done:
            args += [taken.id, taken.token, result_json, duration_bucket(duration), f"{duration:.6f}"]
        return int(await self._run("FINISH", [self.keys.running], args))

    async def fail(self, taken: TakenJob, error: str, traceback: str, retry_at: float | None) -> int:
        """1: will retry at ``retry_at``; 2: dead; 0: the lease was no longer ours."""
        return int(await self._run(
            "FAIL", [self.keys.running, self.keys.scheduled, self.keys.dead, self.keys.failed],
            [self.keys.prefix, taken.id, taken.token, repr(self.clock()), error, traceback,
             repr(retry_at) if retry_at is not None else "", DEAD_TTL],
        ))

    async def release(self, jobs: Sequence[TakenJob]) -> int:
        """Hand jobs back to the front of their queue at once (shutdown), not counting the attempt."""
        if not jobs:
            return 0
        args: list[Any] = [self.keys.prefix]
        for taken in jobs:
            args += [taken.id, taken.token]
        return int(await self._run("RELEASE", [self.keys.running, self.keys.wakeup], args))

    async def renew(self, jobs: Sequence[TakenJob], lease: float) -> list[str]:
        """Push the leases of held jobs forward; returns the ids whose lease is no longer ours."""
        if not jobs:
            return []
        args: list[Any] = [self.keys.prefix, repr(self.clock() + lease)]
        for taken in jobs:
            args += [taken.id, taken.token]
        return list(await self._run("RENEW", [self.keys.running], args))

    async def requeue_expired(self, limit: int = 1000) -> list[str]:
        return list(await self._run("REQUEUE_EXPIRED", [self.keys.running, self.keys.wakeup, self.keys.dead],
                                    [self.keys.prefix, repr(self.clock()), limit, POISON_LIMIT]))

    async def promote_due(self, limit: int = 1000) -> int:
        return int(await self._run("PROMOTE_DUE", [self.keys.scheduled, self.keys.wakeup],
                                   [self.keys.prefix, repr(self.clock()), limit]))

    async def beat(self, worker_id: str, info: dict[str, Any]) -> None:
        now = self.clock()
        await self.redis.zadd(self.keys.workers, {worker_id: now})
        await self.redis.hset(self.keys.worker(worker_id), {k: str(v) for k, v in info.items()})
        await self.redis.expire(self.keys.worker(worker_id), WORKER_TTL)
        await self.redis.zremrangebyscore(self.keys.workers, -math.inf, now - WORKER_TTL)

    async def forget_worker(self, worker_id: str) -> None:
        await self.redis.zrem(self.keys.workers, [worker_id])
        await self.redis.delete([self.keys.worker(worker_id)])

    # -- operators -------------------------------------------------------------------------------------
    async def get(self, job_id: str) -> dict[str, Any] | None:
        record = await self.redis.hgetall(self.keys.job(job_id))
        if not record:
            return None
        out: dict[str, Any] = dict(record)
        for name in ("args", "result"):
            if out.get(name):
                out[name] = json.loads(out[name])
        for name in ("attempts", "max_retries"):
            if name in out:
                out[name] = int(out[name])
        for name in ("timeout", "enqueued_at", "due_at", "started_at", "finished_at", "failed_at", "requeued_at"):
            if out.get(name):
                out[name] = float(out[name])
        return out

    async def listing(self, status: str, limit: int) -> list[dict[str, Any]]:
        """The newest ``dead`` jobs, or ``failed`` ones waiting for their retry, each with its error and
        traceback (the sets hold at most 1,000 recent ids; a job retried since is left out)."""
        source = {"dead": self.keys.dead, "failed": self.keys.failed}[status]
        found: list[dict[str, Any]] = []
        for job_id in await self.redis.zrange(source, 0, 999, rev=True):
            record = await self.get(job_id)
            if record is not None and record.get("status") == status:
                found.append(record)
                if len(found) >= limit:
                    break
        return found

    async def retry(self, job_id: str) -> None:
        state = await self._run("RETRY", [self.keys.job(job_id), self.keys.dead, self.keys.scheduled,
                                          self.keys.wakeup], [self.keys.prefix, job_id, repr(self.clock())])
        if state == "missing":
            raise JobNotFoundError(f"no job {job_id}")
        if state != "queued":
            raise JobStateError(f"job {job_id} is {state}; only failed or dead jobs can be retried")

    async def stats(self) -> dict[str, Any]:
        now = self.clock()
        per_queue: dict[str, dict[str, Any]] = {}
        for q in QUEUES:
            oldest = await self.redis.lindex(self.keys.queue(q), -1)
            enqueued = await self.redis.hget(self.keys.job(oldest), "enqueued_at") if oldest else None
            per_queue[q] = {"queued": await self.redis.llen(self.keys.queue(q)), "running": 0, "scheduled": 0,
                            "failed": 0, "dead": 0,
                            "oldest_waiting_seconds": round(now - float(enqueued), 3) if enqueued else 0.0}
        flat = await self._run("COUNT_BY_QUEUE", [self.keys.running, self.keys.scheduled, self.keys.dead],
                               [self.keys.prefix, 100_000])
        for key, count in zip(flat[::2], flat[1::2], strict=True):
            q, status = key.split("|", 1)
            if q in per_queue and status in per_queue[q]:
                per_queue[q][status] += int(count)
        workers = []
        alive = await self.redis.zrange(self.keys.workers, now - WORKER_TTL, "+inf", sortby=PureToken.BYSCORE,
                                        withscores=True)
        for worker_id, seen in alive:
            info = await self.redis.hgetall(self.keys.worker(str(worker_id)))
            workers.append({"id": worker_id, "last_heartbeat_seconds_ago": round(now - float(seen), 3), **info})
        totals = {}
        for name in ("started", "finished", "failed", "retried", "dead", "requeued"):
            totals[name] = int(await self.redis.get(self.keys.stat(name)) or 0)
        return {"queues": per_queue, "workers": workers, "totals": totals}

    async def durations(self) -> dict[str, float]:
        return {k: float(v) for k, v in (await self.redis.hgetall(self.keys.stat("duration"))).items()}

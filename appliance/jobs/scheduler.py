"""``appliance scheduler``: promotes due delayed jobs, recovers expired leases, enqueues periodic jobs.

Periodic jobs are declared in :mod:`appliance.jobs.catalog`. Each period is enqueued exactly once, even with two
schedulers running, because the enqueue is keyed by the period (``once_for``), atomically in Redis.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import trio

from appliance.jobs.queue import JobQueue
from appliance.jobs.registry import Periodic
from appliance.nursery.role import RoleHandle
from appliance.redis import REDIS_DOWN
from appliance.services import open_services
from appliance.settings import Settings

log = logging.getLogger(__name__)
TICK = 1.0


class Scheduler:
    def __init__(self, queue: JobQueue, periodic: Sequence[Periodic] | None = None) -> None:
        self.queue = queue
        self.periodic = queue.catalog.periodic if periodic is None else tuple(periodic)
        self.enqueued = 0
        self.healthy = False

    async def tick(self) -> None:
        await self.queue.promote_due()
        await self.queue.requeue_expired()
        now = self.queue.clock()
        for spec in self.periodic:
            period = math.floor(now / spec.seconds)
            job_id = await self.queue.enqueue(spec.job, spec.args, unique_key=f"periodic:{spec.job}:{period}",
                                              once_for=max(spec.seconds * 2, 60))
            self.enqueued += 1 if job_id else 0

    async def run(self) -> None:
        while True:
            try:
                with trio.fail_after(10):
                    await self.tick()
                self.healthy = True
            except (*REDIS_DOWN, trio.TooSlowError) as exc:
                if self.healthy:
                    log.warning("scheduler: redis unreachable (%s); retrying", exc)
                self.healthy = False
            await trio.sleep(TICK)


async def serve_scheduler(settings: Settings, stop: trio.Event, *,
                          task_status: trio.TaskStatus[RoleHandle] = trio.TASK_STATUS_IGNORED) -> None:
    async with open_services(settings) as services:
        scheduler = Scheduler(JobQueue(services.redis, services.keys))
        await scheduler.tick()  # READY only after a first successful round
        scheduler.healthy = True

        async def healthy() -> bool:
            return scheduler.healthy

        async with trio.open_nursery() as nursery:
            nursery.start_soon(scheduler.run)
            task_status.started(RoleHandle(status=lambda: f"{len(scheduler.periodic)} periodic jobs",
                                           healthy=healthy))
            await stop.wait()
            nursery.cancel_scope.cancel()

"""The scheduler's job-runner time series: one sample per slot, rates from the finished counter, an hour kept."""

from __future__ import annotations

from appliance.jobs.queue import JobQueue
from appliance.jobs.scheduler import Scheduler
from appliance.jobs.series import KEEP, STEP, JobSeries
from tests.helpers import FakeClock


async def test_samples_once_per_slot_with_depths_and_jobs_per_second(services):
    series = JobSeries(services.redis, services.keys)
    queue = JobQueue(services.redis, services.keys)
    t0 = 1_800_000_000.0
    for _ in range(2):
        await queue.enqueue("diagnostics.noop", queue="low")
    assert await series.sample(t0) is True
    assert await series.sample(t0 + STEP / 2) is False  # the same slot, e.g. a second scheduler
    await services.redis.incrby(services.keys.stat("finished"), 30)
    await queue.enqueue("diagnostics.noop", queue="high")
    assert await series.sample(t0 + STEP) is True
    got = await series.read(t0 + STEP)
    assert got["step"] == STEP
    first, second = got["points"]
    assert first["queued"] == {"high": 0, "default": 0, "low": 2} and first["jobs_per_second"] == 0
    assert second["queued"] == {"high": 1, "default": 0, "low": 2}
    assert second["jobs_per_second"] == 30 / STEP


async def test_keeps_one_hour_and_the_scheduler_samples_on_its_tick(services):
    clock = FakeClock()
    queue = JobQueue(services.redis, services.keys, clock=clock)
    scheduler = Scheduler(queue, periodic=[])
    for _ in range(3):
        await scheduler.tick()
        clock.advance(KEEP / 3)
    points = (await JobSeries(services.redis, services.keys).read(clock.now, seconds=10 * KEEP))["points"]
    assert len(points) == 3  # one sample per tick: each tick fell in a new slot
    await scheduler.tick()  # a fourth, an hour after the first: the first is trimmed
    points = (await JobSeries(services.redis, services.keys).read(clock.now, seconds=10 * KEEP))["points"]
    assert [p["t"] for p in points] == [clock.now - 2 * KEEP / 3, clock.now - KEEP / 3, clock.now]

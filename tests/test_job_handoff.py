"""An idle worker is handed its job by the enqueue itself (no fetch round trip), and nothing is lost when it
dies or stops before starting it. Real Redis, the queue's clock in the test's hands."""

from __future__ import annotations

import pytest

from appliance.jobs.queue import JobQueue, TakenJob
from tests.helpers import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def queue(services, clock) -> JobQueue:
    return JobQueue(services.redis, services.keys, clock)


async def test_an_idle_worker_is_handed_the_next_job_already_leased_to_it(queue, services):
    assert await queue.fetch("w1", 4, 30, register_idle=True) == []  # nothing queued: w1 goes idle
    job_id = await queue.enqueue("diagnostics.stamp", {"key": "k"})
    handed = await queue.wait_for_work("w1", 1)
    assert isinstance(handed, TakenJob) and (handed.id, handed.attempt, handed.name) == (job_id, 1, "diagnostics.stamp")
    assert handed.args == {"key": "k"} and handed.token == "w1:1"
    record = await queue.get(job_id)
    assert (record["status"], record["worker"], record["lease"]) == ("running", "w1", "w1:1")
    assert await services.redis.llen(services.keys.queue("default")) == 0
    # w1 is no longer idle: the next job waits in its queue for a fetch, with a wake-up token
    later = await queue.enqueue("diagnostics.noop")
    assert await queue.wait_for_work("w2", 1) is True
    assert [job.id for job in await queue.fetch("w2", 4, 30)] == [later]
    assert await queue.finish([(handed, "null", 0.01)]) == 1  # the handed lease is a normal lease


async def test_a_job_handed_to_a_worker_that_died_is_requeued_when_its_lease_runs_out(queue, clock):
    assert await queue.fetch("doomed", 1, 30, register_idle=True) == []
    job_id = await queue.enqueue("diagnostics.noop")  # handed to "doomed", which never takes it (SIGKILL)
    assert await queue.fetch("w2", 4, 30) == []
    clock.advance(31)
    assert await queue.requeue_expired() == [job_id]
    [taken] = await queue.fetch("w2", 4, 30)
    assert (taken.id, taken.attempt) == (job_id, 2)


async def test_a_stopping_worker_hands_back_what_it_was_handed(queue):
    assert await queue.fetch("leaving", 1, 30, register_idle=True) == []
    job_id = await queue.enqueue("diagnostics.noop")
    assert await queue.release(await queue.fetch("leaving", 0, 30)) == 1  # what Worker._leave does
    other = await queue.enqueue("diagnostics.noop")  # "leaving" is idle no more: this one is queued
    [first, second] = await queue.fetch("w2", 4, 30)
    assert (first.id, first.attempt, second.id) == (job_id, 1, other)  # handed back to the front

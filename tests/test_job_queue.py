"""Queue semantics on real Redis with the queue's clock in the test's hands (no waiting on real time)."""

from __future__ import annotations

import pytest

from appliance.jobs.queue import JobQueue, TakenJob
from appliance.jobs.registry import JobArgumentsError, Periodic, UnknownJobError
from appliance.jobs.scheduler import Scheduler
from tests.helpers import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def queue(services, clock) -> JobQueue:
    return JobQueue(services.redis, services.keys, clock)


async def test_priority_is_strictly_high_default_low_and_fifo_within(queue):
    ids = {}
    for name, q in [("l1", "low"), ("d1", "default"), ("h1", "high"), ("l2", "low"), ("d2", "default"),
                    ("h2", "high")]:
        ids[await queue.enqueue("diagnostics.noop", queue=q)] = name
    order = []
    for _ in range(3):
        order += [ids[job.id] for job in await queue.fetch("w", 2, 30)]
    assert order == ["h1", "h2", "d1", "d2", "l1", "l2"]
    assert await queue.fetch("w", 5, 30) == []


async def test_bad_input_at_enqueue(queue):
    with pytest.raises(UnknownJobError, match="known jobs: .*diagnostics.ping"):
        await queue.enqueue("no.such.job")
    with pytest.raises(JobArgumentsError, match="must be JSON"):
        await queue.enqueue("diagnostics.sleep", {"seconds": object()})
    with pytest.raises(JobArgumentsError, match="must be JSON"):
        await queue.enqueue("diagnostics.sleep", {"seconds": float("nan")})
    with pytest.raises(JobArgumentsError, match="queue must be one of"):
        await queue.enqueue("diagnostics.noop", queue="urgent")
    assert (await queue.stats())["queues"]["default"]["queued"] == 0


async def test_unique_key_returns_the_first_job_while_queued_or_running(queue):
    first = await queue.enqueue("diagnostics.noop", unique_key="sync:1")
    assert await queue.enqueue("diagnostics.noop", unique_key="sync:1") == first
    [taken] = await queue.fetch("w", 5, 30)
    assert await queue.enqueue("diagnostics.noop", unique_key="sync:1") == first  # running
    assert await queue.finish([(taken, "null", 0.001)]) == 1
    again = await queue.enqueue("diagnostics.noop", unique_key="sync:1")
    assert again != first


async def test_delayed_job_waits_for_its_time(queue, clock):
    job_id = await queue.enqueue("diagnostics.noop", delay=30)
    assert (await queue.get(job_id))["status"] == "scheduled"
    clock.advance(29.9)
    assert await queue.promote_due() == 0 and await queue.fetch("w", 5, 30) == []
    clock.advance(0.2)
    assert await queue.promote_due() == 1
    assert [job.id for job in await queue.fetch("w", 5, 30)] == [job_id]


async def test_expired_lease_requeues_to_the_front_and_fences_the_old_holder(queue, clock):
    job_id = await queue.enqueue("diagnostics.noop")
    later = await queue.enqueue("diagnostics.noop")
    [first] = await queue.fetch("dead-worker", 1, 30)
    assert first.id == job_id and first.attempt == 1
    clock.advance(20)
    assert await queue.requeue_expired() == []
    clock.advance(11)
    assert await queue.requeue_expired() == [job_id]
    [second] = await queue.fetch("live-worker", 1, 30)
    assert second.id == job_id and second.attempt == 2  # the recovered job runs before the later one
    # The dead holder coming back changes nothing: its token no longer holds the lease.
    assert await queue.finish([(first, "1", 0.1)]) == 0
    assert await queue.renew([first], 30) == [job_id]
    assert await queue.finish([(second, '"ok"', 0.1)]) == 1
    record = await queue.get(job_id)
    assert record["status"] == "finished" and record["result"] == "ok"
    assert (await queue.get(later))["status"] == "queued"


async def test_renewal_keeps_a_lease_alive(queue, clock):
    await queue.enqueue("diagnostics.noop")
    [held] = await queue.fetch("w", 1, 30)
    for _ in range(5):
        clock.advance(20)
        assert await queue.renew([held], 30) == []
        assert await queue.requeue_expired() == []


async def test_release_hands_back_at_once_without_counting_an_attempt(queue):
    job_id = await queue.enqueue("diagnostics.noop")
    [held] = await queue.fetch("w", 1, 30)
    assert await queue.release([held]) == 1
    record = await queue.get(job_id)
    assert record["status"] == "queued" and record["attempts"] == 0
    [again] = await queue.fetch("w", 1, 30)
    assert again.attempt == 1


async def test_fail_retries_then_dead_then_operator_retry(queue, clock):
    job_id = await queue.enqueue("diagnostics.fail", max_retries=1)
    [attempt1] = await queue.fetch("w", 1, 30)
    assert await queue.fail(attempt1, "RuntimeError: x", "tb1", clock() + 5) == 1
    assert (await queue.get(job_id))["status"] == "failed"
    clock.advance(5)
    await queue.promote_due()
    [attempt2] = await queue.fetch("w", 1, 30)
    assert attempt2.attempt == 2
    assert await queue.fail(attempt2, "RuntimeError: y", "tb2", None) == 2
    record = await queue.get(job_id)
    assert record["status"] == "dead" and record["error"] == "RuntimeError: y" and record["traceback"] == "tb2"
    stats = await queue.stats()
    assert stats["queues"]["default"]["dead"] == 1 and stats["totals"]["dead"] == 1
    await queue.retry(job_id)
    assert (await queue.get(job_id))["status"] == "queued"


async def test_periodic_job_enqueued_once_per_period_by_two_schedulers(services, clock):
    periodic = [Periodic("diagnostics.noop", 60)]
    one = Scheduler(JobQueue(services.redis, services.keys, clock), periodic)
    two = Scheduler(JobQueue(services.redis, services.keys, clock), periodic)
    queue = one.queue
    for _ in range(3):
        await one.tick()
        await two.tick()
    assert (await queue.stats())["queues"]["default"]["queued"] == 1
    [job] = await queue.fetch("w", 5, 30)
    await queue.finish([(job, "null", 0.0)])
    await one.tick()  # same period, job already done: still not again
    assert (await queue.stats())["queues"]["default"]["queued"] == 0
    clock.advance(60)
    await two.tick()
    await one.tick()
    assert (await queue.stats())["queues"]["default"]["queued"] == 1


async def test_a_job_that_kills_every_worker_is_dead_lettered_after_five_lease_losses(queue, clock):
    job_id = await queue.enqueue("diagnostics.noop")
    for loss in range(1, 6):
        [held] = await queue.fetch(f"worker-{loss}", 1, 30)
        clock.advance(31)
        assert await queue.requeue_expired() == [job_id]
    record = await queue.get(job_id)
    assert record["status"] == "dead" and "died 5 times" in record["error"]
    assert await queue.fetch("w", 1, 30) == []


# -- an idle worker is handed its job by the enqueue itself (no fetch round trip) -------------------------

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

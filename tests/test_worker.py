"""The worker in-process (real Redis) and as real processes killed with SIGKILL and stopped with SIGTERM."""

from __future__ import annotations

import signal

import pytest
import trio

from appliance.jobs.locks import LeaseLock, LockHeldError, hold
from appliance.jobs.queue import JobQueue
from appliance.jobs.worker import Worker
from appliance.services import open_services
from tests.helpers import FakeClock, role_env, start_role, wait_until


async def status_of(queue: JobQueue, job_id: str) -> str:
    record = await queue.get(job_id)
    return record["status"] if record else "missing"


async def test_worker_runs_jobs_and_records_results(services, nursery):
    queue = JobQueue(services.redis, services.keys)
    worker = Worker(services, concurrency=4, lease=30, grace=5)
    stop = trio.Event()
    await nursery.start(worker.run, stop)
    ping = await queue.enqueue("diagnostics.ping")
    many = [await queue.enqueue("diagnostics.sleep", {"seconds": 0.01}) for _ in range(20)]
    await wait_until(lambda: _all_status(queue, [ping, *many], "finished"))
    record = await queue.get(ping)
    assert record["result"]["pid"] > 0 and record["attempts"] == 1
    stats = await queue.stats()
    assert stats["totals"]["finished"] == 21 and stats["workers"][0]["id"] == worker.id
    stop.set()


async def _all_status(queue: JobQueue, ids: list[str], status: str) -> bool:
    return all([await status_of(queue, job_id) == status for job_id in ids])


async def test_timeout_cancels_and_bad_arguments_are_dead_not_a_crash(services, nursery):
    queue = JobQueue(services.redis, services.keys)
    stop = trio.Event()
    await nursery.start(Worker(services, concurrency=2, lease=30, grace=5).run, stop)
    slow = await queue.enqueue("diagnostics.sleep", {"seconds": 60}, timeout=0.2)
    blocking = await queue.enqueue("diagnostics.block", {"seconds": 1}, timeout=0.2)
    mismatched = await queue.enqueue("diagnostics.sleep", {"seconds": 1, "colour": "red"})
    await wait_until(lambda: _all_status(queue, [slow, blocking, mismatched], "dead"))
    assert "timed out after 0.2s" in (await queue.get(slow))["error"]
    assert "timed out after 0.2s" in (await queue.get(blocking))["error"]
    assert "no longer match" in (await queue.get(mismatched))["error"]
    ok = await queue.enqueue("diagnostics.ping")  # the worker is still alive and well
    await wait_until(lambda: _all_status(queue, [ok], "finished"))
    stop.set()


async def test_failing_job_retries_with_backoff_then_dies_with_its_traceback(services, nursery):
    clock = FakeClock()
    queue = JobQueue(services.redis, services.keys, clock)
    stop = trio.Event()
    await nursery.start(Worker(services, concurrency=2, lease=30, grace=5, queue=queue).run, stop)
    job_id = await queue.enqueue("diagnostics.fail", {"message": "boom"}, max_retries=2)
    for attempt in (1, 2):
        await wait_until(lambda attempt=attempt: _attempt_failed(queue, job_id, attempt))
        due = (await queue.get(job_id))["due_at"]
        assert 2 ** attempt / 2 <= due - clock() <= 2 ** attempt  # exponential backoff with jitter
        clock.advance(2 ** attempt)
    await wait_until(lambda: _all_status(queue, [job_id], "dead"))
    record = await queue.get(job_id)
    assert record["attempts"] == 3 and record["error"] == "RuntimeError: boom"
    assert 'raise RuntimeError(message)' in record["traceback"]
    stop.set()


async def _attempt_failed(queue: JobQueue, job_id: str, attempt: int) -> bool:
    record = await queue.get(job_id)
    return record["status"] == "failed" and record["attempts"] == attempt


async def test_worker_keeps_its_jobs_through_a_redis_outage(settings, own_redis):
    settings = settings.model_copy(update={"redis_url": own_redis.url})
    async with open_services(settings) as services, trio.open_nursery() as nursery:  # worker ends first
        queue = JobQueue(services.redis, services.keys)
        stop = trio.Event()
        worker = Worker(services, concurrency=2, lease=30, grace=5)
        await nursery.start(worker.run, stop)
        job_id = await queue.enqueue("diagnostics.sleep", {"seconds": 0.5})
        await wait_until(lambda: _all_status(queue, [job_id], "running"))
        own_redis.stop()
        await wait_until(lambda: _is(worker.outage.is_down), timeout=10)
        assert not await worker.healthy()
        # Redis keeps nothing on disk here, so a restarted server is empty: enqueue afresh to prove the
        # worker reconnects and carries on (its held job's acknowledgement was kept and retried).
        own_redis.start()
        await own_redis.wait_up()
        after = await queue.enqueue("diagnostics.ping")
        await wait_until(lambda: _all_status(queue, [after], "finished"))
        await wait_until(lambda: _is(not worker.held))
        stop.set()


async def _is(value: bool) -> bool:
    return value


async def test_lease_lock_expires_when_its_holder_dies_and_only_the_holder_releases(services):
    first = LeaseLock(services.redis, services.keys, "gmail-sync:1", ttl=0.3)
    second = LeaseLock(services.redis, services.keys, "gmail-sync:1", ttl=0.3)
    assert await first.acquire()
    assert not await second.acquire()
    assert not await second.release()  # not the holder
    await wait_until(second.acquire, timeout=5)  # first "died": its lease ran out
    assert not await first.extend()
    with pytest.raises(LockHeldError):
        async with hold(services.redis, services.keys, "gmail-sync:1", ttl=5):
            pass
    assert await second.release()
    async with hold(services.redis, services.keys, "gmail-sync:1", ttl=5):
        assert not await LeaseLock(services.redis, services.keys, "gmail-sync:1", 5).acquire()
    assert await LeaseLock(services.redis, services.keys, "gmail-sync:1", 5).acquire()


@pytest.mark.slow
async def test_sigkilled_worker_loses_nothing(settings, services):
    queue = JobQueue(services.redis, services.keys)
    env = role_env(settings, JOB_LEASE=2, JOB_CONCURRENCY=4)
    victim = start_role(["worker"], env)
    ids = [await queue.enqueue("diagnostics.sleep", {"seconds": 0.3}) for _ in range(12)]
    try:
        await wait_until(lambda: _running_count_at_least(queue, 3))
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        in_flight = [job_id for job_id in ids if await status_of(queue, job_id) == "running"]
        assert in_flight, "the worker was killed with jobs in hand"
        rescuer = start_role(["worker"], env)
        try:
            await wait_until(lambda: _all_status(queue, ids, "finished"), timeout=30)
        finally:
            rescuer.terminate()
            assert rescuer.wait(15) == 0
        for job_id in in_flight:
            assert (await queue.get(job_id))["attempts"] == 2  # ran again after its lease ran out
        assert (await queue.stats())["totals"]["requeued"] >= len(in_flight)
    finally:
        victim.kill()


async def _running_count_at_least(queue: JobQueue, n: int) -> bool:
    stats = await queue.stats()
    return stats["queues"]["default"]["running"] >= n


@pytest.mark.slow
async def test_sigterm_hands_running_jobs_back_at_once(settings, services):
    queue = JobQueue(services.redis, services.keys)
    env = role_env(settings, JOB_LEASE=30, SHUTDOWN_GRACE=0.5)
    worker = start_role(["worker"], env)
    try:
        quick = await queue.enqueue("diagnostics.sleep", {"seconds": 0.2})
        long = await queue.enqueue("diagnostics.sleep", {"seconds": 60})
        await wait_until(lambda: _all_status(queue, [long], "running"))
        worker.send_signal(signal.SIGTERM)
        with trio.fail_after(10):
            while worker.poll() is None:
                await trio.sleep(0.02)
        assert worker.returncode == 0
        assert await status_of(queue, quick) == "finished"  # finished within the grace
        record = await queue.get(long)
        assert record["status"] == "queued" and record["attempts"] == 0  # handed back, not after the 30s lease
        assert (await queue.stats())["queues"]["default"]["running"] == 0
    finally:
        worker.kill()


async def test_a_timed_out_thread_keeps_its_slot_until_it_really_ends(services):
    queue = JobQueue(services.redis, services.keys)
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(Worker(services, concurrency=1, lease=30, grace=5, queue=queue).run, stop)
        blocked = await queue.enqueue("diagnostics.block", {"seconds": 1.5}, timeout=0.2)
        await wait_until(lambda: _all_status(queue, [blocked], "dead"))  # failed at its deadline ...
        failed_at = trio.current_time()
        stamp = await queue.enqueue("diagnostics.stamp", {"key": "after-block"})
        await wait_until(lambda: _all_status(queue, [stamp], "finished"))
        # ... but the only slot stayed taken until the thread ended: the next job waited for it.
        assert trio.current_time() - failed_at > 0.9
        stop.set()

"""``appliance worker``: runs up to JOB_CONCURRENCY jobs at once in one Trio nursery.

Nurseries by lifetime: the support nursery (lease renewal and recovery, acknowledgements) outlives the jobs
nursery, so every finished job is acknowledged and every cancelled one handed back before the worker
exits. Fetches and acknowledgements go in batches (one round trip for up to JOB_CONCURRENCY jobs each).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

import trio

from appliance.jobs.queue import JobQueue, TakenJob
from appliance.jobs.registry import JobArgumentsError, JobContext, dumps, retry_delay
from appliance.nursery.role import RoleHandle
from appliance.redis import REDIS_DOWN
from appliance.services import Services, open_services
from appliance.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")
IDLE_WAIT = 1.0
REDIS_CALL_TIMEOUT = 10.0
MAX_BACKOFF = 5.0


class JobTimeoutError(Exception):
    pass


class Outage:
    """Logs a Redis outage once when it starts and once when it ends, not on every failed call."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.since: float | None = None

    def down(self, exc: BaseException) -> None:
        if self.since is None:
            self.since = time.monotonic()
            log.warning("%s: redis unreachable (%s); retrying with backoff", self.what, exc)

    def up(self) -> None:
        if self.since is not None:
            log.warning("%s: redis back after %.1fs", self.what, time.monotonic() - self.since)
            self.since = None

    @property
    def is_down(self) -> bool:
        return self.since is not None


class _Slot:
    """A job's concurrency slot, given back once: by the job, or by its abandoned thread when that ends."""

    def __init__(self, release: Callable[[], None]) -> None:
        self._release = release
        self._lock = threading.Lock()
        self._state = "running"  # -> "thread done" | "abandoned" -> "released"
        self._token = trio.lowlevel.current_trio_token()

    def thread_body(self, fn: Callable[[], Any]) -> Callable[[], Any]:
        def body() -> Any:
            try:
                return fn()
            finally:
                with self._lock:
                    abandoned, self._state = self._state == "abandoned", "thread done"
                if abandoned:
                    with contextlib.suppress(trio.RunFinishedError):
                        trio.from_thread.run_sync(self._release, trio_token=self._token)
        return body

    def abandon(self) -> None:
        with self._lock:
            if self._state == "running":
                self._state = "abandoned"

    def give_back(self) -> None:
        with self._lock:
            if self._state == "abandoned":
                return  # the thread gives it back when it ends
            self._state = "released"
        self._release()


class Worker:
    def __init__(self, services: Services, *, concurrency: int = 8, lease: float = 30.0, grace: float = 30.0,
                 queue: JobQueue | None = None, worker_id: str | None = None) -> None:
        self.services = services
        self.queue = queue or JobQueue(services.redis, services.keys)
        self.concurrency = concurrency
        self.lease = lease
        self.grace = grace
        self.tick = min(1.0, lease / 3)
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.held: dict[str, TakenJob] = {}
        self.slots = trio.Semaphore(concurrency)
        self._done_send, self._done_recv = trio.open_memory_channel[tuple[TakenJob, str, float]](math.inf)
        self.outage = Outage(f"worker {self.id}")
        self.processed = 0
        self.last_maintenance = trio.current_time()

    # -- lifecycle -------------------------------------------------------------------------------------
    async def run(self, stop: trio.Event, *, task_status: trio.TaskStatus[RoleHandle] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        await self._persist(self.services.redis.ping)  # READY only after a first successful Redis contact
        async with trio.open_nursery() as support:
            acks_done = trio.Event()
            support.start_soon(self._ack_loop, acks_done)
            support.start_soon(self._maintenance_loop)
            async with trio.open_nursery() as jobs:
                task_status.started(RoleHandle(status=self.status, healthy=self.healthy))
                with trio.CancelScope() as fetching:
                    support.start_soon(_cancel_when_set, stop, fetching)
                    await self._fetch_loop(jobs)
                await self._leave()
                log.info("worker %s stopping: %d jobs still running, %gs grace", self.id, len(self.held),
                         self.grace)
                jobs.cancel_scope.deadline = trio.current_time() + self.grace
            self._done_send.close()
            with trio.move_on_after(self.grace, shield=True):
                await acks_done.wait()
            support.cancel_scope.cancel()
        with trio.move_on_after(2, shield=True):
            await self.queue.forget_worker(self.id)

    async def _leave(self) -> None:
        """Stop being a worker enqueues hand jobs to, and hand back any job handed over meanwhile (one a
        cancelled wait had already popped keeps its lease: it is requeued when the lease runs out)."""
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            try:
                await self.queue.release(await self.queue.fetch(self.id, 0, self.lease))
            except REDIS_DOWN as exc:
                log.warning("worker %s: could not leave the idle set: %s", self.id, exc)

    def status(self) -> str:
        return f"{len(self.held)} jobs running, {self.processed} done"

    async def healthy(self) -> bool:
        return not self.outage.is_down and trio.current_time() - self.last_maintenance < 5 * self.tick + 5

    # -- fetching --------------------------------------------------------------------------------------
    async def _fetch_loop(self, jobs: trio.Nursery) -> None:
        while True:
            await self.slots.acquire()
            n = 1
            while n < self.concurrency and self.slots.value > 0:
                self.slots.acquire_nowait()
                n += 1
            try:
                # Shielded: a reply lost to cancellation would strand its jobs until their lease ran out.
                with trio.CancelScope(shield=True), trio.fail_after(REDIS_CALL_TIMEOUT):
                    taken = await self.queue.fetch(self.id, n, self.lease, register_idle=True)
                self.outage.up()
            except (*REDIS_DOWN, trio.TooSlowError) as exc:
                taken = []
                self.outage.down(exc)
            for _ in range(n - len(taken)):
                self.slots.release()
            for _ in range(len(taken) - n):  # jobs handed over while idle come on top of n: still one slot each
                await self.slots.acquire()
            for job in taken:
                self._start(jobs, job)
            if not taken:
                handed = await self._idle()
                if handed is not None:
                    await self.slots.acquire()
                    self._start(jobs, handed)

    def _start(self, jobs: trio.Nursery, job: TakenJob) -> None:
        self.held[job.id] = job
        jobs.start_soon(self._run_job, job)

    async def _idle(self) -> TakenJob | None:
        """Wait for work; returns a job an enqueue handed to this worker, if that is what ended the wait."""
        if self.outage.is_down:
            await trio.sleep(1.0)
            return None
        try:
            work = await self.queue.wait_for_work(self.id, IDLE_WAIT)
        except REDIS_DOWN as exc:
            self.outage.down(exc)
            return None
        return work if isinstance(work, TakenJob) else None

    # -- running ---------------------------------------------------------------------------------------
    async def _run_job(self, taken: TakenJob) -> None:
        started = trio.current_time()
        slot = _Slot(self.slots.release)
        try:
            result = await self._call(taken, slot)
            self._done_send.send_nowait((taken, dumps(result, "result"), trio.current_time() - started))
        except trio.Cancelled:
            log.warning("job %s (%s) cancelled by shutdown: handing it back", taken.id, taken.name)
            with trio.move_on_after(5, shield=True):
                await self.queue.release([taken])
                self.held.pop(taken.id, None)
            raise
        except JobArgumentsError as exc:
            await self._fail(taken, exc, dead=True)
        except Exception as exc:  # one job's failure stays inside it
            await self._fail(taken, exc)
        finally:
            slot.give_back()

    async def _call(self, taken: TakenJob, slot: _Slot) -> Any:
        spec = self.queue.catalog.get(taken.name)
        if spec is None:
            raise JobArgumentsError(f"no job named {taken.name!r} is registered in this worker")
        bound = spec.bind(JobContext(taken.id, taken.attempt, self.services), taken.args)
        with trio.move_on_after(taken.timeout) as deadline:
            if spec.is_async:
                return await spec.fn(*bound.args, **bound.kwargs)
            # A thread cannot be killed: on timeout it is abandoned and the job is failed now, but its slot
            # stays taken until the thread really ends, so abandoned threads never exceed the concurrency.
            return await trio.to_thread.run_sync(slot.thread_body(partial(spec.fn, *bound.args, **bound.kwargs)),
                                                 abandon_on_cancel=True)
        if deadline.cancelled_caught:
            slot.abandon()
            raise JobTimeoutError(f"timed out after {taken.timeout:g}s")

    async def _fail(self, taken: TakenJob, exc: Exception, *, dead: bool = False) -> None:
        retry_at = None
        if not dead and taken.attempt <= taken.max_retries:
            retry_at = self.queue.clock() + retry_delay(taken.attempt)
        error = f"{type(exc).__name__}: {exc}"
        outcome = await self._persist(self.queue.fail, taken, error, traceback.format_exc(), retry_at)
        self.held.pop(taken.id, None)
        what = {1: f"retry {taken.attempt} of {taken.max_retries} scheduled", 2: "dead", 0: "lease lost"}[outcome]
        log.warning("job %s (%s) failed, %s: %s", taken.id, taken.name, what, error)

    # -- acknowledging and leases ----------------------------------------------------------------------
    async def _ack_loop(self, acks_done: trio.Event) -> None:
        async for first in self._done_recv:
            batch = [first]
            while len(batch) < 512:
                try:
                    batch.append(self._done_recv.receive_nowait())
                except trio.WouldBlock:
                    break
            for taken, _, _ in batch:  # no longer ours to renew: renewing them now would race the finish
                self.held.pop(taken.id, None)
            with trio.CancelScope(shield=True):
                acked = await self._persist(self.queue.finish, batch)
            if acked < len(batch):
                log.warning("%d finished jobs had lost their lease (run again elsewhere)", len(batch) - acked)
            self.processed += len(batch)
        acks_done.set()

    async def _maintenance_loop(self) -> None:
        """Renew our leases, recover other workers' expired ones, promote due jobs, say we are alive."""
        while True:
            try:
                with trio.fail_after(REDIS_CALL_TIMEOUT):
                    lost = await self.queue.renew(list(self.held.values()), self.lease)
                    if lost:
                        log.warning("leases lost for %s; those jobs may run again elsewhere", lost)
                    recovered = await self.queue.requeue_expired()
                    if recovered:
                        log.warning("requeued %d jobs whose worker stopped renewing: %s", len(recovered), recovered)
                    await self.queue.promote_due()
                    await self.queue.beat(self.id, {"pid": os.getpid(), "host": socket.gethostname(),
                                                    "running": len(self.held), "processed": self.processed})
                self.outage.up()
                self.last_maintenance = trio.current_time()
            except (*REDIS_DOWN, trio.TooSlowError) as exc:
                self.outage.down(exc)
            await trio.sleep(self.tick)

    async def _persist(self, call: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Retry a Redis call through an outage with capped exponential backoff; logs once per outage."""
        delay = 0.05
        while True:
            try:
                with trio.fail_after(REDIS_CALL_TIMEOUT):
                    result = await call(*args)
                self.outage.up()
                return result
            except (*REDIS_DOWN, trio.TooSlowError) as exc:
                self.outage.down(exc)
                await trio.sleep(delay)
                delay = min(MAX_BACKOFF, delay * 2)


async def _cancel_when_set(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


async def serve_worker(settings: Settings, stop: trio.Event, *,
                       task_status: trio.TaskStatus[RoleHandle] = trio.TASK_STATUS_IGNORED) -> None:
    async with open_services(settings) as services:
        worker = Worker(services, concurrency=settings.job_concurrency, lease=settings.job_lease,
                        grace=settings.shutdown_grace)
        await worker.run(stop, task_status=task_status)

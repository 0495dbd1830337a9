"""Receipts jobs (declared in ``appliance/jobs/catalog.py``; only workers import this module):

- ``receipts.sync`` (default queue): one slice of a sync run; hands the run to a follow-up job of the same
  run when its slice of time is up. Held under a Redis lease lock per business; a copy that finds the
  lock held is retried (the holder may be a worker that just died: its lease runs out).
- ``receipts.reap_stale`` (periodic): fails runs with no heartbeat for 180 s or no progress for 30 min.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import trio

from appliance.jobs.locks import hold
from appliance.jobs.queue import JobQueue
from appliance.jobs.registry import JobContext
from appliance.nursery.exception_groups import leaves
from appliance.receipts import ReconnectNeededError, runs, sync, tokens
from appliance.receipts.gmail import GmailClient
from appliance.receipts.quota import budget_for
from appliance.services import Services

log = logging.getLogger(__name__)
SYNC_JOB = "receipts.sync"
SYNC_RETRIES = 8  # the max_retries declared for receipts.sync in jobs/catalog.py


def lock_name(business_id: int) -> str:
    return f"receipts-sync:{business_id}"


async def sync_job(ctx: JobContext, business_id: int, run_id: int, slice: int = 0) -> dict[str, Any]:
    svc: Services = ctx.services
    # The lock's lease is the job's: a holder presumed dead by the queue is presumed dead here too. A
    # follow-up job can start before its predecessor lets go, and a rerun after a SIGKILL before the dead
    # holder's lease runs out: wait that long rather than fail.
    lease = svc.settings.job_lease
    with plain_errors():  # the lock's renewal nursery would report any failure as an ExceptionGroup
        async with hold(svc.redis, svc.keys, lock_name(business_id), ttl=lease, wait=lease + 5):
            return await _sync_slice(ctx, svc, business_id, run_id, slice)


@contextmanager
def plain_errors() -> Iterator[None]:
    """One failure inside nurseries surfaces as itself (what the job record and the run show)."""
    try:
        yield
    except BaseExceptionGroup as group:
        errors = leaves(group)
        if len(errors) == 1 and isinstance(errors[0], Exception):
            raise errors[0] from None
        raise


async def _sync_slice(ctx: JobContext, svc: Services, business_id: int, run_id: int,
                      slice: int) -> dict[str, Any]:
    state = await svc.db.run(sync.begin_slice, run_id, slice)
    if state is None:
        return {"run_id": run_id, "slice": slice, "skipped": "not the run's current slice"}
    connection = state["connection"]
    if connection is None or connection.status != "ok":
        why = "no Gmail mailbox is connected" if connection is None else "the mailbox needs reconnecting"
        await svc.db.run(runs.finish, run_id, "failed", why)
        return {"run_id": run_id, "status": "failed", "error": why}
    client = GmailClient(svc.settings, tokens.decrypt(svc.settings, connection.encrypted_refresh_token),
                         budget_for(svc, business_id))
    work = sync.Slice(svc, client, run_id, business_id, state["mode"], state["params"],
                      state["checkpoint"], state["scanned"], connection.history_id)
    deadline = trio.current_time() + svc.settings.receipts_sync_slice
    try:
        done = await with_heartbeat(svc, run_id, lambda: work.run(deadline))
    except ReconnectNeededError as exc:
        await svc.db.run(sync.fail_for_reconnect, run_id, business_id, str(exc))
        return {"run_id": run_id, "status": "failed", "error": str(exc)}
    except sync.RunEndedError as exc:
        return {"run_id": run_id, "status": "ended", "error": str(exc)}
    except Exception as exc:
        if ctx.attempt > SYNC_RETRIES:  # the last attempt: the run fails with what went wrong
            await svc.db.run(runs.finish, run_id, "failed", f"{type(exc).__name__}: {exc}")
        raise
    if done:
        await svc.db.run(sync.complete, run_id, business_id, work.checkpoint.get("history_start"))
        return {"run_id": run_id, "status": "completed", "scanned": work.scanned,
                "saved": len(work.saved_ids)}
    # Enqueue first, then move the run to the next slice while still holding the lock: a crash between
    # the two leaves this job to rerun (the follow-up finds the slice number is not its own and stops).
    next_job = await JobQueue(svc.redis, svc.keys).enqueue(
        SYNC_JOB, {"business_id": business_id, "run_id": run_id, "slice": slice + 1})
    await svc.db.run(sync.hand_over, run_id, slice + 1, next_job)
    return {"run_id": run_id, "status": "continued", "next_job": next_job, "scanned": work.scanned}


async def with_heartbeat(svc: Services, run_id: int, work: Callable[[], Awaitable[bool]]) -> bool:
    """Run ``work`` while beating the run's heartbeat every few seconds; a run that stops being active
    (failed as stale meanwhile) cancels the work with RunEndedError."""
    outcome: list[bool] = []

    async def beat(scope: trio.CancelScope) -> None:
        while True:
            await trio.sleep(sync.HEARTBEAT_EVERY)
            if not await svc.db.run(runs.heartbeat, run_id):
                raise sync.RunEndedError(f"run {run_id} was ended while it ran")

    with plain_errors():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(beat, nursery.cancel_scope)
            outcome.append(await work())
            nursery.cancel_scope.cancel()
    return outcome[0]


async def reap_stale_job(ctx: JobContext) -> dict[str, Any]:
    failed = await ctx.services.db.run(runs.fail_stale)
    if failed:
        log.warning("failed stale receipt sync runs %s", failed)
    return {"failed": failed}

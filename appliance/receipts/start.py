"""Starting a sync run (the API's POST and the operator's ``appliance receipts sync``): one way to do it.

The run row is written first; the partial unique index on active runs lets exactly one of racing starts
through. Its job is then enqueued by name; if Redis refuses, the row is removed again, so nothing
half-made is left behind."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import trio
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from appliance.jobs.queue import JobQueue
from appliance.receipts import ReceiptsError, runs, store
from appliance.receipts.plan import SyncRequest, plan_params
from appliance.redis import REDIS_DOWN
from appliance.services import Services

SYNC_JOB = "receipts.sync"


class NotConnectedError(ReceiptsError):
    """No mailbox, or one that needs reconnecting (the API's 412)."""


class SyncBusyError(ReceiptsError):
    """A run of the business is already queued or running (the API's 409)."""

    def __init__(self, run_id: int | None) -> None:
        super().__init__("a sync is already queued or running for this business")
        self.run_id = run_id


@dataclass(frozen=True)
class Started:
    run_id: int
    job_id: str


def _create(session: Session, business_id: int, wanted: SyncRequest) -> tuple[int | None, int | None]:
    connection = store.connection_status(session, business_id)
    if not connection["connected"]:
        raise NotConnectedError("no Gmail mailbox is connected; connect one at /api/gmail/oauth/start")
    if connection["status"] != "ok":
        raise NotConnectedError("the Gmail mailbox needs reconnecting (Google refused its token)")
    runs.fail_stale(session, business_id)
    zone = store.business_zone(session, business_id)
    params = plan_params(wanted, zone, dt.datetime.now(zone).date())
    try:
        with session.begin_nested():
            return runs.create_run(session, business_id, wanted.mode, params), None
    except IntegrityError:
        return None, runs.active_run_id(session, business_id)


async def start_sync(services: Services, queue: JobQueue, business_id: int, wanted: SyncRequest) -> Started:
    run_id, active = await services.db.run(_create, business_id, wanted)
    if run_id is None:
        raise SyncBusyError(active)
    try:
        job_id = await queue.enqueue(SYNC_JOB, {"business_id": business_id, "run_id": run_id, "slice": 0})
    except REDIS_DOWN:
        with trio.CancelScope(shield=True):
            await services.db.run(runs.forget_run, run_id)
        raise
    await services.db.run(runs.set_job, run_id, job_id)
    return Started(run_id, job_id)

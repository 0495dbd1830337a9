"""Operators' view of the job runner: ``/api/jobs/stats``, ``/api/jobs/<id>``, ``/api/jobs/<id>/retry``.

Job records live in Redis, not in tenant rows, but a job done for a business names it in its arguments
(``business_id``) and carries that business's data (a WhatsApp message, a mailbox sync): such a job is
another tenant's 404, like any tenant row. Jobs with no business (diagnostics, maintenance) are visible to
every logged-in user, and the queue statistics are counts only.
"""

from __future__ import annotations

from typing import Any

import trio
from quart import Blueprint

from appliance.jobs.registry import JobNotFoundError, JobStateError
from appliance.web.auth import require_auth
from appliance.web.context import job_queue, principal
from appliance.web.errors import ApiError
from appliance.web.query import int_param

bp = Blueprint("jobs", __name__)


@bp.get("/api/jobs/stats")
@require_auth
async def stats():
    return {"success": True, **await job_queue().stats()}


FINAL = ("finished", "dead")
WAIT_POLL = 0.05


def _visible(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """The record if the caller's business may see it, else None (another tenant's job is a 404)."""
    if record is None:
        return None
    args = record.get("args")
    owner = args.get("business_id") if isinstance(args, dict) else None
    return record if owner is None or owner == principal().business_id else None


@bp.get("/api/jobs/<job_id>")
@require_auth
async def show(job_id: str):
    """The job's record; with ``?wait=S`` (up to 30) it first waits that long for the job to finish."""
    wait = float(int_param("wait", 0, low=0, high=30))
    q = job_queue()
    record = _visible(await q.get(job_id))
    with trio.move_on_after(wait):
        while record is not None and record["status"] not in FINAL:
            await trio.sleep(WAIT_POLL)
            record = _visible(await q.get(job_id))
    if record is None:
        raise ApiError(404, f"job {job_id} not found")
    return {"success": True, "job": record}


@bp.post("/api/jobs/<job_id>/retry")
@require_auth
async def retry(job_id: str):
    if _visible(await job_queue().get(job_id)) is None:
        raise ApiError(404, f"job {job_id} not found")
    try:
        await job_queue().retry(job_id)
    except JobNotFoundError as exc:
        raise ApiError(404, str(exc)) from None
    except JobStateError as exc:
        raise ApiError(409, str(exc)) from None
    return {"success": True, "job_id": job_id, "status": "queued"}

"""Sync runs in ``receipt_sync_runs``: one active per business (a partial unique index), their counters,
checkpoint and heartbeat, and failing the stale ones."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from appliance.models import ReceiptSyncRun

ACTIVE = ("queued", "running")
HEARTBEAT_STALE = dt.timedelta(seconds=180)
PROGRESS_STALE = dt.timedelta(minutes=30)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def run_dict(run: ReceiptSyncRun) -> dict[str, Any]:
    return {
        "id": run.id, "status": run.status, "mode": run.mode, "messages_scanned": run.messages_scanned,
        "saved_receipts": run.saved_receipts, "errors_count": run.errors_count,
        "progress_percentage": float(run.progress_percentage or 0), "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at), "last_heartbeat_at": _iso(run.last_heartbeat_at),
        "error_message": run.error_message, "created_at": _iso(run.created_at), "job_id": run.job_id,
        "params": run.params or {},
    }


def create_run(session: Session, business_id: int, mode: str, params: dict[str, Any]) -> int:
    """A queued run; IntegrityError (from the partial unique index) when one is already active."""
    run = ReceiptSyncRun(business_id=business_id, mode=mode, status="queued", params=params,
                         checkpoint={"slice": 0}, last_heartbeat_at=now())
    session.add(run)
    session.flush()
    return run.id


def active_run_id(session: Session, business_id: int) -> int | None:
    return session.scalar(select(ReceiptSyncRun.id).where(
        ReceiptSyncRun.business_id == business_id, ReceiptSyncRun.status.in_(ACTIVE)))


def set_job(session: Session, run_id: int, job_id: str) -> None:
    session.execute(update(ReceiptSyncRun).where(ReceiptSyncRun.id == run_id).values(job_id=job_id))


def forget_run(session: Session, run_id: int) -> None:
    """Remove a run whose job could not be enqueued (nothing half-made is left behind)."""
    run = session.get(ReceiptSyncRun, run_id)
    if run is not None:
        session.delete(run)


def get_run(session: Session, business_id: int, run_id: int) -> dict[str, Any] | None:
    run = session.scalar(select(ReceiptSyncRun).where(
        ReceiptSyncRun.id == run_id, ReceiptSyncRun.business_id == business_id))
    return run_dict(run) if run else None


def latest_run(session: Session, business_id: int) -> dict[str, Any] | None:
    run = session.scalar(select(ReceiptSyncRun).where(ReceiptSyncRun.business_id == business_id)
                         .order_by(ReceiptSyncRun.id.desc()).limit(1))
    return run_dict(run) if run else None


def last_completed_start(session: Session, business_id: int) -> dt.datetime | None:
    return session.scalar(select(func.max(ReceiptSyncRun.started_at)).where(
        ReceiptSyncRun.business_id == business_id, ReceiptSyncRun.status == "completed"))


def fail_stale(session: Session, business_id: int | None = None, at: dt.datetime | None = None) -> list[int]:
    """Fail active runs with no heartbeat for 180 s or no progress for 30 minutes; returns their ids."""
    at = at or now()
    beat = func.coalesce(ReceiptSyncRun.last_heartbeat_at, ReceiptSyncRun.created_at)
    moved = func.coalesce(ReceiptSyncRun.last_progress_at, ReceiptSyncRun.started_at,
                          ReceiptSyncRun.created_at)
    stale = [ReceiptSyncRun.status.in_(ACTIVE),
             or_(beat < at - HEARTBEAT_STALE, moved < at - PROGRESS_STALE)]
    if business_id is not None:
        stale.append(ReceiptSyncRun.business_id == business_id)
    runs = list(session.scalars(select(ReceiptSyncRun).where(*stale).with_for_update(skip_locked=True)))
    for run in runs:
        beat_at = run.last_heartbeat_at or run.created_at
        if beat_at < at - HEARTBEAT_STALE:
            why = f"no heartbeat for {int((at - beat_at).total_seconds())} s (its worker stopped)"
        else:
            why = "no progress for 30 minutes"
        run.status, run.finished_at = "failed", at
        run.error_message = f"stale run failed: {why}"
    return [run.id for run in runs]


# -- what the sync job writes ----------------------------------------------------------------------------
def lock_run(session: Session, run_id: int) -> ReceiptSyncRun | None:
    return session.scalar(select(ReceiptSyncRun).where(ReceiptSyncRun.id == run_id).with_for_update())


def heartbeat(session: Session, run_id: int) -> bool:
    """Beat for a running run; False when it is no longer active (failed as stale, for instance)."""
    beaten = session.scalar(update(ReceiptSyncRun).where(
        ReceiptSyncRun.id == run_id, ReceiptSyncRun.status.in_(ACTIVE)).values(last_heartbeat_at=now())
        .returning(ReceiptSyncRun.id))
    return beaten is not None


def finish(session: Session, run_id: int, status: str, error: str | None = None) -> None:
    values: dict[str, Any] = {"status": status, "finished_at": now(), "last_heartbeat_at": now()}
    if status == "completed":
        values["progress_percentage"] = 100
    if error is not None:
        values["error_message"] = error[:2000]
        values["errors_count"] = ReceiptSyncRun.errors_count + 1
    session.execute(update(ReceiptSyncRun).where(
        ReceiptSyncRun.id == run_id, ReceiptSyncRun.status.in_(ACTIVE)).values(**values))

"""Calls on record: created by the voice webhook, moved by status callbacks, closed by the media stream."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from appliance.models import Business, Call, Lead

FINAL_STATUSES = ("completed", "busy", "failed", "no-answer", "canceled")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def business_for_call(session: Session, requested: int | None) -> int | None:
    """The business a voice webhook belongs to: the one named in its URL, else the only one there is."""
    if requested is not None:
        return requested if session.get(Business, requested) is not None else None
    ids = session.scalars(select(Business.id).limit(2)).all()
    return ids[0] if len(ids) == 1 else None


def record_incoming(session: Session, business_id: int, call_sid: str, from_number: str | None,
                    to_number: str | None) -> None:
    """Idempotent: Twilio retries a webhook it did not see answered. The call is linked to the lead of the
    caller's number, when there is one."""
    lead_id = session.scalar(select(Lead.id).where(Lead.business_id == business_id, Lead.phone == from_number)
                             .order_by(Lead.id).limit(1)) if from_number else None
    session.execute(insert(Call).values(
        business_id=business_id, call_sid=call_sid, from_number=from_number, to_number=to_number,
        status="ringing", lead_id=lead_id,
    ).on_conflict_do_nothing(index_elements=[Call.call_sid]))


def apply_status(session: Session, call_sid: str, status: str, duration: float | None) -> bool:
    call = session.scalar(select(Call).where(Call.call_sid == call_sid))
    if call is None:
        return False
    call.status = status
    if status in FINAL_STATUSES:
        call.ended_at = call.ended_at or _now()
        if duration is not None:
            call.duration_seconds = duration
    return True


def stream_started(session: Session, call_sid: str, stream_sid: str) -> None:
    call = session.scalar(select(Call).where(Call.call_sid == call_sid))
    if call is not None:
        call.stream_sid, call.status, call.started_at = stream_sid, "in-progress", _now()


def stream_ended(session: Session, call_sid: str, frames_in: int, frames_out: int, dropped: int,
                 reason: str) -> None:
    call = session.scalar(select(Call).where(Call.call_sid == call_sid))
    if call is None:
        return
    ended = _now()
    call.frames_in, call.frames_out, call.frames_dropped = frames_in, frames_out, dropped
    call.end_reason = reason[:80]
    call.ended_at = ended
    if call.status not in FINAL_STATUSES:
        call.status = "completed"
    if call.started_at is not None:
        call.duration_seconds = round((ended - call.started_at).total_seconds(), 2)


def voice_agent_for(session: Session, call_sid: str) -> str | None:
    return session.scalar(select(Business.voice_agent).join(Call, Call.business_id == Business.id)
                          .where(Call.call_sid == call_sid))


def call_dict(call: Call) -> dict[str, Any]:
    def iso(value: dt.datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": call.id, "call_sid": call.call_sid, "stream_sid": call.stream_sid, "from": call.from_number,
        "to": call.to_number, "status": call.status, "started_at": iso(call.started_at),
        "ended_at": iso(call.ended_at),
        "duration_seconds": float(call.duration_seconds) if call.duration_seconds is not None else None,
        "frames_in": call.frames_in, "frames_out": call.frames_out, "frames_dropped": call.frames_dropped,
        "end_reason": call.end_reason, "created_at": iso(call.created_at), "lead_id": call.lead_id,
    }


def get_call(session: Session, business_id: int, call_id: int) -> dict[str, Any] | None:
    """One call with what the voice agent left: transcript, tool calls and results, token usage."""
    call = session.scalar(select(Call).where(Call.id == call_id, Call.business_id == business_id))
    if call is None:
        return None
    return {**call_dict(call), "transcript": call.transcript or [], "tool_calls": call.tool_calls or [],
            "usage": call.usage or {}}


def list_calls(session: Session, *, business_id: int, page: int, per_page: int, phone: str | None = None
               ) -> tuple[list[dict[str, Any]], int]:
    """A page of the business's calls, newest first; with ``phone``, only calls from or to that number."""
    where = Call.business_id == business_id
    if phone:
        where = and_(where, or_(Call.from_number == phone, Call.to_number == phone))
    total = session.scalar(select(func.count()).select_from(Call).where(where)) or 0
    rows = session.scalars(select(Call).where(where).order_by(Call.created_at.desc(), Call.id.desc())
                           .offset((page - 1) * per_page).limit(per_page)).all()
    return [call_dict(c) for c in rows], total

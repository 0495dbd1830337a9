"""Edits, deletes, reactions and poll votes: they change the message they name instead of adding a row.

An edit replaces the body and keeps what it replaced in ``meta.history``; a delete for everyone sets
``deleted_at`` (the inbox shows "message deleted"); a reaction is kept on its message in ``meta.reactions``,
one per person ("" takes it back); a poll vote in ``meta.votes`` (the choice itself is end-to-end encrypted
for the poll's author, so a vote records who voted and when). Each is idempotent: the same edit twice
changes nothing the second time, so a bridge posting both the ``messages.upsert`` and the
``messages.update`` form of one edit is harmless.

An event whose message is not stored yet, or is still a decryption placeholder, is kept in
``whatsapp_pending_event`` and applied, in arrival order, when the message is stored. Both paths hold the
target message's advisory lock, so an event and its message racing in two workers meet in one order.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from appliance.models import WhatsAppMessage, WhatsAppPendingEvent
from appliance.whatsapp.incoming import Event, event_from_json, event_to_json


def actor_key(event: Event) -> str:
    if event.by_me:
        return "me"
    actor = event.actor
    return (actor.phone or actor.lid or actor.jid) if actor else "unknown"


def _dedupe(event: Event) -> str:
    what = f"{event.body}|{event.emoji}|{event.at.isoformat() if event.at else ''}"
    return f"{event.type}:{actor_key(event)}:{hashlib.sha256(what.encode()).hexdigest()[:16]}"


def apply_event(session: Session, business_id: int, event: Event) -> str:
    """``applied``, ``unchanged`` or ``pending`` (the message has not arrived; kept for when it does)."""
    row = session.scalar(select(WhatsAppMessage).where(WhatsAppMessage.business_id == business_id,
                                                      WhatsAppMessage.provider_message_id == event.target_id)
                         .with_for_update())
    if row is None or row.placeholder:
        session.execute(insert(WhatsAppPendingEvent).values(
            business_id=business_id, target_provider_id=event.target_id, dedupe=_dedupe(event),
            event=event_to_json(event)).on_conflict_do_nothing())
        return "pending"
    return "applied" if _apply(row, event) else "unchanged"


def apply_pending(session: Session, business_id: int, message_id: int, provider_id: str) -> int:
    """Apply the events that waited for this message; the number applied."""
    waiting = session.scalars(select(WhatsAppPendingEvent).where(
        WhatsAppPendingEvent.business_id == business_id,
        WhatsAppPendingEvent.target_provider_id == provider_id).order_by(WhatsAppPendingEvent.id)).all()
    if not waiting:
        return 0
    row = session.get_one(WhatsAppMessage, message_id, populate_existing=True)  # fresh after the insert
    applied = sum(_apply(row, event_from_json(p.event)) for p in waiting)
    session.execute(delete(WhatsAppPendingEvent).where(WhatsAppPendingEvent.id.in_([p.id for p in waiting])))
    return applied


def _apply(row: WhatsAppMessage, event: Event) -> bool:
    """Change the message; False when it already says so."""
    meta: dict[str, Any] = dict(row.meta or {})
    at = event.at or dt.datetime.now(dt.UTC)
    if event.type == "delete":
        if row.deleted_at is not None:
            return False
        row.deleted_at = at
        return True
    if event.type == "edit":
        if row.deleted_at is not None or not event.body or event.body == row.body:
            return False
        meta["history"] = [*meta.get("history", []), {"body": row.body, "replaced_at": at.isoformat()}]
        row.body, row.edited_at = event.body, at
    elif event.type == "reaction":
        reactions = dict(meta.get("reactions") or {})
        who = actor_key(event)
        if (reactions.get(who) or "") == (event.emoji or ""):
            return False
        if event.emoji:
            reactions[who] = event.emoji
        else:
            reactions.pop(who, None)
        meta["reactions"] = reactions
    elif event.type == "poll_vote":
        votes = dict(meta.get("votes") or {})
        who = actor_key(event)
        if votes.get(who) == at.isoformat():
            return False
        votes[who] = at.isoformat()
        meta["votes"] = votes
    else:
        return False
    row.meta = meta  # a new dict, so the JSON column is written
    return True

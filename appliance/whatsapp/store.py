"""WhatsApp storage, tenant-scoped: leads of WhatsApp contacts, outbound messages, statuses, the inbox.

What arrives from Baileys is stored by ``inbound`` (exactly once, by constraint); its events by ``events``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import and_, case, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from appliance.models import Business, Lead, WhatsAppMessage
from appliance.whatsapp.wire import STATUS_RANK, phone_of


def upsert_lead(session: Session, business_id: int, phone: str, name: str | None) -> int:
    """The lead for this phone number, created on first contact; serialised per number across workers."""
    session.execute(text("SELECT pg_advisory_xact_lock(:b, hashtext(:p))"), {"b": business_id, "p": phone})
    lead = session.scalar(select(Lead).where(Lead.business_id == business_id, Lead.phone == phone)
                          .order_by(Lead.id).limit(1))
    if lead is None:
        lead = Lead(business_id=business_id, phone=phone, name=name, source="whatsapp", status="new")
        session.add(lead)
        session.flush()
    elif name and not lead.name:
        lead.name = name
    return lead.id


def store_outbound(session: Session, business_id: int, jid: str, body: str, status: str,
                   provider_id: str | None) -> dict[str, Any]:
    """Store a message we sent. Baileys may echo our own message back through the webhook first; then
    this completes that row instead of adding a second one."""
    lead_id = None
    phone = phone_of(jid)
    if phone:
        lead_id = session.scalar(select(Lead.id).where(Lead.business_id == business_id,
                                                       Lead.phone == phone).limit(1))
    values = {"business_id": business_id, "lead_id": lead_id, "jid": jid, "direction": "out", "body": body,
              "status": status, "provider_message_id": provider_id,
              "sent_at": dt.datetime.now(dt.UTC) if status == "sent" else None}
    row_id = session.execute(
        insert(WhatsAppMessage).values(**values).on_conflict_do_update(
            index_elements=[WhatsAppMessage.business_id, WhatsAppMessage.provider_message_id],
            index_where=WhatsAppMessage.provider_message_id.isnot(None),
            set_={"direction": "out", "body": body, "lead_id": lead_id, "placeholder": False},
        ).returning(WhatsAppMessage.id)
    ).scalar_one()
    return message_dict(session.get_one(WhatsAppMessage, row_id))


def apply_status(session: Session, business_id: int, provider_id: str, status: str) -> bool:
    """Move a stored message's status forward (never back: a late 'delivered' after 'read' is ignored)."""
    row = session.scalar(select(WhatsAppMessage).where(WhatsAppMessage.business_id == business_id,
                                                      WhatsAppMessage.provider_message_id == provider_id))
    if row is None:
        return False
    if STATUS_RANK.get(status, -1) > STATUS_RANK.get(row.status, -1) or status == "error":
        row.status = status
        if status in ("read", "played"):
            row.read_at = row.read_at or dt.datetime.now(dt.UTC)
    return True


def business_exists(session: Session, business_id: int) -> bool:
    return session.get(Business, business_id) is not None


def reply_policy(session: Session, business_id: int) -> tuple[str, str | None]:
    business = session.get(Business, business_id)
    return (business.auto_reply_mode, business.auto_reply_text) if business else ("off", None)


# -- the inbox --------------------------------------------------------------------------------------------
def message_dict(row: WhatsAppMessage, files: Callable[[str], str | None] | None = None) -> dict[str, Any]:
    """A message as the inbox shows it. ``body`` is what to display: the text or caption, a typed
    placeholder for media with no caption ("[voice note 0:07]"), "message deleted" once deleted for everyone.
    ``files`` turns a stored media path into a signed URL."""
    meta = row.meta or {}
    media = dict(row.media) if row.media else None
    if media is not None:  # "path" is relative to DATA_DIR once the file is fetched (whatsapp.media)
        media["url"] = files(media["path"]) if files and media.get("path") else None
    body = "message deleted" if row.deleted_at else row.body
    if row.placeholder and body is None:
        body = "waiting for this message"
    return {
        "id": row.id, "jid": row.jid, "direction": row.direction, "body": body, "kind": row.kind or "text",
        "provider_message_id": row.provider_message_id, "status": row.status,
        "sent_at": row.sent_at.isoformat() if row.sent_at else None,
        "read_at": row.read_at.isoformat() if row.read_at else None,
        "created_at": row.created_at.isoformat(),
        "media": media, "placeholder": row.placeholder, "deleted": row.deleted_at is not None,
        "edited": row.edited_at is not None, "history": [] if row.deleted_at else meta.get("history", []),
        "reactions": meta.get("reactions", {}), "reply_to": meta.get("reply_to"), "details": meta.get("details", {}),
    }


def conversations(session: Session, business_id: int, page: int, per_page: int
                  ) -> tuple[list[dict[str, Any]], int]:
    mine = WhatsAppMessage.business_id == business_id
    last = (select(WhatsAppMessage.jid, func.max(WhatsAppMessage.id).label("last_id"),
                   func.count(case((and_(WhatsAppMessage.direction == "in", WhatsAppMessage.read_at.is_(None)), 1)))
                   .label("unread"))
            .where(mine).group_by(WhatsAppMessage.jid).subquery())
    total = session.scalar(select(func.count()).select_from(last)) or 0
    rows = session.execute(
        select(WhatsAppMessage, last.c.unread, Lead.name)
        .join(last, WhatsAppMessage.id == last.c.last_id)
        .outerjoin(Lead, and_(Lead.id == WhatsAppMessage.lead_id, Lead.business_id == business_id))
        .order_by(WhatsAppMessage.id.desc()).offset((page - 1) * per_page).limit(per_page)
    ).all()
    return [{"jid": m.jid, "lead_name": name, "unread": unread, "last_message": message_dict(m)}
            for m, unread, name in rows], total


def messages(session: Session, business_id: int, jid: str, before: int | None, limit: int,
             files: Callable[[str], str | None] | None = None) -> list[dict[str, Any]]:
    """Newest first; pass the smallest id you have as ``before`` for the next page."""
    query = select(WhatsAppMessage).where(WhatsAppMessage.business_id == business_id, WhatsAppMessage.jid == jid)
    if before is not None:
        query = query.where(WhatsAppMessage.id < before)
    return [message_dict(m, files) for m in session.scalars(query.order_by(WhatsAppMessage.id.desc()).limit(limit))]


def mark_read(session: Session, business_id: int, jid: str) -> int:
    result = session.execute(update(WhatsAppMessage).where(
        WhatsAppMessage.business_id == business_id, WhatsAppMessage.jid == jid, WhatsAppMessage.direction == "in",
        WhatsAppMessage.read_at.is_(None)).values(read_at=func.now()))
    return result.rowcount  # type: ignore[attr-defined]  # a CursorResult for an UPDATE


def set_usage(session: Session, business_id: int, message_id: int, usage: dict[str, int]) -> None:
    """The model's token usage for the AI reply stored as ``message_id``."""
    session.execute(update(WhatsAppMessage).where(WhatsAppMessage.id == message_id,
                                                  WhatsAppMessage.business_id == business_id).values(usage=usage))

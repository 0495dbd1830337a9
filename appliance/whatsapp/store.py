"""WhatsApp storage, tenant-scoped.

Exactly-once by constraint: the insert is ``ON CONFLICT DO NOTHING`` on the partial unique index over
(business_id, provider_message_id), so a message processed twice is stored once and the second run learns
"already stored" from the database, not by reading an error's text.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, case, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from appliance.models import Business, Lead, WhatsAppMessage
from appliance.whatsapp.wire import STATUS_RANK, Parsed, phone_of


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


def store_inbound_many(session: Session, items: list[tuple[int, Parsed]]) -> list[int | None]:
    """Store many inbound messages in one transaction (see InboundBatcher); ids in the given order.

    Leads are upserted in (business, phone) order, so two batches in two workers take the per-number
    advisory locks in the same order and cannot deadlock.
    """
    for business_id, parsed in sorted(items, key=lambda item: (item[0], item[1].phone or "")):
        if parsed.phone:
            upsert_lead(session, business_id, parsed.phone, parsed.push_name)
    return [store_inbound(session, business_id, parsed) for business_id, parsed in items]


def store_inbound(session: Session, business_id: int, parsed: Parsed) -> int | None:
    """Store one inbound message; returns its id, or None when it was already stored."""
    lead_id = upsert_lead(session, business_id, parsed.phone, parsed.push_name) if parsed.phone else None
    row = session.execute(
        insert(WhatsAppMessage).values(
            business_id=business_id, lead_id=lead_id, jid=parsed.jid, direction="out" if parsed.from_me else "in",
            body=parsed.body, provider_message_id=parsed.provider_id, status="received", sent_at=parsed.sent_at,
        ).on_conflict_do_nothing(
            index_elements=[WhatsAppMessage.business_id, WhatsAppMessage.provider_message_id],
            index_where=WhatsAppMessage.provider_message_id.isnot(None),
        ).returning(WhatsAppMessage.id)
    ).scalar()
    return row


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
            set_={"direction": "out", "body": body, "lead_id": lead_id},
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
def message_dict(row: WhatsAppMessage) -> dict[str, Any]:
    return {
        "id": row.id, "jid": row.jid, "direction": row.direction, "body": row.body,
        "provider_message_id": row.provider_message_id, "status": row.status,
        "sent_at": row.sent_at.isoformat() if row.sent_at else None,
        "read_at": row.read_at.isoformat() if row.read_at else None,
        "created_at": row.created_at.isoformat(),
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


def messages(session: Session, business_id: int, jid: str, before: int | None, limit: int
             ) -> list[dict[str, Any]]:
    """Newest first; pass the smallest id you have as ``before`` for the next page."""
    query = select(WhatsAppMessage).where(WhatsAppMessage.business_id == business_id, WhatsAppMessage.jid == jid)
    if before is not None:
        query = query.where(WhatsAppMessage.id < before)
    return [message_dict(m) for m in session.scalars(query.order_by(WhatsAppMessage.id.desc()).limit(limit))]


def mark_read(session: Session, business_id: int, jid: str) -> int:
    result = session.execute(update(WhatsAppMessage).where(
        WhatsAppMessage.business_id == business_id, WhatsAppMessage.jid == jid, WhatsAppMessage.direction == "in",
        WhatsAppMessage.read_at.is_(None)).values(read_at=func.now()))
    return result.rowcount  # type: ignore[attr-defined]  # a CursorResult for an UPDATE


def set_usage(session: Session, business_id: int, message_id: int, usage: dict[str, int]) -> None:
    """The model's token usage for the AI reply stored as ``message_id``."""
    session.execute(update(WhatsAppMessage).where(WhatsAppMessage.id == message_id,
                                                  WhatsAppMessage.business_id == business_id).values(usage=usage))

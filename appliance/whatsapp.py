"""WhatsApp messages from the Baileys bridge: the webhook's shapes, parsing, and tenant-scoped storage.

Storage is exactly-once by constraint: the insert is ``ON CONFLICT DO NOTHING`` on the partial unique
index over (business_id, provider_message_id), so a message processed twice is stored once and the second
run learns "already stored" from the database, not by reading an error's text.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import and_, case, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from appliance.leads import normalize_phone
from appliance.models import Business, Lead, WhatsAppMessage

# Baileys' numeric WAMessageStatus -> our status names
STATUS_NAMES = {0: "error", 1: "pending", 2: "sent", 3: "delivered", 4: "read", 5: "played"}
STATUS_RANK = {"error": 0, "pending": 1, "sending": 1, "sent": 2, "delivered": 3, "read": 4, "played": 5}
_USER_JID = re.compile(r"^(\d{5,20})(?::\d+)?@s\.whatsapp\.net$")


# -- the webhook's shapes ---------------------------------------------------------------------------------
class MessageKey(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str = Field(min_length=1, max_length=200)
    remoteJid: str = Field(min_length=3, max_length=120)  # noqa: N815 - Baileys' field names
    fromMe: bool = False  # noqa: N815
    participant: str | None = None


class WAMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    key: MessageKey
    messageTimestamp: int | str | dict | None = None  # noqa: N815 - Long objects arrive as dicts
    pushName: str | None = None  # noqa: N815
    message: dict[str, Any] | None = None


class StatusUpdate(BaseModel):
    model_config = ConfigDict(extra="allow")
    key: MessageKey
    update: dict[str, Any]


class Payload(BaseModel):
    model_config = ConfigDict(extra="allow")
    messages: list[WAMessage] = Field(default_factory=list, max_length=500)
    updates: list[StatusUpdate] = Field(default_factory=list, max_length=500)


class IncomingWebhook(BaseModel):
    model_config = ConfigDict(extra="allow")
    tenantId: int  # noqa: N815
    payload: Payload

    @field_validator("tenantId", mode="before")
    @classmethod
    def _numeric(cls, value: Any) -> Any:
        if isinstance(value, str) and value.isdigit():
            return int(value)
        return value


class SendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    jid: str | None = Field(default=None, min_length=3, max_length=120)
    phone: str | None = Field(default=None, max_length=40)
    text: str = Field(min_length=1, max_length=4096)

    @model_validator(mode="after")
    def _recipient(self) -> SendRequest:
        if self.jid is None and self.phone is None:
            raise ValueError("give jid or phone")
        if self.jid is None:
            self.jid = normalize_phone(self.phone).lstrip("+") + "@s.whatsapp.net"
        return self


# -- parsing ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Parsed:
    provider_id: str
    jid: str
    from_me: bool
    body: str | None
    push_name: str | None
    sent_at: dt.datetime | None

    @property
    def kind(self) -> str:
        if self.jid.endswith("@g.us"):
            return "group"
        if self.jid == "status@broadcast" or self.jid.endswith("@broadcast"):
            return "status"
        if self.from_me:
            return "own"
        return "direct"

    @property
    def phone(self) -> str | None:
        match = _USER_JID.match(self.jid)
        return "+" + match.group(1) if match else None


def message_text(message: dict[str, Any] | None) -> str | None:
    """The text of a Baileys message: plain, extended, or a media caption."""
    if not message:
        return None
    for wrapper in ("ephemeralMessage", "viewOnceMessage", "viewOnceMessageV2"):
        inner = (message.get(wrapper) or {}).get("message")
        if inner:
            return message_text(inner)
    if isinstance(message.get("conversation"), str):
        return message["conversation"]
    extended = message.get("extendedTextMessage") or {}
    if isinstance(extended.get("text"), str):
        return extended["text"]
    for media in ("imageMessage", "videoMessage", "documentMessage", "audioMessage", "stickerMessage"):
        if media in message:
            caption = (message[media] or {}).get("caption")
            return caption if isinstance(caption, str) else f"[{media.removesuffix('Message')}]"
    return None


def _timestamp(value: Any) -> dt.datetime | None:
    if isinstance(value, dict):  # protobuf Long: {"low": ..., "high": ..., "unsigned": ...}
        value = (int(value.get("high", 0)) << 32) + (int(value.get("low", 0)) & 0xFFFFFFFF)
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        return None
    return dt.datetime.fromtimestamp(seconds, dt.UTC) if seconds > 0 else None


def parse(raw: dict[str, Any]) -> Parsed:
    message = WAMessage.model_validate(raw)
    return Parsed(message.key.id, message.key.remoteJid, message.key.fromMe, message_text(message.message),
                  message.pushName, _timestamp(message.messageTimestamp))


# -- storage ----------------------------------------------------------------------------------------------
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
    match = _USER_JID.match(jid)
    if match:
        lead_id = session.scalar(select(Lead.id).where(Lead.business_id == business_id,
                                                       Lead.phone == "+" + match.group(1)).limit(1))
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
    return message_dict(session.get(WhatsAppMessage, row_id))


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
    return result.rowcount

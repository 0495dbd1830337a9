"""Storing what arrives from Baileys: messages, placeholders and events, exactly once, in one transaction.

- A message is inserted under its conversation (``identity.resolve``: the phone's JID when the phone is
  known, else the LID) with its kind, media metadata and details. The insert is
  ``ON CONFLICT (business, provider id) DO UPDATE ... WHERE placeholder``: a redelivery changes nothing
  and learns "duplicate" from the constraint, while a decryption placeholder stored earlier under the same
  id is filled in, exactly once ("filled").
- A placeholder (a ``CIPHERTEXT`` stub with no content) is inserted with ``DO NOTHING``: it never overwrites
  a real message, and the real one that follows fills it in.
- An event (edit, delete, reaction, vote) changes its target (``events``); none adds a row.
Whatever was waiting for a message (``whatsapp_pending_event``) is applied when it is stored or filled in.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import literal_column
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from appliance.models import WhatsAppMessage
from appliance.whatsapp import events, identity
from appliance.whatsapp.incoming import Incoming

NEW = ("stored", "filled")  # outcomes that make a message new to the inbox


@dataclass(frozen=True)
class Stored:
    outcome: str  # stored, filled, duplicate, placeholder, applied, unchanged, pending, ignored
    message_id: int | None = None
    jid: str | None = None  # the conversation, for a reply

    @property
    def is_new(self) -> bool:
        return self.outcome in NEW


def lock_names(session: Session, business_id: int, message: Incoming) -> list[tuple[int, str]]:
    """What storing this message touches: its id (or its target's), and the sender's LID and phone(s)."""
    names = [message.event.target_id if message.event else message.provider_id, *identity.lock_names(message.sender)]
    if message.sender and message.sender.lid and not message.sender.phone:
        names.append(identity.phone_for(session, business_id, message.sender.lid) or "")
    return [(business_id, name) for name in names if name]


def store_incoming_many(session: Session, items: list[tuple[int, Incoming]]) -> list[Stored]:
    """Store what arrived together in one transaction (see InboundBatcher); results in the given order.

    Every advisory lock the batch needs is taken first, in one sorted pass, so two batches in two workers
    cannot deadlock on each other's people or messages.
    """
    identity.lock(session, [name for business_id, message in items
                            for name in lock_names(session, business_id, message)])
    return [store_incoming(session, business_id, message) for business_id, message in items]


def store_incoming(session: Session, business_id: int, message: Incoming) -> Stored:
    contact = identity.resolve(session, business_id, message.sender, None if message.from_me else message.push_name,
                               with_lead=message.event is None)
    jid = contact.jid if contact else message.chat_jid
    if message.event is not None:
        return Stored(events.apply_event(session, business_id, message.event), jid=jid)
    if message.content is None and not message.placeholder:
        return Stored("ignored", jid=jid)
    values: dict[str, Any] = {
        "business_id": business_id, "lead_id": contact.lead_id if contact else None, "jid": jid,
        "direction": "out" if message.from_me else "in", "provider_message_id": message.provider_id,
        "status": "received", "sent_at": message.sent_at, "placeholder": message.placeholder,
    }
    if message.content is not None:
        content = message.content
        meta = {k: v for k, v in {"details": content.details, "reply_to": content.reply_to}.items() if v}
        media = {k: v for k, v in asdict(content.media).items() if v is not None} if content.media else None
        values |= {"kind": content.kind, "body": content.summary, "meta": meta or None, "media": media}
    statement = insert(WhatsAppMessage).values(**values)
    unique = [WhatsAppMessage.business_id, WhatsAppMessage.provider_message_id]
    named = WhatsAppMessage.provider_message_id.isnot(None)
    if message.placeholder:
        statement = statement.on_conflict_do_nothing(index_elements=unique, index_where=named)
    else:  # fill in a placeholder with the same id; anything else already stored stays as it is
        fill = {k: statement.excluded[k] for k in ("kind", "body", "meta", "media", "lead_id", "jid", "sent_at")}
        statement = statement.on_conflict_do_update(index_elements=unique, index_where=named,
                                                    set_={**fill, "placeholder": False},
                                                    where=WhatsAppMessage.placeholder.is_(True))
    row: Any = session.execute(statement.returning(WhatsAppMessage.id, literal_column("xmax = 0"))).first()
    if row is None:
        return Stored("duplicate", jid=jid)
    message_id, inserted = row
    if message.placeholder:
        return Stored("placeholder", message_id, jid)
    events.apply_pending(session, business_id, message_id, message.provider_id)
    return Stored("stored" if inserted else "filled", message_id, jid)

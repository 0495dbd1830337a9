"""Who a WhatsApp contact is: each business's map of linked identities (LIDs) to phone numbers.

Since WhatsApp's move to LIDs a person may write from ``<digits>@lid``, with their phone beside it or not
(Baileys 7: ``key.remoteJidAlt``/``participantAlt``; 6.7: ``senderPn``/``participantPn``/``senderLid``/
``participantLid``; the ``lid-mapping.update`` event). Every pair seen is kept per business. A contact with
a known phone is that phone's lead and conversation (``<digits>@s.whatsapp.net``); a LID with no known
phone has a conversation under the LID and no lead until its phone is learnt, and then that conversation
moves to the phone's and its messages join the phone's lead.

Writers serialise on PostgreSQL advisory locks named by (business, phone / LID / message id), taken in one
sorted pass per transaction (``lock``), so two workers storing the same person's messages take them in the
same order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from appliance.models import WhatsAppIdentity, WhatsAppMessage
from appliance.whatsapp.incoming import Sender
from appliance.whatsapp.store import upsert_lead


@dataclass(frozen=True)
class Contact:
    jid: str  # the conversation: the phone's JID when the phone is known, else the LID (or what the key said)
    phone: str | None
    lead_id: int | None


def lock(session: Session, names: Iterable[tuple[int, str]]) -> None:
    """Take the advisory locks for these (business, name) pairs in one global order (no deadlock)."""
    pairs = sorted({(b, n) for b, n in names if n})
    if not pairs:
        return
    session.execute(  # one round trip; the ordered subquery feeds the locks in (business, hash) order
        text("SELECT count(pg_advisory_xact_lock(b, h)) FROM (SELECT DISTINCT b, hashtext(k) AS h "
             "FROM unnest(CAST(:b AS int[]), CAST(:k AS text[])) AS t(b, k) ORDER BY b, h) AS ordered"),
        {"b": [b for b, _ in pairs], "k": [n for _, n in pairs]})


def phone_jid(phone: str) -> str:
    return phone.lstrip("+") + "@s.whatsapp.net"


def phone_for(session: Session, business_id: int, lid: str) -> str | None:
    return session.scalar(select(WhatsAppIdentity.phone).where(WhatsAppIdentity.business_id == business_id,
                                                               WhatsAppIdentity.lid == lid))


def conversation_jid(session: Session, business_id: int, jid: str) -> str:
    """The conversation a JID's messages are kept under: a LID whose phone is known lives at the phone's."""
    phone = phone_for(session, business_id, jid) if jid.endswith("@lid") else None
    return phone_jid(phone) if phone else jid


def learn(session: Session, business_id: int, lid: str, phone: str, name: str | None = None) -> bool:
    """Record that ``lid`` is ``phone``; True when that is news. News moves the LID's conversation to the
    phone's and gives its messages the phone's lead (the caller holds the LID's and the phone's locks)."""
    known = phone_for(session, business_id, lid)
    if known == phone:
        return False
    session.execute(insert(WhatsAppIdentity).values(business_id=business_id, lid=lid, phone=phone)
                    .on_conflict_do_update(index_elements=[WhatsAppIdentity.business_id, WhatsAppIdentity.lid],
                                           set_={"phone": phone}))
    lead_id = upsert_lead(session, business_id, phone, name)
    session.execute(update(WhatsAppMessage)
                    .where(WhatsAppMessage.business_id == business_id, WhatsAppMessage.jid == lid)
                    .values(jid=phone_jid(phone), lead_id=lead_id))
    return True


def lock_names(sender: Sender | None) -> list[str]:
    return [n for n in (sender.lid, sender.phone) if n] if sender else []


def resolve(session: Session, business_id: int, sender: Sender | None, name: str | None,
            *, with_lead: bool = True) -> Contact | None:
    """Learn what the sender's key reveals and answer the conversation and lead they belong to."""
    if sender is None:
        return None
    phone = sender.phone
    if sender.lid and phone:
        learn(session, business_id, sender.lid, phone, name)
    elif sender.lid:
        phone = phone_for(session, business_id, sender.lid)
    if phone is None:
        return Contact(jid=sender.lid or sender.jid, phone=None, lead_id=None)
    lead_id = upsert_lead(session, business_id, phone, name) if with_lead else None
    return Contact(jid=phone_jid(phone), phone=phone, lead_id=lead_id)

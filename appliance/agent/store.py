"""The agent's database functions (each takes a session; run them through ``services.db.run``).

Leads are found and saved by the caller's phone number, serialised per number by the same advisory lock
the WhatsApp intake takes, so a call and a message arriving together make one lead.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from appliance.models import Business, Call, Lead, WhatsAppMessage

MESSAGE_NOTE_LIMIT = 2000


def lead_summary(lead: Lead) -> dict[str, Any]:
    return {"lead_id": lead.id, "name": lead.name, "phone": lead.phone, "email": lead.email,
            "status": lead.status, "notes": (lead.notes or "")[-500:] or None}


def find_lead(session: Session, business_id: int, phone: str) -> Lead | None:
    return session.scalar(select(Lead).where(Lead.business_id == business_id, Lead.phone == phone)
                          .order_by(Lead.id).limit(1))


def lookup_caller(session: Session, business_id: int, phone: str | None) -> dict[str, Any] | None:
    lead = find_lead(session, business_id, phone) if phone else None
    return lead_summary(lead) if lead else None


def save_lead(session: Session, business_id: int, phone: str | None, source: str, *, name: str | None = None,
              email: str | None = None, notes: str | None = None) -> dict[str, Any]:
    """Create or update the lead of ``phone`` (or a new one without a number) with what the caller said."""
    lead = None
    if phone:
        session.execute(text("SELECT pg_advisory_xact_lock(:b, hashtext(:p))"),
                        {"b": business_id, "p": phone})
        lead = find_lead(session, business_id, phone)
    if lead is None:
        lead = Lead(business_id=business_id, phone=phone, source=source, status="new")
        session.add(lead)
    if name:
        lead.name = name[:200]
    if email:
        lead.email = email[:320]
    if notes:
        lead.notes = _append(lead.notes, notes)
    session.flush()
    return lead_summary(lead)


def take_message(session: Session, business_id: int, phone: str | None, message: str, *,
                 source: str, for_whom: str | None = None) -> dict[str, Any]:
    """A message for the business, kept on the caller's lead (created when the number is new)."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    note = f"[{stamp}] message{f' for {for_whom}' if for_whom else ''}: {message[:MESSAGE_NOTE_LIMIT]}"
    return save_lead(session, business_id, phone, source, notes=note)


def _append(notes: str | None, line: str) -> str:
    return f"{notes}\n{line}" if notes else line


def recent_messages(session: Session, business_id: int, jid: str, limit: int) -> list[tuple[str, str]]:
    """The thread's last ``limit`` messages with text, oldest first, as (direction, body)."""
    rows = session.execute(
        select(WhatsAppMessage.direction, WhatsAppMessage.body)
        .where(WhatsAppMessage.business_id == business_id, WhatsAppMessage.jid == jid,
               WhatsAppMessage.body.isnot(None))
        .order_by(WhatsAppMessage.created_at.desc(), WhatsAppMessage.id.desc()).limit(limit)
    ).all()
    return [(direction, body or "") for direction, body in reversed(rows)]


# -- calls ------------------------------------------------------------------------------------------------
def call_context(session: Session, call_sid: str) -> dict[str, Any] | None:
    """What the phone agent needs to know about a call: its business's agent settings and the caller."""
    row = session.execute(select(Call, Business).join(Business, Business.id == Call.business_id)
                          .where(Call.call_sid == call_sid)).first()
    if row is None:
        return None
    call, business = row
    lead = find_lead(session, business.id, call.from_number) if call.from_number else None
    return {"business_id": business.id, "phone": call.from_number, "lead_id": lead.id if lead else None,
            "name": lead.name if lead else None, "agent": agent_columns(business)}


NO_AGENT_COLUMNS: dict[str, Any] = {"instructions": None, "greeting": None, "voice": None, "tools": None,
                                    "transfer_number": None, "silence_timeout": None, "max_duration": None}


def agent_columns(business: Business) -> dict[str, Any]:
    return {"instructions": business.agent_instructions, "greeting": business.agent_greeting,
            "voice": business.agent_voice, "tools": business.agent_tools,
            "transfer_number": business.transfer_number, "silence_timeout": business.agent_silence_seconds,
            "max_duration": business.agent_max_call_seconds}


def business_agent(session: Session, business_id: int) -> dict[str, Any] | None:
    business = session.get(Business, business_id)
    return agent_columns(business) if business else None


def save_call_conversation(session: Session, call_sid: str, conversation: dict[str, Any]) -> bool:
    call = session.scalar(select(Call).where(Call.call_sid == call_sid))
    if call is None:
        return False
    call.transcript = conversation["transcript"]
    call.tool_calls = conversation["tool_calls"]
    call.usage = conversation["usage"]
    call.lead_id = conversation["lead_id"] or call.lead_id
    return True

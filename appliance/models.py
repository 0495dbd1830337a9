"""SQLAlchemy 2 models for the whole appliance. Every tenant-owned row carries ``business_id``.

Schema changes go through Alembic revisions in ``migrations/``; a test checks that the two agree.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Timestamp = DateTime(timezone=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _now() -> Mapped[dt.datetime]:
    return mapped_column(Timestamp, server_default=func.now(), nullable=False)


def _tenant() -> Mapped[int]:
    return mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"), index=True, nullable=False)


class Business(Base):
    __tablename__ = "businesses"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    auto_reply_mode: Mapped[str] = mapped_column(String(20), server_default="off")
    auto_reply_text: Mapped[str | None] = mapped_column(Text)
    voice_agent: Mapped[str | None] = mapped_column(String(40))
    timezone: Mapped[str] = mapped_column(String(64), server_default="UTC")
    agent_instructions: Mapped[str | None] = mapped_column(Text)
    agent_greeting: Mapped[str | None] = mapped_column(Text)
    agent_voice: Mapped[str | None] = mapped_column(String(40))
    agent_tools: Mapped[list[str] | None] = mapped_column(JSON)
    transfer_number: Mapped[str | None] = mapped_column(String(40))
    agent_silence_seconds: Mapped[int | None] = mapped_column(Integer)
    agent_max_call_seconds: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = _now()


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = _tenant()
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = _now()


class ApiToken(Base):
    """Bearer tokens and browser sessions, one mechanism: a random secret stored as its SHA-256."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = _tenant()
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(10))  # "api" or "session"
    expires_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    created_at: Mapped[dt.datetime] = _now()


class Lead(Base):
    __tablename__ = "leads"
    __table_args__ = (Index("ix_leads_business_id_phone", "business_id", "phone"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = _tenant()
    name: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(40))
    email: Mapped[str | None] = mapped_column(String(320))
    source: Mapped[str] = mapped_column(String(40), server_default="manual")
    status: Mapped[str] = mapped_column(String(40), server_default="new")
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = _now()
    updated_at: Mapped[dt.datetime] = mapped_column(
        Timestamp, server_default=func.now(), onupdate=func.now(), nullable=False
    )


class WhatsAppMessage(Base):
    __tablename__ = "whatsapp_message"
    __table_args__ = (
        # Unique per tenant: two tenants in one group chat receive the same Baileys key.id.
        Index(
            "uq_whatsapp_message_provider_message_id",
            "business_id",
            "provider_message_id",
            unique=True,
            postgresql_where=text("provider_message_id IS NOT NULL"),
        ),
        Index("ix_whatsapp_message_business_id_jid_created_at", "business_id", "jid", "created_at"),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    business_id: Mapped[int] = _tenant()
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id", ondelete="SET NULL"))
    jid: Mapped[str] = mapped_column(String(120))
    direction: Mapped[str] = mapped_column(String(3))  # "in" or "out"
    body: Mapped[str | None] = mapped_column(Text)
    provider_message_id: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), server_default="received")
    sent_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    read_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    usage: Mapped[dict[str, int] | None] = mapped_column(JSON)  # an AI reply: the model's token usage
    created_at: Mapped[dt.datetime] = _now()
    updated_at: Mapped[dt.datetime] = mapped_column(
        Timestamp, server_default=func.now(), onupdate=func.now(), nullable=False
    )
    # what the message is, and what happened to it since (edits, deletes, reactions; issue 11)
    kind: Mapped[str | None] = mapped_column(String(30))  # text, image, voice, location, ... (whatsapp.content)
    placeholder: Mapped[bool] = mapped_column(Boolean, server_default=false())  # Baileys could not decrypt it yet
    media: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # type, mimetype, size, file_name, duration, path
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # details, reply_to, reactions, votes, history
    edited_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)


class Call(Base):
    __tablename__ = "calls"
    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = _tenant()
    call_sid: Mapped[str] = mapped_column(String(64), unique=True)
    stream_sid: Mapped[str | None] = mapped_column(String(64))
    from_number: Mapped[str | None] = mapped_column(String(40))
    to_number: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), server_default="ringing")
    started_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    ended_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    duration_seconds: Mapped[float | None] = mapped_column(Numeric(10, 2))
    frames_in: Mapped[int] = mapped_column(Integer, server_default="0")
    frames_out: Mapped[int] = mapped_column(Integer, server_default="0")
    frames_dropped: Mapped[int] = mapped_column(Integer, server_default="0")
    end_reason: Mapped[str | None] = mapped_column(String(80))
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id", ondelete="SET NULL"), index=True)
    transcript: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    tool_calls: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    usage: Mapped[dict[str, int] | None] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = _now()


class Receipt(Base):
    __tablename__ = "receipts"
    __table_args__ = (
        UniqueConstraint("business_id", "gmail_message_id"),
        Index("ix_receipts_business_id_received_at", "business_id", "received_at"),
        Index("ix_receipts_business_id_status", "business_id", "status"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"), nullable=False)
    vendor: Mapped[str | None] = mapped_column(String(200))
    subject: Mapped[str | None] = mapped_column(Text)
    amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    currency: Mapped[str | None] = mapped_column(String(3))
    received_at: Mapped[dt.datetime] = mapped_column(Timestamp)
    status: Mapped[str] = mapped_column(String(20), server_default="new")
    gmail_message_id: Mapped[str | None] = mapped_column(String(64))
    preview_path: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = _now()
    # Added by 0012: what the previews issue renders, and where the receipt was found.
    sender: Mapped[str | None] = mapped_column(String(320))
    body_html: Mapped[str | None] = mapped_column(Text)
    body_text: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(String(20))  # "markup", "body" or "pdf"
    thumbnail_path: Mapped[str | None] = mapped_column(Text)
    sync_run_id: Mapped[int | None] = mapped_column(ForeignKey("receipt_sync_runs.id", ondelete="SET NULL"))
    preview_error: Mapped[str | None] = mapped_column(Text)  # added by 0013: why the email did not render
    updated_at: Mapped[dt.datetime] = mapped_column(
        Timestamp, server_default=func.now(), onupdate=func.now(), nullable=False
    )


class ReceiptAttachment(Base):
    __tablename__ = "receipt_attachments"
    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = _tenant()
    receipt_id: Mapped[int] = mapped_column(ForeignKey("receipts.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(300))
    mime_type: Mapped[str | None] = mapped_column(String(120))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    storage_path: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = _now()
    sha256: Mapped[str | None] = mapped_column(String(64))  # added by 0012
    thumbnail_path: Mapped[str | None] = mapped_column(Text)  # added by 0012, filled by previews
    content_id: Mapped[str | None] = mapped_column(String(300))  # added by 0013: an inline part's cid:
    preview_error: Mapped[str | None] = mapped_column(Text)  # added by 0013: why no thumbnail was made


class ReceiptSyncRun(Base):
    __tablename__ = "receipt_sync_runs"
    __table_args__ = (
        # One active run per business, enforced by the database (DESIGN.md: two racing POSTs, one 202).
        Index("uq_receipt_sync_runs_active", "business_id", unique=True,
              postgresql_where=text("status IN ('queued', 'running')")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = _tenant()
    job_id: Mapped[str | None] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), server_default="queued")
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    messages_scanned: Mapped[int] = mapped_column(Integer, server_default="0")
    saved_receipts: Mapped[int] = mapped_column(Integer, server_default="0")
    errors_count: Mapped[int] = mapped_column(Integer, server_default="0")
    progress_percentage: Mapped[float] = mapped_column(Numeric(5, 2), server_default="0")
    started_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    finished_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    last_heartbeat_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = _now()
    checkpoint: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # added by 0012: page token / history id
    last_progress_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)  # added by 0012


class GmailConnection(Base):
    __tablename__ = "gmail_connections"
    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    encrypted_refresh_token: Mapped[str] = mapped_column(Text)
    scopes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = _now()
    # Added by 0012: "ok" or "needs_reconnect", and the history id incremental syncs start from.
    status: Mapped[str] = mapped_column(String(20), server_default="ok")
    history_id: Mapped[str | None] = mapped_column(String(40))
    updated_at: Mapped[dt.datetime] = mapped_column(
        Timestamp, server_default=func.now(), onupdate=func.now(), nullable=False
    )


class WhatsAppIdentity(Base):
    """One person's linked identity (LID) and phone number, as WhatsApp revealed them to a business."""

    __tablename__ = "whatsapp_identity"
    __table_args__ = (
        UniqueConstraint("business_id", "lid"),
        Index("ix_whatsapp_identity_business_id_phone", "business_id", "phone"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"), nullable=False)
    lid: Mapped[str] = mapped_column(String(120))  # "<digits>@lid"
    phone: Mapped[str] = mapped_column(String(40))  # "+<digits>"
    created_at: Mapped[dt.datetime] = _now()


class WhatsAppPendingEvent(Base):
    """An edit, delete, reaction or vote whose message has not arrived yet; applied when it does."""

    __tablename__ = "whatsapp_pending_event"
    __table_args__ = (UniqueConstraint("business_id", "target_provider_id", "dedupe"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"), nullable=False)
    target_provider_id: Mapped[str] = mapped_column(String(200))
    dedupe: Mapped[str] = mapped_column(String(300))
    event: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = _now()

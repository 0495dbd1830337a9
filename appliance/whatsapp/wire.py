"""WhatsApp messages from the Baileys bridge: the webhook's shapes and parsing a message into ``Parsed``."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from appliance.leads.store import normalize_phone

# Baileys' numeric WAMessageStatus -> our status names
STATUS_NAMES = {0: "error", 1: "pending", 2: "sent", 3: "delivered", 4: "read", 5: "played"}
STATUS_RANK = {"error": 0, "pending": 1, "sending": 1, "sent": 2, "delivered": 3, "read": 4, "played": 5}
_USER_JID = re.compile(r"^(\d{5,20})(?::\d+)?@s\.whatsapp\.net$")


# -- the webhook's shapes ---------------------------------------------------------------------------------
class MessageKey(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str = Field(min_length=1, max_length=200)
    remoteJid: str = Field(min_length=3, max_length=120)  # Baileys' field names
    fromMe: bool = False
    participant: str | None = None


class WAMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    key: MessageKey
    messageTimestamp: int | str | dict | None = None  # Long objects arrive as dicts
    pushName: str | None = None
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
    tenantId: int
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
            self.jid = normalize_phone(self.phone or "").lstrip("+") + "@s.whatsapp.net"
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
        return phone_of(self.jid)


def phone_of(jid: str) -> str | None:
    """The E.164 phone number of a user JID (``<digits>[:device]@s.whatsapp.net``), else None."""
    match = _USER_JID.match(jid)
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

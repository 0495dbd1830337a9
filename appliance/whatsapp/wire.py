"""The Baileys bridge's webhook shapes, checked at the door; what a message means is ``incoming.parse``.

``payload.messages``: WAMessages from ``messages.upsert``; ``payload.updates``: items of ``messages.update``
(statuses, edits, deletes) or ``messages.reaction``; ``payload.lidMappings``: ``lid-mapping.update``
events (``{"lid", "pn"}``).
"""

from __future__ import annotations

import re
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
    """A ``messages.update`` item (``update``), or a ``messages.reaction`` item (``reaction``)."""

    model_config = ConfigDict(extra="allow")
    key: MessageKey
    update: dict[str, Any] = Field(default_factory=dict)
    reaction: dict[str, Any] | None = None


class LidMapping(BaseModel):
    model_config = ConfigDict(extra="allow")
    lid: str = Field(min_length=5, max_length=120, pattern=r"@(hosted\.)?lid$")
    pn: str = Field(min_length=5, max_length=120, pattern=r"^\d{5,20}(:\d+)?@(s\.whatsapp\.net|hosted)$")


class Payload(BaseModel):
    model_config = ConfigDict(extra="allow")
    messages: list[WAMessage] = Field(default_factory=list, max_length=500)
    updates: list[StatusUpdate] = Field(default_factory=list, max_length=500)
    lidMappings: list[LidMapping] = Field(default_factory=list, max_length=500)


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


def phone_of(jid: str) -> str | None:
    """The E.164 phone number of a user JID (``<digits>[:device]@s.whatsapp.net``), else None."""
    match = _USER_JID.match(jid)
    return "+" + match.group(1) if match else None

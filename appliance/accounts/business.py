"""A business's settings (DESIGN.md: ``GET|PATCH /api/settings``): validation and tenant-scoped storage."""

from __future__ import annotations

import zoneinfo
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session

from appliance.leads.store import normalize_phone
from appliance.models import Business

AutoReplyMode = Literal["off", "fixed", "ai"]
VoiceAgent = Literal["echo", "realtime"]
FIELDS = ("timezone", "auto_reply_mode", "auto_reply_text", "voice_agent", "agent_instructions",
          "agent_greeting", "agent_voice", "agent_tools", "transfer_number", "agent_silence_seconds",
          "agent_max_call_seconds")


class SettingsPatch(BaseModel):
    """Only the fields present change; ``null`` clears an optional one."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    timezone: str | None = Field(default=None, min_length=1, max_length=64)
    auto_reply_mode: AutoReplyMode | None = None
    auto_reply_text: str | None = Field(default=None, max_length=4096)
    voice_agent: VoiceAgent | None = None
    agent_instructions: str | None = Field(default=None, max_length=20_000)
    agent_greeting: str | None = Field(default=None, max_length=2_000)
    agent_voice: str | None = Field(default=None, min_length=1, max_length=40)
    agent_tools: list[str] | None = Field(default=None, max_length=20)
    transfer_number: str | None = Field(default=None, max_length=40)
    agent_silence_seconds: int | None = Field(default=None, ge=5, le=600)  # no caller speech: the call ends
    agent_max_call_seconds: int | None = Field(default=None, ge=30, le=4 * 3600)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None and value not in zoneinfo.available_timezones():
            raise ValueError("must be an IANA time zone name such as 'Asia/Jerusalem' or 'UTC'")
        return value

    @field_validator("transfer_number")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return normalize_phone(value) if value else None

    @field_validator("agent_tools")
    @classmethod
    def _tools(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(not 0 < len(name) <= 40 for name in value):
            raise ValueError("each tool name must be 1 to 40 characters")
        return value


def settings_dict(business: Business) -> dict[str, Any]:
    return {"business_id": business.id, "name": business.name,
            **{name: getattr(business, name) for name in FIELDS}}


def get_settings(session: Session, business_id: int) -> dict[str, Any] | None:
    business = session.get(Business, business_id)
    return settings_dict(business) if business else None


def update_settings(session: Session, business_id: int, patch: SettingsPatch) -> dict[str, Any] | None:
    business = session.get(Business, business_id, with_for_update=True)
    if business is None:
        return None
    changes = patch.model_dump(exclude_unset=True)
    if changes.get("timezone", "") is None:
        changes["timezone"] = "UTC"  # null resets to the default rather than leaving no zone
    if changes.get("auto_reply_mode", "") is None:
        changes["auto_reply_mode"] = "off"
    for name, value in changes.items():
        setattr(business, name, value)
    session.flush()
    return settings_dict(business)

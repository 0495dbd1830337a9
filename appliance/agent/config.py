"""What one business's agent is: instructions, greeting, voice, tools, transfer number and call limits.

Built from the business's row (the settings API) over the defaults here; the same config serves the phone
agent and WhatsApp AI replies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SECONDS = 1.0
TOOL_NAMES = ("lookup_caller", "save_lead", "take_message", "end_call", "transfer_call")
DEFAULT_INSTRUCTIONS = (
    "You are the friendly assistant answering calls and messages for a small business. Keep answers short "
    "and natural. Find out who the person is and what they need; save them as a lead with what they said; "
    "take a message when they ask for someone. Never invent prices or promises."
)
DEFAULT_GREETING = "Hello, thanks for calling. How can I help you today?"
DEFAULT_VOICE = "alloy"
FALLBACK_TEXT = "Sorry, our assistant is not available right now. Please call again later. Goodbye."
WHATSAPP_FALLBACK = "Thanks for your message! We'll get back to you shortly."


@dataclass(frozen=True)
class AgentConfig:
    instructions: str = DEFAULT_INSTRUCTIONS
    greeting: str = DEFAULT_GREETING
    voice: str = DEFAULT_VOICE
    tools: tuple[str, ...] = TOOL_NAMES
    transfer_number: str | None = None
    silence_timeout: float = 20 * SECONDS  # no caller speech for this long ends the call
    max_duration: float = 600 * SECONDS
    fallback_text: str = FALLBACK_TEXT

    @classmethod
    def from_row(cls, *, instructions: str | None = None, greeting: str | None = None,
                 voice: str | None = None,
                 tools: list[str] | tuple[str, ...] | None = None, transfer_number: str | None = None,
                 silence_timeout: float | None = None, max_duration: float | None = None) -> AgentConfig:
        """A business's config: its non-empty columns over the defaults; unknown tool names are ignored."""
        base = cls()
        return cls(
            instructions=instructions or base.instructions, greeting=greeting or base.greeting,
            voice=voice or base.voice,
            tools=base.tools if tools is None else tuple(t for t in TOOL_NAMES if t in tools),
            transfer_number=transfer_number or None,
            silence_timeout=silence_timeout or base.silence_timeout,
            max_duration=max_duration or base.max_duration,
        )

    @classmethod
    def for_business(cls, settings: Any, columns: dict[str, Any]) -> AgentConfig:
        """A business's config (``store.agent_columns``) over the settings' defaults over ours."""
        return cls.from_row(**{
            **columns, "instructions": columns["instructions"] or settings.realtime_instructions,
            "silence_timeout": columns["silence_timeout"] or settings.agent_silence_timeout,
            "max_duration": columns["max_duration"] or settings.agent_max_duration})

    def enabled(self, name: str) -> bool:
        if name == "transfer_call" and not self.transfer_number:
            return False
        return name in self.tools


@dataclass(frozen=True)
class Caller:
    """Who is on the line (or writing): the business, their number and the lead on record, if any."""

    business_id: int
    phone: str | None
    lead_id: int | None = None
    name: str | None = None
    call_sid: str | None = None  # phone calls only

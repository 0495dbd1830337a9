"""What a conversation leaves behind: the transcript, the tool calls and results, and token usage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def add_usage(total: dict[str, int], usage: dict[str, Any] | None, prefix: str = "") -> dict[str, int]:
    """Sum every integer count of a usage object into ``total`` (nested details flattened with ``_``)."""
    for key, value in (usage or {}).items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            total[prefix + key] = total.get(prefix + key, 0) + value
        elif isinstance(value, dict):
            add_usage(total, value, f"{prefix}{_stem(key)}_")
    return total


def _stem(key: str) -> str:
    """``input_token_details`` -> ``input``, ``prompt_tokens_details`` -> ``prompt``."""
    stem = key.removesuffix("_details")
    return stem.removesuffix("_tokens").removesuffix("_token")


@dataclass
class Conversation:
    transcript: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    lead_id: int | None = None
    end_reason: str | None = None

    def said(self, role: str, text: str, at: float) -> dict[str, Any]:
        entry = {"role": role, "text": text.strip(), "at": round(at, 2)}
        if entry["text"]:
            self.transcript.append(entry)
        return entry

    def count(self, usage: dict[str, Any] | None) -> None:
        if usage:
            add_usage(self.usage, usage)
            self.usage["responses"] = self.usage.get("responses", 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return {"transcript": self.transcript, "tool_calls": self.tool_calls, "usage": self.usage,
                "lead_id": self.lead_id, "end_reason": self.end_reason}

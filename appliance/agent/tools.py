"""The agent's tools (function calling): their schemas for the Realtime session and for chat completions,
and the one place that runs them and records each call and result.

A tool never raises into the conversation: a bad argument or a failure becomes an ``{"error": ...}`` output
the model can read and recover from.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal, Protocol

from appliance.agent import store
from appliance.agent.config import AgentConfig, Caller
from appliance.agent.telephony import Telephony, TelephonyError

log = logging.getLogger(__name__)
Action = Literal["end", "transferred"] | None
PHONE_ONLY = ("end_call", "transfer_call")

_STRING = {"type": "string"}
SPECS: dict[str, tuple[str, dict[str, Any]]] = {
    "lookup_caller": ("Look up the caller in the business's records by their phone number; returns their "
                      "name and notes when known, so you can greet them by name.",
                      {"type": "object", "properties": {}, "additionalProperties": False}),
    "save_lead": ("Create or update the caller's lead with what they told you: their name, email and a short "
                  "note of what they need.",
                  {"type": "object", "properties": {"name": _STRING, "email": _STRING, "notes": _STRING},
                   "additionalProperties": False}),
    "take_message": ("Take a message for the business (or a person there) to read later.",
                     {"type": "object", "properties": {"message": _STRING, "for_whom": _STRING},
                      "required": ["message"], "additionalProperties": False}),
    "end_call": ("End the call once you have said goodbye.",
                 {"type": "object", "properties": {"reason": _STRING}, "additionalProperties": False}),
    "transfer_call": ("Transfer the caller to a human at the business, when they ask for a person.",
                      {"type": "object", "properties": {"reason": _STRING}, "additionalProperties": False}),
}


def realtime_tools(config: AgentConfig) -> list[dict[str, Any]]:
    return [{"type": "function", "name": name, "description": SPECS[name][0], "parameters": SPECS[name][1]}
            for name in SPECS if config.enabled(name)]


def chat_tools(config: AgentConfig) -> list[dict[str, Any]]:
    return [{"type": "function", "function": {"name": name, "description": SPECS[name][0],
                                              "parameters": SPECS[name][1]}}
            for name in SPECS if config.enabled(name) and name not in PHONE_ONLY]


def _check(schema: dict[str, Any], args: dict[str, str]) -> None:
    unknown = sorted(set(args) - set(schema["properties"]))
    missing = sorted(set(schema.get("required", ())) - set(args))
    if unknown or missing:
        raise ValueError(f"unknown {unknown}, missing {missing}")


class Database(Protocol):
    async def run(self, fn: Any, *args: Any, **kwargs: Any) -> Any: ...


@dataclass
class ToolResult:
    output: dict[str, Any]
    action: Action = None


@dataclass
class Toolbox:
    db: Database
    caller: Caller
    config: AgentConfig
    source: str  # "call" or "whatsapp": where a new lead came from
    telephony: Telephony | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)  # every call and result, in order
    lead_id: int | None = None

    def __post_init__(self) -> None:
        self.lead_id = self.caller.lead_id
        self._started = time.monotonic()

    def available(self, name: str) -> bool:
        phone_ok = self.source == "call" or name not in PHONE_ONLY
        return name in SPECS and self.config.enabled(name) and phone_ok

    async def call(self, name: str, arguments: str) -> ToolResult:
        try:
            args = json.loads(arguments or "{}")
            if not isinstance(args, dict):
                raise ValueError("arguments must be a JSON object")
            args = {k: v.strip() for k, v in args.items() if isinstance(v, str) and v.strip()}
            if not self.available(name):
                result = ToolResult({"error": f"tool {name!r} is not available"})
            else:
                _check(SPECS[name][1], args)
                result = await getattr(self, "_" + name)(**args)
        except ValueError as exc:
            result = ToolResult({"error": f"bad arguments for {name}: {exc}"})
        except TelephonyError as exc:
            log.warning("tool %s for business %s failed: %s", name, self.caller.business_id, exc)
            result = ToolResult({"error": "the transfer did not go through; offer to take a message"})
        self.calls.append({"name": name, "arguments": arguments, "output": result.output,
                           "at": round(time.monotonic() - self._started, 2)})
        return result

    async def _lookup_caller(self) -> ToolResult:
        found = await self.db.run(store.lookup_caller, self.caller.business_id, self.caller.phone)
        if found:
            self.lead_id = found["lead_id"]
            return ToolResult({"known": True, **found})
        return ToolResult({"known": False, "phone": self.caller.phone})

    async def _save_lead(self, name: str | None = None, email: str | None = None,
                         notes: str | None = None) -> ToolResult:
        saved = await self.db.run(partial(store.save_lead, name=name, email=email, notes=notes),
                                  self.caller.business_id, self.caller.phone, self.source)
        self.lead_id = saved["lead_id"]
        return ToolResult({"saved": True, **saved})

    async def _take_message(self, message: str, for_whom: str | None = None) -> ToolResult:
        saved = await self.db.run(partial(store.take_message, source=self.source, for_whom=for_whom),
                                  self.caller.business_id, self.caller.phone, message)
        self.lead_id = saved["lead_id"]
        return ToolResult({"taken": True, "lead_id": saved["lead_id"]})

    async def _end_call(self, reason: str | None = None) -> ToolResult:
        return ToolResult({"ending": True}, action="end")

    async def _transfer_call(self, reason: str | None = None) -> ToolResult:
        if self.telephony is None or not self.caller.call_sid or not self.config.transfer_number:
            return ToolResult({"error": "transfers are not set up; offer to take a message"})
        await self.telephony.transfer(self.caller.call_sid, self.config.transfer_number)
        return ToolResult({"transferring": True}, action="transferred")

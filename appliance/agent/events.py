"""The client events of the GA Realtime protocol that the phone agent sends, built without I/O.

Shapes follow the official ``openai`` package (``openai.types.realtime.RealtimeClientEvent``; the tests
validate every event sent against it). Audio is G.711 mu-law at 8 kHz both ways (``audio/pcmu``), what
Twilio's Media Streams carry, so nothing is resampled.
"""

from __future__ import annotations

import json
from typing import Any

from appliance.agent.config import AgentConfig, Caller

PCMU = {"type": "audio/pcmu"}
PCMU_BYTES_PER_MS = 8  # 8 kHz, one byte a sample


def instructions(config: AgentConfig, caller: Caller) -> str:
    known = f" The caller is {caller.name}, already known to the business." if caller.name else ""
    number = f" The caller's number is {caller.phone}." if caller.phone else " The caller's number is hidden."
    return f"{config.instructions}{number}{known}"


def session_update(config: AgentConfig, caller: Caller, tools: list[dict[str, Any]],
                   transcribe_model: str) -> dict[str, Any]:
    session: dict[str, Any] = {
        "type": "realtime",
        "instructions": instructions(config, caller),
        "output_modalities": ["audio"],
        "audio": {
            "input": {
                "format": PCMU,
                "transcription": {"model": transcribe_model},
                "turn_detection": {"type": "server_vad", "create_response": True, "interrupt_response": True},
            },
            "output": {"format": PCMU, "voice": config.voice},
        },
    }
    if tools:
        session["tools"] = tools
        session["tool_choice"] = "auto"
    return {"type": "session.update", "session": session}


def greeting(config: AgentConfig, caller: Caller) -> dict[str, Any]:
    """The first response, before the caller says anything: the business's greeting."""
    name = f" Address the caller as {caller.name}." if caller.name else ""
    return {"type": "response.create",
            "response": {"instructions": f"Greet the caller by saying: {config.greeting}{name}"}}


def append(payload: str) -> str:
    """Caller audio (base64 mu-law, already checked by the media session): formatted, not serialised."""
    return '{"type":"input_audio_buffer.append","audio":"%s"}' % payload


def truncate(item_id: str, audio_end_ms: int) -> dict[str, Any]:
    return {"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0,
            "audio_end_ms": audio_end_ms}


def function_output(call_id: str, output: dict[str, Any]) -> dict[str, Any]:
    return {"type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": call_id, "output": json.dumps(output)}}


RESPONSE_CREATE: dict[str, Any] = {"type": "response.create"}


def audio_ms(delta: str) -> int:
    """Milliseconds of mu-law audio in a base64 delta."""
    size = len(delta) * 3 // 4 - delta[-2:].count("=")
    return size // PCMU_BYTES_PER_MS

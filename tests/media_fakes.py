"""In-memory stand-ins for a Twilio socket and the call recorder, for session tests under MockClock."""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import trio

from appliance.media.session import CallInfo, CallStats, TransportGone

FRAME = base64.b64encode(b"\xff" * 160).decode()  # 20 ms of mu-law silence


class MemorySocket:
    def __init__(self) -> None:
        self._in_send, self._in_recv = trio.open_memory_channel[str | None](math.inf)
        self._out_send, self.out = trio.open_memory_channel[dict[str, Any]](math.inf)
        self.closed: tuple[int, str] | None = None
        self.closed_event = trio.Event()

    # what Twilio does
    def push(self, message: dict[str, Any] | str) -> None:
        self._in_send.send_nowait(message if isinstance(message, str) else json.dumps(message))

    def hang_up(self) -> None:
        self._in_send.send_nowait(None)

    def start(self, call_sid: str = "CA1", token: str = "good") -> None:
        self.push({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        self.push({"event": "start", "sequenceNumber": "1", "streamSid": "MZ1",
                   "start": {"callSid": call_sid, "streamSid": "MZ1", "customParameters": {"token": token}}})

    def media(self, payload: str = FRAME) -> None:
        self.push({"event": "media", "streamSid": "MZ1", "media": {"track": "inbound", "payload": payload}})

    async def next_sent(self) -> dict[str, Any]:
        return await self.out.receive()

    # the transport the session sees
    async def receive(self) -> str | None:
        return await self._in_recv.receive()

    def backlog(self) -> bool:
        return self._in_recv.statistics().current_buffer_used > 0

    async def send(self, text: str) -> None:
        if self.closed is not None:
            raise TransportGone
        self._out_send.send_nowait(json.loads(text))

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)
        self.closed_event.set()


class ListRecorder:
    def __init__(self) -> None:
        self.starts: list[CallInfo] = []
        self.ends: list[tuple[CallInfo, CallStats, str]] = []

    async def started(self, call: CallInfo) -> None:
        self.starts.append(call)

    async def ended(self, call: CallInfo, stats: CallStats, reason: str) -> None:
        self.ends.append((call, stats, reason))

"""Voice agents: what answers the caller. ``echo`` returns the caller's audio (line checks, load tests);
``realtime`` bridges to a speech-to-speech service speaking the OpenAI Realtime WebSocket protocol.

The agent is chosen per call: the business's ``voice_agent`` column, else the VOICE_AGENT setting.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import trio
from trio_websocket import ConnectionClosed, HandshakeError, open_websocket_url

from appliance.media.session import CallSession
from appliance.settings import Settings

log = logging.getLogger(__name__)
AUDIO_DELTAS = ("response.audio.delta", "response.output_audio.delta")


class AgentError(Exception):
    """The voice service refused or broke the conversation."""


class EchoAgent:
    async def run(self, call: CallSession) -> None:
        while True:
            call.play(await call.audio_in())


class RealtimeAgent:
    def __init__(self, url: str, api_key: str, instructions: str | None = None) -> None:
        self.url = url
        self.api_key = api_key
        self.instructions = instructions

    def session_update(self) -> dict[str, Any]:
        session: dict[str, Any] = {
            "input_audio_format": "g711_ulaw", "output_audio_format": "g711_ulaw",
            "turn_detection": {"type": "server_vad"},
        }
        if self.instructions:
            session["instructions"] = self.instructions
        return {"type": "session.update", "session": session}

    async def run(self, call: CallSession) -> None:
        headers = [(b"Authorization", f"Bearer {self.api_key}".encode()), (b"OpenAI-Beta", b"realtime=v1")]
        try:
            try:
                async with open_websocket_url(self.url, extra_headers=headers, connect_timeout=10,
                                              disconnect_timeout=2) as ws:
                    await ws.send_message(json.dumps(self.session_update()))
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._upstream, call, ws)
                        await self._downstream(call, ws)
                        nursery.cancel_scope.cancel()
            except* ConnectionClosed as group:
                raise AgentError(f"voice service closed the conversation ({group.exceptions[0]})") from None
        except (OSError, HandshakeError) as exc:
            raise AgentError(f"cannot reach the voice service: {exc}") from exc

    async def _upstream(self, call: CallSession, ws: Any) -> None:
        while True:
            payload = await call.audio_in()
            await ws.send_message('{"type":"input_audio_buffer.append","audio":"%s"}' % payload)

    async def _downstream(self, call: CallSession, ws: Any) -> None:
        while True:
            event = json.loads(await ws.get_message())
            kind = event.get("type")
            if kind in AUDIO_DELTAS:
                call.play(event["delta"])
            elif kind == "input_audio_buffer.speech_started":
                call.clear()  # the caller talks over the agent: stop playing its answer
            elif kind in ("response.audio.done", "response.output_audio.done", "response.done"):
                call.mark(event.get("response_id") or event.get("item_id") or "response")
            elif kind == "error":
                raise AgentError(str((event.get("error") or {}).get("message") or event))


def make_agent(name: str, settings: Settings) -> EchoAgent | RealtimeAgent:
    if name == "echo":
        return EchoAgent()
    if name == "realtime":
        return RealtimeAgent(settings.require("realtime_url"), settings.require("realtime_api_key"),
                             settings.realtime_instructions)
    raise AgentError(f"unknown voice agent {name!r} (choose echo or realtime)")

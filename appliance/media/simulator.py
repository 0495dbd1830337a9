"""Twilio's side of a Media Stream: the protocol's messages (connected, start with the call's token, 20 ms
media frames, stop), and for the tests a trio-websocket client, an implementation independent of ours.
The load test sends the same messages through its own lean client (``appliance/loadtest/ws_client.py``),
which costs less CPU per frame than the server it measures."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from trio_websocket import WebSocketConnection, open_websocket_url


@asynccontextmanager
async def open_twilio_socket(url: str) -> AsyncIterator[WebSocketConnection]:
    async with open_websocket_url(url, connect_timeout=30, disconnect_timeout=5) as ws:
        try:
            yield ws
        finally:
            # trio-websocket (0.12) leaves a client's TCP stream open when the server closed first
            # (aclose() returns early once a close reason is set); close it ourselves.
            await ws._stream.aclose()


def start_message(call_sid: str, stream_sid: str, token: str) -> str:
    return json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": stream_sid, "start": {
        "callSid": call_sid, "streamSid": stream_sid, "tracks": ["inbound"],
        "customParameters": {"token": token},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}})


def media_message(stream_sid: str, payload: str, sequence: int = 0) -> str:
    return json.dumps({"event": "media", "sequenceNumber": str(sequence), "streamSid": stream_sid,
                       "media": {"track": "inbound", "chunk": str(sequence),
                                 "timestamp": str(sequence * 20), "payload": payload}})


def stop_message(stream_sid: str) -> str:
    return json.dumps({"event": "stop", "streamSid": stream_sid})

"""WebSocket messages on an upgraded HTTP/1.1 connection: whole text frames both ways without wsproto.

- Each WebSocket message read goes H11Protocol -> H11WSConnection (a copy into a bytearray and out) ->
  WSStream -> wsproto (a buffer, a header parse, a masker, a frame, a UTF-8 incremental decoder, an event
  per frame, through three generators) -> a StringIO. Patched: an open connection's bytes that start with
  whole, final, masked text frames (what a browser or Twilio sends) are unmasked and decoded here and go
  to the app as they are; anything else (a partial, fragmented, control, binary, reserved-bit, oversized
  or invalid UTF-8 frame, an extension in use, wsproto holding bytes of its own) goes to wsproto as before,
  from the first byte the fast path did not take.
- Sending a text message builds wsproto's Message event and frame (a bytearray per step). Patched: an
  open connection with no extension in use frames the text itself (server frames are not masked).
"""

from __future__ import annotations

from typing import Any

from hypercorn.events import Event, RawData
from hypercorn.protocol.events import Data
from hypercorn.protocol.h11 import STREAM_ID, H11Protocol, H11WSConnection
from hypercorn.protocol.ws_stream import ASGIWebsocketState, WSStream
from wsproto.connection import Connection, ConnectionState

FIN_TEXT = 0x81  # FIN, no reserved bits, opcode 1 (text)

def _unmask(payload: bytes, mask: bytes) -> bytes:
    """RFC 6455 5.3: XOR with the 4-byte key repeated, done as one big-integer XOR."""
    size = len(payload)
    key = (mask * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(size, "little")


def _wsproto_idle(connection: Connection) -> bool:
    """wsproto holds nothing of its own for this connection: no queued event, buffered byte, frame or
    message in progress, or extension in use (so what it would make of the next frame is plain)."""
    proto = connection._proto
    decoder = proto._frame_decoder
    return (connection._state is ConnectionState.OPEN and not connection._events and not proto.extensions
            and decoder.header is None and not decoder.buffer.buffer and proto._message_decoder.opcode is None)


def _next_text_frame(data: bytes, at: int, limit: int) -> tuple[str, int] | None:
    """The text of the whole, final, masked text frame at ``data[at:]`` and where it ends, or None when
    that frame is anything else (wsproto then parses it, and says what is wrong with it)."""
    if len(data) - at < 6 or data[at] != FIN_TEXT or not data[at + 1] & 0x80:
        return None
    size, start = data[at + 1] & 0x7F, at + 6
    if size == 126:
        size, start = int.from_bytes(data[at + 2:at + 4], "big"), at + 8
        if size < 126:  # not the shortest encoding: a protocol error wsproto reports
            return None
    elif size == 127:
        return None  # 64 KiB and more: rare, left to wsproto
    end = start + size
    if end > len(data) or size > limit:
        return None
    try:
        return _unmask(data[start:end], data[start - 4:start]).decode("utf-8"), end
    except UnicodeDecodeError:
        return None


async def _ws_receive(stream: WSStream, data: bytes) -> None:
    """Bytes read on an upgraded HTTP/1.1 connection: whole text frames straight to the app, the rest (from
    the first frame not taken) to Hypercorn and wsproto as before."""
    at = 0
    while not stream.closed and stream.state is ASGIWebsocketState.CONNECTED and _wsproto_idle(stream.connection) \
            and stream.buffer.value is None:
        frame = _next_text_frame(data, at, stream.config.websocket_max_message_size)
        if frame is None:
            break
        text, at = frame
        await stream.app_put({"type": "websocket.receive", "bytes": None, "text": text})  # type: ignore[misc]
        if at == len(data):
            return
    await stream.handle(Data(stream_id=STREAM_ID, data=data[at:] if at else data))


async def _h11_handle(self: H11Protocol, event: Event) -> None:
    stream = self.stream
    if type(event) is RawData and type(stream) is WSStream and type(self.connection) is H11WSConnection \
            and not self.connection.buffer and stream.handshake.accepted and event.data:
        await _ws_receive(stream, event.data)
    else:
        await _original_h11_handle(self, event)


async def _ws_app_send(self: WSStream, message: Any) -> None:
    if (message is not None and message["type"] == "websocket.send" and self.state is ASGIWebsocketState.CONNECTED
            and not self.closed and message.get("bytes") is None and type(message.get("text")) is str):
        connection = self.connection
        proto = connection._proto
        if connection._state is ConnectionState.OPEN and not proto.extensions and proto._outbound_opcode is None:
            payload = message["text"].encode()
            size = len(payload)
            if size < 126:
                header = bytes((FIN_TEXT, size))
            elif size < 65536:
                header = b"\x81\x7e" + size.to_bytes(2, "big")
            else:
                header = b"\x81\x7f" + size.to_bytes(8, "big")
            await self.send(Data(stream_id=self.stream_id, data=header + payload))
            return
    await _original_app_send(self, message)


_original_h11_handle = H11Protocol.handle
_original_app_send = WSStream.app_send

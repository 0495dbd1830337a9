"""A lean RFC 6455 WebSocket client on a plain non-blocking socket, for the load test: it must cost less CPU
per frame than the server it measures. trio-websocket (wsproto underneath) cost the simulator about twice
the media server's CPU per echoed frame (py-spy: its send path, its reader task, a per-frame masking key
from ``getrandom``); the tests keep it as the independent client.

- The handshake is a real HTTP/1.1 upgrade: Sec-WebSocket-Key sent, Sec-WebSocket-Accept checked, a
  status other than 101 or an extension the client did not ask for refused.
- Client frames are masked (RFC 6455 5.3) with one random key per connection, as one integer XOR; a
  per-frame key only guards intermediaries against a hostile script, which a load test is not.
- The server's frames are parsed incrementally from the byte stream (``FrameReader``, no I/O): several
  frames in one read, a frame split across reads, fragments, pings answered with a pong, close answered
  with close. A masked or reserved-bit server frame, an unknown opcode, a bad fragment sequence, an
  oversized message or invalid UTF-8 closes the connection with 1002 / 1009 / 1007.
- ``send_text`` does not wait: it writes now, and what the kernel does not take waits in a buffer that a
  task flushes when the socket is writable (a load generator pacing many calls must not stall on one).

Errors: ``WebSocketError`` <- ``HandshakeError`` (the upgrade failed), ``ClosedError`` (the connection
ended: ``code`` and ``reason``; 1006 when it ended without a close frame).
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import struct
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import trio

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
RECV_SIZE = 65536
MAX_HEADER = 16384
MAX_MESSAGE = 2**20
CLOSE_WAIT = 5.0  # for the server's close frame, in aclose


class WebSocketError(Exception):
    pass


class HandshakeError(WebSocketError):
    pass


class ClosedError(WebSocketError):
    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"{code} {reason}".strip())
        self.code, self.reason = code, reason


class ProtocolError(WebSocketError):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code


def accept_key(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


class FrameReader:
    """The server's frames from a byte stream, fed as it arrives: ``feed`` returns the whole messages
    (TEXT / BINARY, fragments joined) and control frames now complete, as (opcode, payload)."""

    def __init__(self, max_message: int = MAX_MESSAGE) -> None:
        self.max_message = max_message
        self._buffer = b""
        self._fragments: list[bytes] = []
        self._fragment_opcode = 0

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        buf = self._buffer + data if self._buffer else data
        out: list[tuple[int, bytes]] = []
        pos, end_of_data = 0, len(buf)
        while end_of_data - pos >= 2:
            first, size = buf[pos], buf[pos + 1]
            if size & 0x80:
                raise ProtocolError(1002, "masked frame from the server")
            if first & 0x70:
                raise ProtocolError(1002, "reserved bit set with no extension")
            head = 2
            if size == 126:
                if end_of_data - pos < 4:
                    break
                size, head = int.from_bytes(buf[pos + 2:pos + 4], "big"), 4
            elif size == 127:
                if end_of_data - pos < 10:
                    break
                size, head = int.from_bytes(buf[pos + 2:pos + 10], "big"), 10
            opcode = first & 0x0F
            if size > self.max_message or (opcode == CONTINUATION and
                                           size + sum(map(len, self._fragments)) > self.max_message):
                raise ProtocolError(1009, f"message over {self.max_message} bytes")
            end = pos + head + size
            if end > end_of_data:
                break
            payload = buf[pos + head:end]
            pos = end
            fin = first & 0x80
            if opcode >= CLOSE:
                if opcode not in (CLOSE, PING, PONG):
                    raise ProtocolError(1002, f"unknown opcode {opcode}")
                if not fin or size > 125:
                    raise ProtocolError(1002, "fragmented or long control frame")
                out.append((opcode, payload))
            elif opcode == CONTINUATION:
                if not self._fragments:
                    raise ProtocolError(1002, "continuation with no message started")
                self._fragments.append(payload)
                if fin:
                    out.append((self._fragment_opcode, b"".join(self._fragments)))
                    self._fragments = []
            elif opcode in (TEXT, BINARY):
                if self._fragments:
                    raise ProtocolError(1002, "new message inside a fragmented one")
                if fin:
                    out.append((opcode, payload))
                else:
                    self._fragments, self._fragment_opcode = [payload], opcode
            else:
                raise ProtocolError(1002, f"unknown opcode {opcode}")
        self._buffer = buf[pos:]
        return out


class Masker:
    """Client frames with one masking key: the key repeated to each payload's length, as an int, cached."""

    def __init__(self, key: bytes) -> None:
        self.key = key
        self._by_size: dict[int, int] = {}

    def frame(self, opcode: int, payload: bytes) -> bytes:
        size = len(payload)
        if size < 126:
            head = bytes((0x80 | opcode, 0x80 | size))
        elif size < 65536:
            head = struct.pack(">BBH", 0x80 | opcode, 0xFE, size)
        else:
            head = struct.pack(">BBQ", 0x80 | opcode, 0xFF, size)
        mask = self._by_size.get(size)
        if mask is None:
            mask = int.from_bytes((self.key * (size // 4 + 1))[:size], "big")
            if len(self._by_size) < 64:
                self._by_size[size] = mask
        return head + self.key + (int.from_bytes(payload, "big") ^ mask).to_bytes(size, "big")


class WebSocketClient:
    """One open connection (made by ``open_websocket``). One task reads (``get_message``) at a time."""

    def __init__(self, sock: socket.socket, nursery: trio.Nursery, leftover: bytes) -> None:
        self._sock, self._nursery = sock, nursery
        self._masker = Masker(os.urandom(4))
        self._reader = FrameReader()
        self._messages: deque[str | bytes] = deque()
        self._pending = bytearray()
        self._flushed: trio.Event | None = None  # set when the flush task has written what was pending
        self._more = False  # the last read filled its buffer: more may be waiting
        self._close_sent = False
        self.closed: ClosedError | None = None  # set once the connection has ended
        if leftover:
            self._handle(leftover)

    @property
    def buffered(self) -> int:
        """Bytes sent that the kernel has not taken yet."""
        return len(self._pending)

    def send_text(self, text: str) -> None:
        self._send_frame(TEXT, text.encode())

    def send_bytes(self, data: bytes) -> None:
        self._send_frame(BINARY, data)

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        if self._close_sent or self.closed:
            raise self.closed or ClosedError(1006, "closing")
        self._write(self._masker.frame(opcode, payload))

    def _write(self, data: bytes) -> None:
        if self._pending:
            self._pending += data
            return
        try:
            sent = self._sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self._end(1006, str(exc))
            return
        if sent < len(data):
            self._pending += data[sent:]
            self._flushed = trio.Event()
            self._nursery.start_soon(self._flush, self._flushed)

    async def _flush(self, flushed: trio.Event) -> None:
        try:
            while self._pending:
                await trio.lowlevel.wait_writable(self._sock)
                try:
                    sent = self._sock.send(self._pending)
                except BlockingIOError:
                    continue
                except OSError as exc:
                    self._pending.clear()
                    self._end(1006, str(exc))
                    return
                del self._pending[:sent]
        finally:
            flushed.set()

    async def get_message(self) -> str | bytes:
        """The next message: a str for text, bytes for binary; ClosedError once the connection ended."""
        while not self._messages:
            if self.closed:
                raise self.closed
            await self._read()
        return self._messages.popleft()

    async def _read(self) -> None:
        if self._more:
            await trio.lowlevel.checkpoint()
        else:
            await trio.lowlevel.wait_readable(self._sock)
        try:
            data = self._sock.recv(RECV_SIZE)
        except BlockingIOError:
            self._more = False
            return
        except OSError as exc:
            self._end(1006, str(exc))
            return
        self._more = len(data) == RECV_SIZE
        if not data:
            self._end(1006, "the server closed the socket without a close frame")
            return
        self._handle(data)

    def _handle(self, data: bytes) -> None:
        try:
            frames = self._reader.feed(data)
            for opcode, payload in frames:
                if opcode == TEXT:
                    self._messages.append(payload.decode())
                elif opcode == BINARY:
                    self._messages.append(payload)
                elif opcode == PING:
                    if not self._close_sent:
                        self._write(self._masker.frame(PONG, payload))
                elif opcode == CLOSE:
                    self._closed_by_server(payload)
                    return
        except UnicodeDecodeError:
            self._fail(1007, "invalid UTF-8 in a text message")
        except ProtocolError as exc:
            self._fail(exc.code, str(exc))

    def _closed_by_server(self, payload: bytes) -> None:
        if len(payload) == 1:
            self._fail(1002, "close frame of one byte")
            return
        code = int.from_bytes(payload[:2], "big") if payload else 1005
        try:
            reason = payload[2:].decode()
        except UnicodeDecodeError:
            self._fail(1007, "invalid UTF-8 in the close reason")
            return
        if not self._close_sent:  # answer with the same code (RFC 6455 5.5.1)
            self._close_sent = True
            self._write(self._masker.frame(CLOSE, payload[:2]))
        self._end(code, reason)

    def _fail(self, code: int, reason: str) -> None:
        """A protocol error from the server: close with ``code`` and end."""
        if not self._close_sent:
            self._close_sent = True
            self._write(self._masker.frame(CLOSE, code.to_bytes(2, "big") + reason.encode()[:120]))
        self._end(code, reason)

    def _end(self, code: int, reason: str) -> None:
        if self.closed is None:
            self.closed = ClosedError(code, reason)

    async def aclose(self, code: int = 1000) -> None:
        """Close handshake (bounded by CLOSE_WAIT and by the caller's deadline), then the socket."""
        # Shielded so a cancelled caller still says goodbye, but never past the caller's own deadline (the
        # load test's hard end): a caller already cancelled gets its close frame written and no wait.
        deadline = min(trio.current_time() + CLOSE_WAIT, trio.current_effective_deadline())
        with trio.CancelScope(deadline=deadline, shield=True):
            if self.closed is None and not self._close_sent:
                self._close_sent = True
                self._write(self._masker.frame(CLOSE, code.to_bytes(2, "big")))
            while self.closed is None:
                self._messages.clear()
                await self._read()
            if self._flushed is not None:  # our close answer, if the kernel had not taken it yet
                await self._flushed.wait()
        self._end(1006, "closed by the client")
        trio.lowlevel.notify_closing(self._sock)
        self._sock.close()


async def _connect(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        error = sock.connect_ex((host, port))
        if error and error not in (115, 11):  # EINPROGRESS, EAGAIN
            raise OSError(error, os.strerror(error))
        await trio.lowlevel.wait_writable(sock)
        error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:
            raise OSError(error, os.strerror(error))
    except BaseException:
        sock.close()
        raise
    return sock


async def _handshake(sock: socket.socket, host: str, port: int, path: str) -> bytes:
    """Send the upgrade, check the answer; what came after the answer's headers (frames) is returned."""
    key = base64.b64encode(os.urandom(16))
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key.decode()}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
    while request:
        await trio.lowlevel.wait_writable(sock)
        request = request[sock.send(request):]
    answer = b""
    while b"\r\n\r\n" not in answer:
        if len(answer) > MAX_HEADER:
            raise HandshakeError("the upgrade answer's headers are too long")
        await trio.lowlevel.wait_readable(sock)
        try:
            data = sock.recv(RECV_SIZE)
        except BlockingIOError:
            continue
        if not data:
            raise HandshakeError("the server closed the socket during the upgrade")
        answer += data
    head, _, rest = answer.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    parts = status.split(" ", 2)
    if len(parts) < 2 or parts[1] != "101":
        raise HandshakeError(f"upgrade refused: {status!r}")
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("upgrade", "").lower() != "websocket" or "upgrade" not in headers.get("connection", "").lower():
        raise HandshakeError("the answer does not upgrade to websocket")
    if headers.get("sec-websocket-accept", "").encode() != accept_key(key):
        raise HandshakeError("wrong Sec-WebSocket-Accept")
    if headers.get("sec-websocket-extensions"):
        raise HandshakeError("an extension the client did not ask for")
    return rest


@asynccontextmanager
async def open_websocket(url: str, connect_timeout: float = 30) -> AsyncIterator[WebSocketClient]:
    """A connection to a ws:// URL, closed (close handshake, then the socket) on the way out."""
    parts = urlsplit(url)
    if parts.scheme != "ws" or not parts.hostname:
        raise ValueError(f"not a ws:// URL: {url}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    port = parts.port or 80
    with trio.fail_after(connect_timeout):
        sock = await _connect(parts.hostname, port)
        try:
            leftover = await _handshake(sock, parts.hostname, port, path)
        except BaseException:
            sock.close()
            raise
    async with trio.open_nursery() as nursery:
        ws = WebSocketClient(sock, nursery, leftover)
        try:
            yield ws
        finally:
            await ws.aclose()
            nursery.cancel_scope.cancel()

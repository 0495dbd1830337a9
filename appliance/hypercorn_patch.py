"""Trims to Hypercorn's trio per-message path, found with py-spy on the media role (each frame crosses it
twice): what an upstream change would be, applied here to the installed Hypercorn 0.17-0.18 (nothing
vendored). Plain TCP only; a TLS stream keeps Hypercorn's own path.

- ``TCPServer._read_data`` enters ``trio.fail_after(read_timeout or inf)`` around every read, a cancel scope
  per chunk for nothing when no read timeout is set (the default), and reads through trio's socket wrapper,
  which yields to the scheduler even when data is waiting. Patched: read the socket directly, wait for it
  to be readable only when it has nothing; still a checkpoint at least every FAIR_READS reads (about 18 %
  of the media role's CPU per frame).
- ``TCPServer.protocol_send`` takes ``send_lock`` and writes through trio's ``send_all`` (a scheduling round
  trip for the lock and one for the write, plus three context managers). Patched: when no other write is in
  progress, write directly; only what the kernel did not take goes the old way, under the lock.
- ``TaskGroup.spawn_app`` hands the protocol ``channel.send`` to queue ASGI messages for the app: a round
  trip through the scheduler per message even with room in the queue. Patched: ``send_nowait`` when there
  is room, ``send`` (waiting: the backpressure) when there is not.
- Each WebSocket message read goes H11Protocol -> H11WSConnection (a copy into a bytearray and out) ->
  WSStream -> wsproto (a buffer, a header parse, a masker, a frame, a UTF-8 incremental decoder, an event
  per frame, through three generators) -> a StringIO. Patched: an open connection's bytes that start with
  whole, final, masked text frames (what a browser or Twilio sends) are unmasked and decoded here and go
  to the app as they are; anything else (a partial, fragmented, control, binary, reserved-bit, oversized
  or invalid UTF-8 frame, an extension in use, wsproto holding bytes of its own) goes to wsproto as before,
  from the first byte the fast path did not take.
- Sending a text message builds wsproto's Message event and frame (a bytearray per step). Patched: an
  open connection with no extension in use frames the text itself (server frames are not masked).

- ``TrioSingleTask.restart`` (the keep-alive idle timer, restarted as each connection opens and after
  each request) takes a lock and starts the timer task with ``nursery.start``, two scheduler round trips
  for a task that only sleeps. Patched: the cancel scope is made first and the task started with
  ``start_soon`` (restart and stop do not wait, so the lock had nothing to order). CPU per post at 1,000
  posts in flight, each on a new connection: 1,140-1,300 -> 940-1,160 µs (alternating runs, 2 each).

- Even so, each idle period of each connection was a task (spawned, parked on an event, cancelled with an
  exception): twice for a post on its own connection (as it opens, after its answer). Patched: the
  connections' keep-alive timers are deadlines in one heap per worker, kept by one task that closes a
  connection when its deadline passes (as ``_idle_timeout`` does: ``_initiate_server_close``, shielded,
  in the connection's task group) and every idle one at once when the worker is terminating; a timer
  for any other action still gets its own task. CPU per post at 1,000 posts in flight 780-850 (median
  820) -> 480-900 (median 780) µs, posts/s median 1,141 -> 1,248; at 20 in flight 520-540 -> 480-520 µs
  (alternating runs, 3 x 3 bursts each).

- ``TCPServer._close`` shuts the socket's sending side (a checkpoint and a syscall), closes it (another
  checkpoint), then trio's ``serve_listeners`` closes it again. Patched: once the peer has closed (the
  reader saw its end), the socket is just closed (the FIN goes out with the close); a connection closed
  from our side (a 413, the idle timer) keeps Hypercorn's path. CPU per post at 1,000 in flight, two A/B
  runs of 3 x 3 bursts each (alternating, then in the other order): median 760 -> 740 and 820 -> 720 µs;
  posts/s median 1,213 -> 1,264 and 948 -> 1,240.

- ``H11Protocol._send_h11_event`` writes a response's head, its body and its end (``b""`` for a sized
  body) as three writes, each through ``protocol_send``'s lock and shielded ``send_all``. Patched: the head
  of a response with a ``content-length`` is held and goes out with its body in one write (a streamed
  response, without one, still sends its head at once); empty writes are skipped. Api role, 20 webhook
  posts in flight: CPU per post 670-690 -> 600 µs, 1,415-1,492 -> 1,625-1,634 posts/s (A/B, 2 each).

- When the client closes its side, ``TCPServer._read_data`` ends but the keep-alive idle timer, restarted
  after the last answer, keeps the connection's task group (and the socket, in CLOSE-WAIT) open until
  ``keep_alive_timeout`` (5 s) runs out. Patched: the timer is stopped once reading has ended (the app,
  if still answering, finishes as before). After a 300-post burst, each post on its own connection, 87
  sockets were still in CLOSE-WAIT 6 s later without it, none with it. CPU per post at 1,000 in flight
  930-1,110 -> 930-1,030 µs (alternating runs, 2 x 3 bursts each; within the noise).
- A finished connection is a reference cycle (``TCPServer.protocol`` -> H11Protocol -> its ``send``, the
  bound ``TCPServer.protocol_send``) holding ~27 objects (the h11 connection, the socket, locks, events)
  that only the cycle collector frees. Patched: ``TCPServer.run`` drops ``protocol`` when it ends, and
  the whole connection is freed by reference counting. Objects found as garbage by the collector over
  5,200 posts: ~105,000 -> 0; CPU per post at 1,000 in flight 800-870 -> 780-860 µs (alternating, 2 x 3
  bursts each); the collector's time is mostly its passes over live connections, which stay.

Same exceptions, same order of bytes, same backpressure; reads and writes that must wait still wait in trio.
Installed by the media role (together: CPU per echoed frame 470 -> 280 µs with the session changes) and the
api role without the direct writes (see ``apply``). Measured for the api with the webhook answered in front
of Quart, alternating runs on a quiet machine (2 each, the second burst on a warm server): CPU per post at
20 in flight 860-910 µs without the trims, 640-690 with them; at 1,000 in flight (each post a new
connection) 1,210-1,340 against 1,080-1,390, within the noise. The earlier "half the posts/s with the read
trim" (measured under a load average of 6-10) did not reproduce.
"""

from __future__ import annotations

import heapq
import math
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import h11
import trio
from hypercorn.events import Closed, Event, RawData
from hypercorn.protocol.events import Data
from hypercorn.protocol.h11 import STREAM_ID, H11Protocol, H11WSConnection
from hypercorn.protocol.ws_stream import ASGIWebsocketState, WSStream
from hypercorn.trio import tcp_server
from hypercorn.trio.task_group import TaskGroup
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import TrioSingleTask
from wsproto.connection import Connection, ConnectionState

FAIR_READS = 16  # reads in a row that found data waiting before the reader yields anyway


def _plain_socket(stream: Any) -> socket.socket | None:
    """The stdlib socket under a plain trio SocketStream (None for TLS)."""
    if type(stream) is trio.SocketStream:  # (isinstance goes through ABCMeta: measurable per frame)
        return stream.socket._sock  # type: ignore[attr-defined]  # trio keeps the stdlib socket here, non-blocking
    return None


async def _receive(raw: socket.socket, ready: bool) -> bytes:
    if ready:
        try:
            return raw.recv(tcp_server.MAX_RECV)
        except BlockingIOError:
            pass
    while True:
        if raw.fileno() < 0:
            # Closed by another task (the app's close) while this one was not waiting: trio's SocketStream
            # checks this too. Waiting on fd -1 raised ValueError, and a second connection in the same state
            # BusyResourceError (one registration for fd -1): either took the whole media process down
            # (seen at 350-400 calls when many calls end at once).
            raise trio.ClosedResourceError("the socket was closed")
        await trio.lowlevel.wait_readable(raw)
        try:
            return raw.recv(tcp_server.MAX_RECV)
        except BlockingIOError:
            pass


async def _read_data(self: TCPServer) -> None:
    await _read(self)
    await self.idle_task.stop()  # the peer is gone: nothing to wait for (Hypercorn waits keep_alive_timeout)


async def _read(self: TCPServer) -> None:
    raw = _plain_socket(self.stream) if self.config.read_timeout is None else None
    if raw is None:
        await _original_read(self)
        return
    in_a_row = 0
    while True:
        in_a_row += 1
        try:
            data = await _receive(raw, ready=in_a_row < FAIR_READS)
        except (OSError, trio.ClosedResourceError, trio.BrokenResourceError):
            break
        if in_a_row >= FAIR_READS:
            in_a_row = 0
        await self.protocol.handle(RawData(data))
        if data == b"":
            self.__dict__["_peer_closed"] = True
            break
    await self.protocol.handle(Closed())


async def _run(self: TCPServer) -> None:
    try:
        await _original_run(self)
    finally:
        self.__dict__.pop("protocol", None)  # it holds our protocol_send: a cycle only the collector would free


async def _close(self: TCPServer) -> None:
    if self.__dict__.get("_peer_closed") and _plain_socket(self.stream) is not None:
        self.stream.socket.close()  # the peer has closed: our FIN goes with the close; no shutdown, no checkpoints
        return
    await _original_close(self)


async def _protocol_send(self: TCPServer, event: Event) -> None:
    if isinstance(event, RawData) and not self.send_lock.locked():
        raw = _plain_socket(self.stream)
        if raw is not None and not self.stream.socket.did_shutdown_SHUT_WR:
            try:
                sent = raw.send(event.data)
            except OSError:  # would block, or broken: the usual path waits, or reports it as Closed
                sent = 0
            if sent == len(event.data):
                return
            event = RawData(event.data[sent:])
    await _original_send(self, event)


async def _spawn_app(self: TaskGroup, *args: Any) -> Callable[[Any], Awaitable[None]]:
    put = await _original_spawn(self, *args)
    channel: trio.MemorySendChannel[Any] = put.__self__  # type: ignore[attr-defined]

    async def put_now(message: Any) -> None:
        try:
            channel.send_nowait(message)
        except trio.WouldBlock:
            await channel.send(message)

    return put_now


# -- WebSocket messages ---------------------------------------------------------------------------------
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


# -- HTTP/1.1 keep-alive timer and responses ---------------------------------------------------------
async def _in_scope(scope: trio.CancelScope, action: Callable[[], Awaitable[None]]) -> None:
    with scope:
        await action()


async def _restart(self: TrioSingleTask, task_group: Any, action: Callable[[], Awaitable[None]]) -> None:
    await _stop(self)
    server = getattr(action, "__self__", None)
    if type(server) is TCPServer and getattr(action, "__func__", None) is TCPServer._idle_timeout \
            :
        _IdleTimers.of(server.context).arm(self, server, task_group)
        return
    self._handle = scope = trio.CancelScope()  # cancelled before the task enters it: the task just ends
    task_group._nursery.start_soon(_in_scope, scope, action)


async def _stop(self: TrioSingleTask) -> None:
    if self._handle is not None:
        self._handle.cancel()
    self._handle = None
    self.__dict__.pop("_armed", None)


class _IdleTimers:
    """The keep-alive idle timers of one worker's connections, kept by one task: a deadline per idle
    connection in a heap, and the connection closed as Hypercorn's ``_idle_timeout`` would when it passes
    (or at once once the worker is terminating)."""

    def __init__(self, context: Any) -> None:
        self.context = context
        self.heap: list[tuple[float, int, TrioSingleTask]] = []
        self.count = 0
        self.sleep = trio.CancelScope()
        self.started = False

    @classmethod
    def of(cls, context: Any) -> _IdleTimers:
        timers: _IdleTimers | None = context.__dict__.get("_idle_timers")
        if timers is None:
            timers = context.__dict__["_idle_timers"] = cls(context)
        return timers

    def arm(self, task: TrioSingleTask, server: TCPServer, task_group: Any) -> None:
        if self.context.terminated.is_set():
            self._close(server, task_group)
            return
        deadline = trio.current_time() + server.config.keep_alive_timeout
        self.count += 1
        task.__dict__["_armed"] = (self.count, server, task_group)
        heapq.heappush(self.heap, (deadline, self.count, task))
        if deadline < self.sleep.deadline:
            self.sleep.deadline = deadline
        if not self.started:
            self.started = True
            trio.lowlevel.spawn_system_task(self._run)

    async def _run(self) -> None:
        while not self.context.terminated.is_set():
            with trio.CancelScope(deadline=self.heap[0][0] if self.heap else math.inf) as self.sleep:
                await self.context.terminated.wait()
            now = trio.current_time()
            while self.heap and (self.heap[0][0] <= now or self.context.terminated.is_set()):
                _, number, task = heapq.heappop(self.heap)
                armed = task.__dict__.get("_armed")
                if armed is not None and armed[0] == number:
                    del task.__dict__["_armed"]
                    self._close(armed[1], armed[2])

    @staticmethod
    def _close(server: TCPServer, task_group: Any) -> None:
        try:
            task_group._nursery.start_soon(_close_idle, server)
        except (AttributeError, RuntimeError):  # the connection has ended meanwhile (its nursery is gone)
            pass


async def _close_idle(server: TCPServer) -> None:
    with trio.CancelScope(shield=True):
        await server._initiate_server_close()


async def _send_h11_event(self: H11Protocol, event: Any) -> None:
    try:
        data = self.connection.send(event)
    except h11.LocalProtocolError:
        if self.connection.their_state != h11.ERROR:
            raise
        return
    held = self.__dict__.pop("_held_head", b"")
    if isinstance(event, h11.Response) and any(name == b"content-length" for name, _ in event.headers):
        self.__dict__["_held_head"] = held + data  # its body follows at once: one write for both
        return
    if held or data:
        await self.send(RawData(data=held + data))


_original_run = TCPServer.run
_original_close = TCPServer._close
_original_read = TCPServer._read_data
_original_send = TCPServer.protocol_send
_original_spawn = TaskGroup.spawn_app
_original_h11_handle = H11Protocol.handle
_original_app_send = WSStream.app_send


def apply(*, direct_writes: bool = True) -> None:
    """Install the trims in this process (idempotent; the last call decides the writes). Without
    ``direct_writes`` the writes keep Hypercorn's path: the api role's 413 to a client still sending its body
    then reaches it before the connection closes (with direct writes, ``tests/test_hostile_input.py``'s
    keep-alive-after-413 client saw its send cut)."""
    TCPServer.run = _run  # type: ignore[method-assign]
    TCPServer._close = _close  # type: ignore[method-assign]
    TCPServer._read_data = _read_data  # type: ignore[method-assign]
    TCPServer.protocol_send = _protocol_send if direct_writes else _original_send  # type: ignore[method-assign]
    TaskGroup.spawn_app = _spawn_app  # type: ignore[method-assign, assignment]
    H11Protocol.handle = _h11_handle  # type: ignore[method-assign]
    WSStream.app_send = _ws_app_send  # type: ignore[method-assign]
    TrioSingleTask.restart = _restart  # type: ignore[method-assign]
    TrioSingleTask.stop = _stop  # type: ignore[method-assign]
    H11Protocol._send_h11_event = _send_h11_event  # type: ignore[method-assign]

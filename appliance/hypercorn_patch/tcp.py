"""Hypercorn's trio ``TCPServer`` and ``TaskGroup``: reads, writes, closing and the ASGI queue.

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
- ``TCPServer._close`` shuts the socket's sending side (a checkpoint and a syscall), closes it (another
  checkpoint), then trio's ``serve_listeners`` closes it again. Patched: once the peer has closed (the
  reader saw its end), the socket is just closed (the FIN goes out with the close); a connection closed
  from our side (a 413, the idle timer) keeps Hypercorn's path. CPU per post at 1,000 in flight, two A/B
  runs of 3 x 3 bursts each (alternating, then in the other order): median 760 -> 740 and 820 -> 720 µs;
  posts/s median 1,213 -> 1,264 and 948 -> 1,240.
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
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from hypercorn.events import Closed, Event, RawData
from hypercorn.trio import tcp_server
from hypercorn.trio.task_group import TaskGroup
from hypercorn.trio.tcp_server import TCPServer

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
    await original_send(self, event)


async def _spawn_app(self: TaskGroup, *args: Any) -> Callable[[Any], Awaitable[None]]:
    put = await _original_spawn(self, *args)
    channel: trio.MemorySendChannel[Any] = put.__self__  # type: ignore[attr-defined]

    async def put_now(message: Any) -> None:
        try:
            channel.send_nowait(message)
        except trio.WouldBlock:
            await channel.send(message)

    return put_now


_original_run = TCPServer.run
_original_close = TCPServer._close
_original_read = TCPServer._read_data
original_send = TCPServer.protocol_send
_original_spawn = TaskGroup.spawn_app

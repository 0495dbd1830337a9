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

Same exceptions, same order of bytes, same backpressure; reads and writes that must wait still wait in trio.
Installed by the media role (together: CPU per echoed frame 470 -> 280 µs with the session changes) and the
api role: re-measured on a quiet machine with the webhook answered in front of Quart, CPU per post at 20 in
flight fell 840-870 -> 720-740 µs and at 1,000 in flight it was unchanged (1,250-1,350 µs either way),
alternating runs; the earlier "half the posts/s with the read trim" (a load average of 6-10) did not
reproduce.
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
    if isinstance(stream, trio.SocketStream):
        return stream.socket._sock  # type: ignore[attr-defined]  # trio keeps the stdlib socket here, non-blocking
    return None


async def _receive(raw: socket.socket, ready: bool) -> bytes:
    if ready:
        try:
            return raw.recv(tcp_server.MAX_RECV)
        except BlockingIOError:
            pass
    while True:
        await trio.lowlevel.wait_readable(raw)
        try:
            return raw.recv(tcp_server.MAX_RECV)
        except BlockingIOError:
            pass


async def _read_data(self: TCPServer) -> None:
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
            break
    await self.protocol.handle(Closed())


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


_original_read = TCPServer._read_data
_original_send = TCPServer.protocol_send
_original_spawn = TaskGroup.spawn_app


def apply() -> None:
    """Install the trims in this process (idempotent)."""
    TCPServer._read_data = _read_data  # type: ignore[method-assign]
    TCPServer.protocol_send = _protocol_send  # type: ignore[method-assign]
    TaskGroup.spawn_app = _spawn_app  # type: ignore[method-assign, assignment]

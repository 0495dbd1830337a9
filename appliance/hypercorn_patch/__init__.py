"""Trims to Hypercorn's trio per-message path, found with py-spy on the media role (each frame crosses it
twice): what an upstream change would be, applied here to the installed Hypercorn 0.17-0.18 (nothing
vendored). Plain TCP only; a TLS stream keeps Hypercorn's own path.

`tcp.py` (reads, writes, closing, the ASGI queue), `websocket.py` (whole text frames), `keepalive.py`
(idle timers), `responses.py` (one write per sized response): each trim is described there with the
measurement that kept it.

Same exceptions, same order of bytes, same backpressure; reads and writes that must wait still wait in trio.
Installed by the media role (together: CPU per echoed frame 470 -> 280 µs with the session changes) and the
api role without the direct writes (see ``apply``). Measured for the api with the webhook answered in front
of Quart, alternating runs on a quiet machine (2 each, the second burst on a warm server): CPU per post at
20 in flight 860-910 µs without the trims, 640-690 with them; at 1,000 in flight (each post a new
connection) 1,210-1,340 against 1,080-1,390, within the noise. The earlier "half the posts/s with the read
trim" (measured under a load average of 6-10) did not reproduce.
"""

from __future__ import annotations

from hypercorn.protocol.h11 import H11Protocol
from hypercorn.protocol.ws_stream import WSStream
from hypercorn.trio.task_group import TaskGroup
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import TrioSingleTask

from appliance.hypercorn_patch import keepalive, responses, tcp, websocket


def apply(*, direct_writes: bool = True) -> None:
    """Install the trims in this process (idempotent; the last call decides the writes). Without
    ``direct_writes`` the writes keep Hypercorn's path: the api role's 413 to a client still sending its body
    then reaches it before the connection closes (with direct writes, ``tests/test_hostile_input.py``'s
    keep-alive-after-413 client saw its send cut)."""
    TCPServer.run = tcp._run  # type: ignore[method-assign]
    TCPServer._close = tcp._close  # type: ignore[method-assign]
    TCPServer._read_data = tcp._read_data  # type: ignore[method-assign]
    send = tcp._protocol_send if direct_writes else tcp.original_send
    TCPServer.protocol_send = send  # type: ignore[method-assign]
    TaskGroup.spawn_app = tcp._spawn_app  # type: ignore[method-assign, assignment]
    H11Protocol.handle = websocket._h11_handle  # type: ignore[method-assign]
    WSStream.app_send = websocket._ws_app_send  # type: ignore[method-assign]
    TrioSingleTask.restart = keepalive._restart  # type: ignore[method-assign]
    TrioSingleTask.stop = keepalive._stop  # type: ignore[method-assign]
    H11Protocol._send_h11_event = responses._send_h11_event  # type: ignore[method-assign]

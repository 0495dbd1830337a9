"""One supervised child process: its own notify socket, its READY and WATCHDOG deadlines, its output.

The child is judged by the same sd_notify messages systemd would read: READY=1 within the start timeout,
then WATCHDOG=1 at least every watchdog interval (it is told WATCHDOG_USEC and beats at half of it). A
child that misses its watchdog deadline is sent SIGABRT (a core or traceback for the post-mortem), then
SIGKILL.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import trio

from appliance.nursery.sdnotify import parse_message

log = logging.getLogger(__name__)
KILL_AFTER_ABORT = 3.0


@dataclass
class ChildState:
    name: str
    pid: int | None = None
    ready: bool = False
    status: str = "starting"
    restarts: int = 0
    failed: bool = False
    last_exit: str = ""
    ready_event: trio.Event = field(default_factory=trio.Event)  # first READY=1 ever (the supervisor's READY)


@dataclass(frozen=True)
class Outcome:
    reason: str  # "exited", "hung", "start timeout"
    returncode: int | None


async def _pump_output(stream: trio.abc.ReceiveStream, prefix: str) -> None:
    """Child output to our stdout, each line prefixed with the role (journald reads one line per record).

    Written from a thread (trio.wrap_file): a stdout that blocks (a full pipe, a stalled journal) must not
    stall the supervisor's own loop and with it the watchdog it answers to."""
    out = trio.wrap_file(sys.stdout)
    pending = b""
    async for chunk in stream:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        if lines:
            await out.write("".join(f"{prefix}: {line.decode('utf-8', 'replace')}\n" for line in lines))
            await out.flush()
    if pending:
        await out.write(f"{prefix}: {pending.decode('utf-8', 'replace')}\n")
        await out.flush()


async def run_child(state: ChildState, argv: Sequence[str], env: dict[str, str], socket_path: Path, *,
                    start_timeout: float, watchdog: float, stop: trio.Event) -> Outcome:
    """Run the child once, until it exits, hangs or misses its start deadline."""
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    await trio.Path(socket_path).unlink(missing_ok=True)
    await sock.bind(str(socket_path))
    child_env = {**env, "NOTIFY_SOCKET": str(socket_path), "WATCHDOG_USEC": str(int(watchdog * 1_000_000))}
    proc = await trio.lowlevel.open_process(list(argv), env=child_env, stdout=subprocess.PIPE,
                                            stderr=subprocess.STDOUT, start_new_session=True)
    state.pid, state.ready, state.status = proc.pid, False, "starting"
    prefix = f"{state.name}[{proc.pid}]"
    try:
        async with trio.open_nursery() as nursery:
            assert proc.stdout is not None  # opened with stdout=PIPE
            nursery.start_soon(_pump_output, proc.stdout, prefix)
            with trio.CancelScope() as deadline:
                deadline.deadline = trio.current_time() + start_timeout
                nursery.start_soon(_receive_notifications, sock, state, deadline, watchdog)
                await proc.wait()
            if deadline.cancelled_caught:
                reason = "hung" if state.ready else "start timeout"
                log.error("%s %s: no %s within %gs; SIGABRT, then SIGKILL", prefix, reason,
                          "WATCHDOG=1" if state.ready else "READY=1", watchdog if state.ready else start_timeout)
                await _abort_then_kill(proc)
            else:
                reason = "exited"
            nursery.cancel_scope.cancel()
        return Outcome(reason, proc.returncode)
    finally:
        with trio.CancelScope(shield=True):
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            sock.close()
            await trio.Path(socket_path).unlink(missing_ok=True)
            state.ready, state.pid = False, None


async def _receive_notifications(sock: trio.socket.SocketType, state: ChildState, deadline: trio.CancelScope,
                                 watchdog: float) -> None:
    while True:
        fields = parse_message(await sock.recv(4096))
        if fields.get("READY") == "1" and not state.ready:
            state.ready = True
            state.ready_event.set()
            deadline.deadline = trio.current_time() + watchdog
        if fields.get("WATCHDOG") == "1" and state.ready:
            deadline.deadline = trio.current_time() + watchdog
        if "STATUS" in fields:
            state.status = fields["STATUS"]
        if fields.get("STOPPING") == "1":
            state.status = "stopping"
            deadline.deadline = float("inf")  # draining: judged by the grace now, not the watchdog


async def _abort_then_kill(proc: trio.Process) -> None:
    with trio.CancelScope(shield=True):
        try:
            os.kill(proc.pid, signal.SIGABRT)
        except ProcessLookupError:
            return
        with trio.move_on_after(KILL_AFTER_ABORT):
            await proc.wait()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

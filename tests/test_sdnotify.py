"""sd_notify over real datagram sockets; the health-gated heartbeat under a MockClock."""

from __future__ import annotations

import os
import socket
import uuid

import trio
import trio.testing

from appliance.nursery.role import RoleHandle, heartbeat
from appliance.nursery.sdnotify import Notifier, parse_message


def test_from_env_reads_socket_and_watchdog():
    notifier = Notifier.from_env({"NOTIFY_SOCKET": "@abc", "WATCHDOG_USEC": "4000000"})
    assert notifier.address == "\0abc" and notifier.watchdog_interval == 2.0
    other_pid = Notifier.from_env({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "1"})
    assert other_pid.watchdog_interval is None or os.getpid() == 1
    assert not Notifier.from_env({}).enabled
    Notifier.from_env({}).ready("no socket: a no-op")


def test_messages_reach_an_abstract_socket():
    name = f"appliance-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind("\0" + name)
        notifier = Notifier("@" + name)
        notifier.ready("serving")
        notifier.watchdog("3 jobs")
        notifier.stopping()
        notifier.close()
        first, second, third = (parse_message(server.recv(4096)) for _ in range(3))
    assert first["READY"] == "1" and first["STATUS"] == "serving" and first["MAINPID"] == str(os.getpid())
    assert second == {"WATCHDOG": "1", "STATUS": "3 jobs"}
    assert third == {"STOPPING": "1", "STATUS": "stopping"}


class Recorder(Notifier):
    def __init__(self) -> None:
        super().__init__("@unused", watchdog_usec=2_000_000)
        self.beats: list[float] = []

    def notify(self, **fields: object) -> None:
        if fields.get("WATCHDOG") == 1:
            self.beats.append(trio.current_time())


def test_heartbeat_beats_at_half_the_watchdog_and_only_while_healthy():
    healthy = True

    async def check() -> bool:
        return healthy

    async def main() -> list[float]:
        nonlocal healthy
        recorder = Recorder()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(heartbeat, RoleHandle(status=lambda: "ok", healthy=check), recorder)
            await trio.sleep(3.5)  # beats at 0, 1, 2, 3
            healthy = False
            await trio.sleep(3)  # none while unhealthy
            healthy = True
            await trio.sleep(0.75)  # healthy again from 6.5: beats at 7, and the test ends at 7.25
            nursery.cancel_scope.cancel()
        return recorder.beats

    beats = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert beats == [0.0, 1.0, 2.0, 3.0, 7.0]

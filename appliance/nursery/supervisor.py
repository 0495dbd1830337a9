"""``appliance up``: a Trio nursery with one supervising task per child process.

Children: API_PROCESSES api and MEDIA_PROCESSES media processes (each set sharing its port), WORKERS
workers, scheduler, each ``python -m appliance <role>``, each judged by its own sd_notify messages (see
child.py). A child that dies or hangs is restarted with exponential backoff; more
than RESTART_BURST restarts within RESTART_WINDOW mark its role failed, and since every role is essential
the supervisor then exits non-zero so systemd restarts the whole unit.

The supervisor notifies systemd READY=1 once every child is ready, and WATCHDOG=1 only while every child
is ready. SIGTERM or SIGINT: STOPPING=1, SIGTERM to every child at once, SIGKILL for what is left after
SHUTDOWN_GRACE, exit 0. A second SIGINT skips the grace.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

import trio

from appliance.nursery.child import ChildState, run_child
from appliance.nursery.exception_groups import leaves
from appliance.nursery.roles import ROLES
from appliance.nursery.sdnotify import Notifier
from appliance.settings import Settings

log = logging.getLogger(__name__)
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
KILL_MARGIN = 2.0


class RoleFailedError(Exception):
    """A role restarted more often than the burst limit allows."""


def expand_roles(roles: list[str], workers: int, *, api: int = 1, media: int = 1) -> list[str]:
    """Child names: a role run as several processes gets ``role-1`` .. ``role-N`` (workers always do)."""
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise ValueError(f"unknown roles {unknown}; choose from {', '.join(ROLES)}")
    counts = {"worker": workers, "api": api, "media": media}
    names: list[str] = []
    for role in ROLES:
        if role in roles:
            count = counts.get(role, 1)
            names += [f"{role}-{i}" for i in range(1, count + 1)] if role == "worker" or count > 1 else [role]
    return names


class Supervisor:
    def __init__(self, settings: Settings, roles: list[str], notifier: Notifier | None = None) -> None:
        self.settings = settings
        names = expand_roles(roles, settings.workers, api=settings.api_processes, media=settings.media_processes)
        self.children = {name: ChildState(name) for name in names}
        self.notifier = notifier or Notifier.from_env()
        self.stop = trio.Event()
        self.socket_dir = Path(tempfile.mkdtemp(prefix="appliance-notify-"))
        self.env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}

    def summary(self) -> str:
        parts = []
        for state in self.children.values():
            mark = "failed" if state.failed else ("ok" if state.ready else "down")
            parts.append(f"{state.name}={mark}" + (f"({state.restarts} restarts)" if state.restarts else ""))
        return " ".join(parts)

    async def run(self) -> int:
        failures: list[RoleFailedError] = []
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._signals, nursery.cancel_scope)
                nursery.start_soon(self._report)
                async with trio.open_nursery() as roles:
                    for name in self.children:
                        roles.start_soon(self._supervise, name)
                nursery.cancel_scope.cancel()  # every child is down: end the signal and report tasks
        except* RoleFailedError as group:
            failures = [leaf for leaf in leaves(group) if isinstance(leaf, RoleFailedError)]
        finally:
            for path in self.socket_dir.glob("*"):
                path.unlink(missing_ok=True)
            self.socket_dir.rmdir()
        for exc in failures:
            log.error("supervisor exiting non-zero: %s", exc)
        if failures:
            self.notifier.notify(STATUS=f"failed: {failures[0]}")
            return 1
        return 0

    async def _supervise(self, name: str) -> None:
        state = self.children[name]
        role = name.split("-", 1)[0]
        argv = [sys.executable, "-m", "appliance", role]
        recent: deque[float] = deque()
        backoff = BACKOFF_FIRST
        while not self.stop.is_set():
            started = time.monotonic()
            outcome = await run_child(
                state, argv, self.env, self.socket_dir / f"{name}.sock",
                start_timeout=self.settings.supervisor_start_timeout, watchdog=self.settings.supervisor_watchdog,
                stop=self.stop,
            )
            state.last_exit = f"{outcome.reason} (code {outcome.returncode})"
            if self.stop.is_set():
                log.info("%s stopped: %s", name, state.last_exit)
                return
            now = time.monotonic()
            if now - started > self.settings.restart_window:
                backoff = BACKOFF_FIRST  # it ran well for a while: start the backoff afresh
            recent.append(now)
            while recent and now - recent[0] > self.settings.restart_window:
                recent.popleft()
            if len(recent) > self.settings.restart_burst:
                state.failed = True
                raise RoleFailedError(f"{name} restarted {len(recent) - 1} times within "
                                      f"{self.settings.restart_window:g}s; last: {state.last_exit}")
            state.restarts += 1
            log.warning("%s %s; restart %d in %.1fs", name, state.last_exit, state.restarts, backoff)
            with trio.move_on_after(backoff):
                await self.stop.wait()
            backoff = min(BACKOFF_MAX, backoff * 2)

    async def _report(self) -> None:
        """READY to systemd once all children are; WATCHDOG only while all of them are healthy."""
        for state in self.children.values():
            await state.ready_event.wait()
        log.info("all roles ready: %s", self.summary())
        self.notifier.ready(self.summary())
        interval = self.notifier.watchdog_interval or 5.0
        while True:
            if all(state.ready for state in self.children.values()):
                self.notifier.watchdog(self.summary())
            else:
                self.notifier.notify(STATUS=self.summary())
            await trio.sleep(interval)

    async def _signals(self, scope: trio.CancelScope) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                if not self.stop.is_set():
                    grace = self.settings.shutdown_grace
                    log.info("%s: stopping every role, %gs grace", signal.Signals(signum).name, grace)
                    self.notifier.stopping()
                    self.stop.set()
                    self._signal_children(signal.SIGTERM)
                    # What has not exited by then is killed by run_child's shielded cleanup.
                    scope.deadline = trio.current_time() + grace + KILL_MARGIN
                elif signum == signal.SIGINT:
                    log.warning("second SIGINT: killing every role now")
                    scope.cancel()

    def _signal_children(self, signum: int) -> None:
        for state in self.children.values():
            if state.pid:
                try:
                    os.kill(state.pid, signum)
                except ProcessLookupError:
                    pass


async def supervise(settings: Settings, roles: list[str]) -> int:
    try:
        supervisor = Supervisor(settings, roles)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return await supervisor.run()

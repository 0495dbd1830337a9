"""Run one role in the foreground: signals, READY, WATCHDOG from a health-gated heartbeat, STOPPING.

A role is ``async def serve(settings, stop, *, task_status)`` that calls ``task_status.started(RoleHandle)``
once it serves and returns once it has drained after ``stop`` is set.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import trio

from appliance.nursery.sdnotify import Notifier
from appliance.redis import REDIS_DOWN, open_redis, warn_unless_durable
from appliance.settings import Settings

log = logging.getLogger(__name__)
DEFAULT_BEAT = 5.0
HEALTH_TIMEOUT = 5.0


@dataclass(frozen=True)
class RoleHandle:
    status: Callable[[], str]
    healthy: Callable[[], Awaitable[bool]]


class Role(Protocol):
    def __call__(self, settings: Settings, stop: trio.Event, *, task_status: trio.TaskStatus[RoleHandle]
                 ) -> Awaitable[None]: ...


async def tcp_accepts(host: str, port: int) -> bool:
    """Whether a listener accepts a connection right now (the api and media roles' health)."""
    target = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    try:
        stream = await trio.open_tcp_stream(target, port)
    except OSError:
        return False
    await stream.aclose()
    return True


async def heartbeat(handle: RoleHandle, notifier: Notifier) -> None:
    """WATCHDOG=1 at the asked interval, but only while the role's own health check passes."""
    interval = notifier.watchdog_interval or DEFAULT_BEAT
    while True:
        with trio.move_on_after(HEALTH_TIMEOUT):
            if await handle.healthy():
                notifier.watchdog(handle.status())
            else:
                log.warning("health check failed; withholding WATCHDOG")
        await trio.sleep(interval)


async def _on_signals(stop: trio.Event, scope: trio.CancelScope, notifier: Notifier, grace: float) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            if not stop.is_set():
                log.info("%s: draining for up to %gs", signal.Signals(signum).name, grace)
                notifier.stopping()
                stop.set()
                scope.deadline = min(scope.deadline, trio.current_time() + grace + 5)
            elif signum == signal.SIGINT:
                log.warning("second SIGINT: stopping now, skipping the grace")
                scope.cancel()


async def check_redis_durable(name: str, settings: Settings) -> None:
    """Read Redis' ``appendonly`` once at start; a loud warning when accepted jobs would not survive."""
    with trio.move_on_after(HEALTH_TIMEOUT):
        try:
            async with open_redis(settings.redis_url, max_connections=1) as redis:
                await warn_unless_durable(redis, name)
        except REDIS_DOWN as exc:
            log.warning("%s: could not read Redis' appendonly setting: %s", name, exc)


async def run_role(name: str, serve: Role, settings: Settings, notifier: Notifier | None = None) -> None:
    notifier = notifier or Notifier.from_env()
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_on_signals, stop, nursery.cancel_scope, notifier, settings.shutdown_grace)

        async def serve_then_finish(*, task_status: trio.TaskStatus[RoleHandle]) -> None:
            await serve(settings, stop, task_status=task_status)
            nursery.cancel_scope.cancel()  # drained: end the signal and heartbeat tasks too

        handle = await nursery.start(serve_then_finish)
        nursery.start_soon(check_redis_durable, name, settings)
        log.info("%s ready: %s", name, handle.status())
        notifier.ready(handle.status())
        if notifier.enabled:
            nursery.start_soon(heartbeat, handle, notifier)
    notifier.close()
    log.info("%s stopped", name)

"""Small test helpers: a settable clock for Redis-side times, polling with a deadline, role processes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Awaitable, Callable

import trio

from appliance.settings import Settings


class FakeClock:
    """Wall-clock seconds for the queue (what it writes to Redis), moved only by the test."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def wait_until(predicate: Callable[[], Awaitable[bool]], timeout: float = 15.0, step: float = 0.01) -> None:
    """Poll ``predicate`` until it holds; fail after ``timeout`` seconds."""
    with trio.fail_after(timeout):
        while not await predicate():
            await trio.sleep(step)


def role_env(settings: Settings, **extra: object) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
    env.update({
        "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
        "REDIS_PREFIX": settings.redis_prefix, "API_PORT": str(settings.api_port),
        "MEDIA_PORT": str(settings.media_port), "BIND_HOST": settings.bind_host,
        "SHUTDOWN_GRACE": str(settings.shutdown_grace), "DATA_DIR": str(settings.data_dir),
        "INTERNAL_SECRET": "test-internal-secret", "LOG_LEVEL": "INFO",
    })
    env.update({k: str(v) for k, v in extra.items()})
    return env


def start_role(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A role as a real child process; its output goes to the test's captured fds (shown on failure)."""
    return subprocess.Popen([sys.executable, "-m", "appliance", *args], env=env)

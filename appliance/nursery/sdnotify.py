"""The sd_notify protocol: newline-separated ``KEY=VALUE`` datagrams to ``$NOTIFY_SOCKET``.

Abstract sockets (``@name``) are supported. Without ``$NOTIFY_SOCKET`` every call is a no-op, so a role
runs as a plain foreground process. ``WATCHDOG_USEC`` (and ``WATCHDOG_PID``, when it names us) set the
interval at which :meth:`Notifier.watchdog` must be called: half the timeout, as systemd recommends.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


def socket_address(name: str) -> str:
    return "\0" + name[1:] if name.startswith("@") else name


class Notifier:
    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        self.address = socket_address(address) if address else None
        self.watchdog_usec = watchdog_usec
        self._sock: socket.socket | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Notifier:
        usec = environ.get("WATCHDOG_USEC")
        pid = environ.get("WATCHDOG_PID")
        if pid and pid.isdigit() and int(pid) != os.getpid():
            usec = None
        return cls(environ.get("NOTIFY_SOCKET") or None, int(usec) if usec and usec.isdigit() else None)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between WATCHDOG=1 messages, or None when no watchdog is asked for."""
        return self.watchdog_usec / 2_000_000 if self.watchdog_usec else None

    def notify(self, **fields: object) -> None:
        """Send one datagram; a datagram socket send to a local peer never blocks (MSG_DONTWAIT)."""
        if self.address is None:
            return
        message = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(message, socket.MSG_DONTWAIT, self.address)
        except OSError as exc:  # the manager may be restarting; the next beat tries again
            log.warning("sd_notify to %r failed: %s", self.address, exc)

    def ready(self, status: str) -> None:
        self.notify(READY=1, STATUS=status, MAINPID=os.getpid())

    def watchdog(self, status: str | None = None) -> None:
        if status is None:
            self.notify(WATCHDOG=1)
        else:
            self.notify(WATCHDOG=1, STATUS=status)

    def stopping(self, status: str = "stopping") -> None:
        self.notify(STOPPING=1, STATUS=status)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def parse_message(data: bytes) -> dict[str, str]:
    """Fields of one sd_notify datagram (used by the supervisor, which is the children's NOTIFY_SOCKET)."""
    fields: dict[str, str] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value
    return fields

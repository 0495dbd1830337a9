"""What the benchmark scripts share: a free port and waiting for a server to listen."""

from __future__ import annotations

import socket
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, timeout: float = 30, listeners: int = 1) -> None:
    """Until ``port`` accepts connections and (several processes sharing it) ``listeners`` sockets listen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            if _listening(port) >= listeners:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"fewer than {listeners} listeners on {port}")


def _listening(port: int) -> int:
    """How many sockets listen on TCP ``port`` (from /proc/net/tcp; 0A is LISTEN)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        count += sum(1 for line in lines
                     if line.split()[3] == "0A" and int(line.split()[1].rsplit(":", 1)[1], 16) == port)
    return count

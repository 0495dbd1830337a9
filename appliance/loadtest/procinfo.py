"""CPU and memory of a server process, read from /proc (the load test's view of the server under load)."""

from __future__ import annotations

import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def listener_pid(port: int) -> int | None:
    """The pid of the process listening on TCP ``port`` on this host, if we may see it."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A = LISTEN
                inodes.add(fields[9])
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    return int(proc.name)
        except OSError:
            continue
    return None


def cpu_seconds(*pids: int) -> float | None:
    """CPU time (user + system) the processes have used, summed; None once one of them has exited."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        if fields[0] == "Z":  # exited, not yet reaped
            return None
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / TICKS


def rss_bytes(*pids: int) -> int:
    """Resident memory of the processes, summed (a process that has exited counts for nothing)."""
    total = 0
    for pid in pids:
        try:
            lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total

"""Private redis-server and PostgreSQL instances that a fault test or benchmark may kill, pause and restart.

Never the machine's shared servers: each instance lives in its own temporary directory on free ports.
PostgreSQL refuses to run as root, so as root the cluster is made and run as the ``postgres`` user.
SIGSTOP and SIGKILL reach every process of the server at once, as a hung or crashed host would.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.common import free_port, wait_listening


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not candidates:
        raise FileNotFoundError(f"{name} not found on PATH or under /usr/lib/postgresql")
    return candidates[-1]


def _children(pid: int) -> list[int]:
    found = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.split("/")[2]))
    return found


class _Process:
    proc: subprocess.Popen[bytes] | None = None

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the server and every process it forked (PostgreSQL's backends each call
        setsid(), so its process group alone would miss them); the parent first, so it forks no more."""
        if self.proc is not None:
            os.kill(self.proc.pid, signum)
            for child in _children(self.proc.pid):
                try:
                    os.kill(child, signum)
                except ProcessLookupError:
                    pass

    def pause(self) -> None:
        self.signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL, as a crash would: nothing flushed, nothing cleaned up."""
        if self.proc is not None:
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None


class PrivateRedis(_Process):
    """redis-server on a free port with its files in ``directory`` (kept across restarts)."""

    def __init__(self, directory: Path | None = None, *, appendonly: bool = True,
                 appendfsync: str = "everysec") -> None:
        self.directory = Path(directory or tempfile.mkdtemp(prefix="appliance-redis-"))
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.appendonly = appendonly
        self.appendfsync = appendfsync

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [_binary("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--dir", str(self.directory), "--appendonly", "yes" if self.appendonly else "no",
             "--appendfsync", self.appendfsync],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        wait_listening(self.port)
        self._wait_loaded()

    def _wait_loaded(self, timeout: float = 60) -> None:
        """Until PING answers PONG (while it replays its append-only file Redis answers -LOADING)."""
        deadline = time.monotonic() + timeout
        while True:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(64).startswith(b"+PONG"):
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"redis-server on {self.port} still loading after {timeout:g}s")
            time.sleep(0.02)

    def stop(self) -> None:
        """SIGTERM; SIGKILL if it will not go (Redis refuses to exit while writing its first AOF)."""
        if self.proc is not None:
            self.signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()
            self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


class PrivatePostgres(_Process):
    """A throwaway PostgreSQL cluster (initdb, trust auth, fsync off) listening on 127.0.0.1:<free port>."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="appliance-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.user = "postgres"
        self._as: dict[str, str] = {}
        if os.geteuid() == 0:
            self._as = {"user": "postgres", "group": "postgres"}
            entry = pwd.getpwnam("postgres")
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        subprocess.run([_binary("initdb"), "-D", str(self.data), "-U", self.user, "--auth=trust",
                        "-E", "UTF8", "--no-sync"], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, cwd=self.root, **self._as)  # type: ignore[call-overload]

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        self.proc = subprocess.Popen(  # type: ignore[call-overload]
            [_binary("postgres"), "-D", str(self.data), "-p", str(self.port),
             "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.root}",
             "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=100"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, cwd=self.root,
            **self._as,
        )
        wait_listening(self.port)
        self._wait_accepting()

    def _wait_accepting(self, timeout: float = 30) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg.connect(f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres",
                                connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        """A fast shutdown (SIGINT to the postmaster: backends end, the cluster is consistent)."""
        if self.proc is not None:
            self.signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(30)
            self.proc = None

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

"""The fault matrix: under steady load, break one part at a time and count what was lost.

    .venv/bin/python benchmarks/faults.py [--cells all] [--seconds 12] [--rate 20]

A private PostgreSQL cluster and a private redis-server (appendonly yes, everysec; benchmarks/servers.py)
and the appliance as it runs in production: ``appliance up`` (supervisor; api, media, 2 workers,
scheduler). Load, for the whole of each cell: WhatsApp webhook posts (each a new message, ``--rate`` a
second) and jobs enqueued straight into Redis (``diagnostics.stamp``, each pushing to its own list, so a
second run shows up as a duplicate). Each cell injects its fault 2 s in. Then:

- lost: webhooks answered 200 whose message never got stored, plus accepted jobs that never ran;
- doubled: messages stored twice (must be 0; PostgreSQL's unique index) and jobs run again (at-least-once:
  a job whose worker died after its side effect but before its acknowledgement runs again, which is why
  job side effects are idempotent where it matters; the benchmark's job deliberately is not, to count them);
- answers while down: the webhook's non-2xx status codes, ``refused`` for a connection refused or reset
  (the API process itself dead: nothing to answer), ``hang`` for no answer within 10 s;
- recovery: from the end of the fault until /api/health answers 200 and a fresh job has run.
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import trio

from appliance import migrate
from appliance.jobs.queue import JobQueue
from appliance.keys import Keys
from appliance.redis import REDIS_DOWN, open_redis
from benchmarks.common import free_port
from benchmarks.servers import PrivatePostgres, PrivateRedis, _children

SECRET = "fault-matrix-secret"
PREFIX = "appliance:faults:"
ROLES = ("api", "media", "worker", "scheduler")


class Stack:
    """Private PostgreSQL and Redis, and ``appliance up`` on them."""

    def __init__(self) -> None:
        self.pg = PrivatePostgres()
        self.pg.start()
        self.database_url = self.pg.create_database("appliance")
        migrate.upgrade(self.database_url)
        self.redis = PrivateRedis()
        self.redis.start()
        self.api_port = free_port()
        self.api = f"http://127.0.0.1:{self.api_port}"
        self.data_dir = Path(tempfile.mkdtemp(prefix="appliance-faults-"))
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")},
            "DATABASE_URL": self.database_url, "REDIS_URL": self.redis.url, "REDIS_PREFIX": PREFIX,
            "API_PORT": str(self.api_port), "MEDIA_PORT": str(free_port()), "BIND_HOST": "127.0.0.1",
            "INTERNAL_SECRET": SECRET, "TWILIO_AUTH_TOKEN": "fault-matrix-token", "WORKERS": "2",
            "DATA_DIR": str(self.data_dir), "SHUTDOWN_GRACE": "5", "LOG_LEVEL": "WARNING",
        }
        self.tenant = self._make_tenant()
        self.supervisor = subprocess.Popen([sys.executable, "-m", "appliance", "up"], env=self.env,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _make_tenant(self) -> int:
        with psycopg.connect(self.database_url.replace("+psycopg", ""), autocommit=True) as conn:
            row = conn.execute("INSERT INTO businesses (name) VALUES ('fault matrix') RETURNING id").fetchone()
            assert row is not None
            return int(row[0])

    def stored(self) -> collections.Counter[str]:
        with psycopg.connect(self.database_url.replace("+psycopg", ""), autocommit=True) as conn:
            rows = conn.execute("SELECT provider_message_id FROM whatsapp_message WHERE business_id = %s",
                                (self.tenant,)).fetchall()
        return collections.Counter(r[0] for r in rows)

    def role_pid(self, role: str) -> int:
        for pid in _children(self.supervisor.pid):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if role.encode() in argv:
                return pid
        raise LookupError(f"no {role} process under the supervisor")

    def close(self) -> None:
        self.supervisor.send_signal(signal.SIGINT)
        try:
            self.supervisor.wait(30)
        except subprocess.TimeoutExpired:
            self.supervisor.kill()
        self.redis.remove()
        self.pg.remove()


@dataclass
class Outcome:
    accepted_hooks: list[str] = field(default_factory=list)
    accepted_jobs: list[str] = field(default_factory=list)
    answers: collections.Counter[str] = field(default_factory=collections.Counter)
    recovery: float = 0.0


def kill_role(role: str) -> Callable[[Stack], None]:
    def inject(stack: Stack) -> None:
        os.kill(stack.role_pid(role), signal.SIGKILL)

    return inject


def restart_redis(stack: Stack) -> None:
    stack.redis.kill()
    time.sleep(1)  # down for a second (the fault itself, not a wait for anything)
    stack.redis.start()


def restart_postgres(stack: Stack) -> None:
    stack.pg.stop()
    time.sleep(1)
    stack.pg.start()


def pause_postgres(seconds: float) -> Callable[[Stack], None]:
    def inject(stack: Stack) -> None:
        stack.pg.pause()
        time.sleep(seconds)
        stack.pg.resume()

    return inject


CELLS: dict[str, Callable[[Stack], None]] = {
    **{f"SIGKILL {role}": kill_role(role) for role in ROLES},
    "SIGKILL + restart Redis": restart_redis,
    "restart PostgreSQL": restart_postgres,
    "SIGSTOP PostgreSQL 20 s": pause_postgres(20),
}


async def _healthy(stack: Stack, http: httpx.AsyncClient, queue: JobQueue) -> None:
    """Until /api/health is 200 and a job enqueued now has run."""
    while True:
        try:
            if (await http.get(f"{stack.api}/api/health", timeout=5)).status_code == 200:
                probe = await queue.enqueue("diagnostics.ping")
                with trio.move_on_after(10):
                    while (await queue.get(probe) or {}).get("status") != "finished":
                        await trio.sleep(0.1)
                    return
        except (httpx.HTTPError, *REDIS_DOWN):
            pass
        await trio.sleep(0.2)


async def run_cell(stack: Stack, inject: Callable[[Stack], None], seconds: float, rate: float) -> Outcome:
    outcome = Outcome()
    async with open_redis(stack.redis.url) as redis, httpx.AsyncClient() as http:
        queue = JobQueue(redis, Keys(PREFIX))
        await _healthy(stack, http, queue)

        async def post_hook() -> None:
            message_id = uuid.uuid4().hex
            body = {"tenantId": stack.tenant, "payload": {"messages": [{
                "key": {"id": message_id, "remoteJid": "15551230000@s.whatsapp.net", "fromMe": False},
                "messageTimestamp": 1_780_000_000, "message": {"conversation": "load"}}]}}
            try:
                response = await http.post(f"{stack.api}/webhook/whatsapp/incoming", json=body, timeout=10,
                                           headers={"X-Internal-Secret": SECRET})
            except httpx.TimeoutException:
                outcome.answers["hang"] += 1
                return
            except httpx.TransportError:
                outcome.answers["refused"] += 1
                return
            if response.status_code == 200:
                outcome.accepted_hooks.append(message_id)
            else:
                outcome.answers[str(response.status_code)] += 1

        async def enqueue_job() -> None:
            key = f"run:{uuid.uuid4().hex}"
            try:
                with trio.fail_after(10):
                    # Its side effect goes to Redis, itself one of the parts that fail: retried, not dead.
                    await queue.enqueue("diagnostics.stamp", {"key": key}, max_retries=20)
                outcome.accepted_jobs.append(key)
            except (*REDIS_DOWN, trio.TooSlowError):
                outcome.answers["enqueue refused"] += 1

        async def load(nursery: trio.Nursery) -> None:
            deadline = trio.current_time() + seconds
            while trio.current_time() < deadline:
                nursery.start_soon(post_hook)
                nursery.start_soon(enqueue_job)
                await trio.sleep(1 / rate)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(load, nursery)
            await trio.sleep(2)
            await trio.to_thread.run_sync(inject, stack)
            ended = trio.current_time()
            await _healthy(stack, http, queue)
            outcome.recovery = trio.current_time() - ended
    return outcome


async def settle(stack: Stack, outcome: Outcome, timeout: float = 120) -> tuple[int, int, int]:
    """Wait for the accepted work to be done (up to ``timeout``); (lost, messages doubled, jobs re-run)."""
    async with open_redis(stack.redis.url) as redis:
        with trio.move_on_after(timeout):
            while True:
                stored = await trio.to_thread.run_sync(stack.stored)
                runs = [await redis.llen(PREFIX + key) for key in outcome.accepted_jobs]
                if all(stored[m] for m in outcome.accepted_hooks) and all(runs):
                    break
                await trio.sleep(0.5)
    lost = sum(1 for m in outcome.accepted_hooks if not stored[m]) + sum(1 for n in runs if n == 0)
    doubled = sum(stored[m] - 1 for m in outcome.accepted_hooks if stored[m] > 1)
    return lost, doubled, sum(n - 1 for n in runs if n > 1)


def matrix(cells: list[str], seconds: float, rate: float) -> list[dict[str, object]]:
    stack = Stack()
    rows = []
    try:
        for name in cells:
            outcome = trio.run(run_cell, stack, CELLS[name], seconds, rate)
            lost, doubled, reruns = trio.run(settle, stack, outcome)
            rows.append({"cell": name, "accepted": len(outcome.accepted_hooks) + len(outcome.accepted_jobs),
                         "lost": lost, "doubled": doubled, "re-run": reruns,
                         "answers while down": dict(outcome.answers), "recovery s": round(outcome.recovery, 1)})
    finally:
        stack.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cells", default="all", help="comma-separated cell names, or all")
    parser.add_argument("--seconds", type=float, default=12, help="load per cell")
    parser.add_argument("--rate", type=float, default=20, help="webhooks and jobs per second each")
    args = parser.parse_args()
    cells = list(CELLS) if args.cells == "all" else args.cells.split(",")
    rows = matrix(cells, args.seconds, args.rate)
    print("| fault | accepted | lost | messages doubled | jobs re-run | non-2xx while down | healthy again after |")
    print("|---|---:|---:|---:|---:|---|---:|")
    for row in rows:
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(row["answers while down"].items())) or "none"  # type: ignore[attr-defined]
        print(f"| {row['cell']} | {row['accepted']} | {row['lost']} | {row['doubled']} | {row['re-run']} | {answers} | "
              f"{row['recovery s']} s |")


if __name__ == "__main__":
    main()

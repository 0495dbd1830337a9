"""``appliance up`` as a real process tree: READY, restarts after SIGKILL, watchdog kills, drain, burst limit."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import httpx
import pytest
import trio

from appliance.jobs.queue import JobQueue
from appliance.nursery.sdnotify import parse_message
from appliance.nursery.supervisor import expand_roles
from tests.conftest import free_port, make_tenant
from tests.helpers import role_env, wait_until

pytestmark = pytest.mark.slow


class Systemd:
    """Stands in for systemd's notify socket: records what the supervisor tells it."""

    def __init__(self) -> None:
        self.name = f"appliance-test-{uuid.uuid4().hex}"
        self.sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.messages: list[dict[str, str]] = []

    async def listen(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        with self.sock:
            await self.sock.bind("\0" + self.name)
            task_status.started()
            while True:
                self.messages.append(parse_message(await self.sock.recv(4096)))

    async def wait_for(self, key: str, timeout: float = 30) -> dict[str, str]:
        with trio.fail_after(timeout):
            while True:
                for message in self.messages:
                    if message.get(key) == "1":
                        return message
                await trio.sleep(0.02)


def start_up(settings, systemd: Systemd, roles: str, **env: object) -> subprocess.Popen[bytes]:
    environment = role_env(settings, NOTIFY_SOCKET="@" + systemd.name, **env)
    return subprocess.Popen([sys.executable, "-m", "appliance", "up", "--roles", roles], env=environment)


async def worker_pids(queue: JobQueue) -> set[int]:
    return {int(w["pid"]) for w in (await queue.stats())["workers"] if "pid" in w}


async def exit_code(proc: subprocess.Popen[bytes], timeout: float) -> int:
    with trio.fail_after(timeout):
        while proc.poll() is None:
            await trio.sleep(0.02)
    return proc.returncode


def test_roles_expand_to_one_child_per_worker():
    assert expand_roles(["worker", "api"], 3) == ["api", "worker-1", "worker-2", "worker-3"]
    with pytest.raises(ValueError, match="unknown roles"):
        expand_roles(["api", "mailer"], 1)


async def test_ready_then_sigkilled_worker_is_replaced_and_its_jobs_finish(settings, services, nursery):
    systemd = Systemd()
    await nursery.start(systemd.listen)
    queue = JobQueue(services.redis, services.keys)
    up = start_up(settings, systemd, "worker,scheduler", WORKERS=2, JOB_LEASE=2, SUPERVISOR_WATCHDOG=3)
    try:
        ready = await systemd.wait_for("READY")
        assert "worker-1=ok" in ready["STATUS"] and "scheduler=ok" in ready["STATUS"]
        await wait_until(lambda: _count_at_least(worker_pids(queue), 2), timeout=10)
        before = await worker_pids(queue)
        ids = [await queue.enqueue("diagnostics.sleep", {"seconds": 0.5}) for _ in range(8)]
        await wait_until(lambda: _any_running(queue))
        victim = next(iter(before))
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        await wait_until(lambda: _new_pid(queue, before), timeout=10)
        replaced_after = time.monotonic() - killed_at
        await wait_until(lambda: _all_finished(queue, ids), timeout=30)
        assert replaced_after < 5
    finally:
        up.send_signal(signal.SIGTERM)
        assert await exit_code(up, 20) == 0


async def _count_at_least(pids, n: int) -> bool:
    return len(await pids) >= n


async def _any_running(queue: JobQueue) -> bool:
    return (await queue.stats())["queues"]["default"]["running"] > 0


async def _new_pid(queue: JobQueue, before: set[int]) -> bool:
    return bool(await worker_pids(queue) - before)


async def _all_finished(queue: JobQueue, ids: list[str]) -> bool:
    return all([(await queue.get(i))["status"] == "finished" for i in ids])


async def test_hung_worker_is_killed_and_replaced_within_twice_the_watchdog(settings, services, nursery):
    systemd = Systemd()
    await nursery.start(systemd.listen)
    queue = JobQueue(services.redis, services.keys)
    watchdog = 2.0
    up = start_up(settings, systemd, "worker", WORKERS=1, JOB_LEASE=120, SUPERVISOR_WATCHDOG=watchdog)
    try:
        await systemd.wait_for("READY")
        await wait_until(lambda: _count_at_least(worker_pids(queue), 1), timeout=10)
        before = await worker_pids(queue)
        job_id = await queue.enqueue("diagnostics.hang", {"seconds": 60})
        await wait_until(lambda: _status_is(queue, job_id, "running"))
        hung_at = time.monotonic()
        await wait_until(lambda: _new_pid(queue, before), timeout=4 * watchdog + 5)
        replaced_after = time.monotonic() - hung_at
        assert replaced_after < 2 * watchdog + 2.0, replaced_after  # + process start and first beat
        print(f"hang to replacement: {replaced_after:.2f}s (watchdog {watchdog}s)")
    finally:
        up.send_signal(signal.SIGTERM)
        assert await exit_code(up, 20) == 0


async def _status_is(queue: JobQueue, job_id: str, status: str) -> bool:
    return (await queue.get(job_id))["status"] == status


async def test_sigterm_drains_api_request_and_jobs_then_exits_zero(settings, services, nursery):
    systemd = Systemd()
    await nursery.start(systemd.listen)
    queue = JobQueue(services.redis, services.keys)
    port = free_port()
    _, _, token = await make_tenant(services)
    up = start_up(settings, systemd, "api,worker", WORKERS=1, API_PORT=port, SHUTDOWN_GRACE=5,
                  JOB_CONCURRENCY=4)
    try:
        await systemd.wait_for("READY")
        ids = [await queue.enqueue("diagnostics.sleep", {"seconds": s}) for s in (1.0, 1.0, 60)]
        await wait_until(lambda: _running_at_least(queue, 3))
        results: dict[str, httpx.Response] = {}

        async def in_flight() -> None:
            async with httpx.AsyncClient(timeout=30) as http:
                results["wait"] = await http.get(f"http://127.0.0.1:{port}/api/jobs/{ids[0]}?wait=10",
                                                 headers={"Authorization": f"Bearer {token}"})

        async with trio.open_nursery() as requests:
            requests.start_soon(in_flight)
            await wait_until(lambda: _requests_in_progress_at_least(port, 2))  # ours and the /metrics one
            started = time.monotonic()
            up.send_signal(signal.SIGTERM)
        assert results["wait"].status_code == 200 and results["wait"].json()["job"]["status"] == "finished"
        assert await exit_code(up, 15) == 0
        took = time.monotonic() - started
        print(f"SIGTERM to exit: {took:.2f}s")
        assert took < 5 + 2
        statuses = [(await queue.get(i))["status"] for i in ids]
        assert statuses == ["finished", "finished", "queued"]  # the 60s job was handed back, not lost
        assert (await systemd.wait_for("STOPPING"))["STOPPING"] == "1"
    finally:
        up.kill()


async def _requests_in_progress_at_least(port: int, n: int) -> bool:
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    line = next(ln for ln in text.splitlines() if ln.startswith("appliance_http_requests_in_progress "))
    return float(line.split()[1]) >= n


async def _running_at_least(queue: JobQueue, n: int) -> bool:
    return (await queue.stats())["queues"]["default"]["running"] >= n


async def test_restart_burst_limit_ends_in_non_zero_exit(settings, nursery):
    systemd = Systemd()
    await nursery.start(systemd.listen)
    with socket.socket() as taken:  # the API's port is taken: it dies at every start
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        up = start_up(settings, systemd, "api", API_PORT=port, RESTART_BURST=2, RESTART_WINDOW=60)
        try:
            assert await exit_code(up, 30) == 1
        finally:
            up.kill()

"""Our job runner against the peers a Python user would pick, same run, same Redis, one worker process each.

Every system runs the same job: push its start time onto a Redis list (then optionally sleep). Per system:
  1. idle latency: 30 single jobs (--samples), each enqueued after the queue sat idle 0.3 s; enqueue -> job
     start (time.time() before the library's enqueue call -> time.time() first thing in the job); all the
     systems' workers run at once and take turns job by job;
  2. no-op drain: stop the worker, enqueue N jobs, start it, time from the first job's start to the last's;
  3. sleep drain: the same with M jobs that sleep 10 ms;
  4. Redis commands the worker side issued per job during the no-op drain (the job's own LPUSH excluded);
  5. the worker's CPU time (user + system, its child processes included) per job during each drain.

    .venv/bin/python benchmarks/jobs_bench.py [--jobs 5000] [--sleepers 2000] [--samples 30] [--peers ours,...]
    (a peer "ours@/path/to/checkout" runs that checkout's worker beside this one's)

BENCH_CONCURRENCY (default 32, our JOB_CONCURRENCY default) sets every system's jobs at once.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
R = redis.Redis.from_url(REDIS_URL)
PEERS = ["ours", "rq-simple", "rq-fork", "arq", "dramatiq", "taskiq"]
# Jobs at once for every system that has such a setting (ours: JOB_CONCURRENCY, default 32; taskiq:
# --max-async-tasks, default 100; dramatiq: --threads; arq: max_jobs): the same for all, so a rate is a rate.
CONCURRENCY = os.environ.get("BENCH_CONCURRENCY", "32")


class Peer:
    def __init__(self, name: str) -> None:
        # "ours@/path/to/checkout" runs that checkout's worker (a before/after comparison in one run).
        self.name, _, checkout = name.partition("@")
        self.label = name
        self.ns = f"bench{uuid.uuid4().hex[:6]}"
        self.prefix = f"appliance:{self.ns}:" if self.name == "ours" else ""
        self.key = f"{self.prefix}stamps"  # the list the jobs push onto (full Redis key)
        self.env = dict(os.environ, BENCH_PEER=self.name.split("-")[0], BENCH_NS=self.ns, REDIS_URL=REDIS_URL,
                        REDIS_PREFIX=self.prefix or "appliance:unused:", JOB_CONCURRENCY=CONCURRENCY,
                        LOG_LEVEL="ERROR", PYTHONPATH=checkout or str(ROOT))
        self.proc: subprocess.Popen | None = None

    # -- worker ------------------------------------------------------------------------------------------
    def argv(self) -> list[str]:
        venv = Path(sys.executable).parent  # the peers' commands live beside this interpreter
        return {
            "ours": [sys.executable, "-m", "appliance", "worker"],
            "rq-simple": [str(venv / "rq"), "worker", "-w", "rq.worker.SimpleWorker", "--url", REDIS_URL,
                          "-q", self.ns],
            "rq-fork": [str(venv / "rq"), "worker", "--url", REDIS_URL, "-q", self.ns],
            "arq": [str(venv / "arq"), "benchmarks.peers.tasks.ArqSettings"],
            "dramatiq": [str(venv / "dramatiq"), "benchmarks.peers.tasks", "--processes", "1", "--threads",
                         CONCURRENCY],
            "taskiq": [str(venv / "taskiq"), "worker", "benchmarks.peers.tasks:taskiq_broker", "--workers", "1",
                       "--max-async-tasks", CONCURRENCY],
        }[self.name]

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv(), env=self.env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    # -- enqueueing (each through its own client library) -------------------------------------------
    def enqueue(self, count: int, sleep: float = 0.0, suffix: str = "") -> None:
        key, short = self.key + suffix, "stamps" + suffix
        os.environ.update(BENCH_PEER=self.env["BENCH_PEER"], BENCH_NS=self.ns)
        if self.name == "ours":
            import trio

            from appliance.jobs.queue import JobQueue
            from appliance.keys import Keys
            from appliance.redis import open_redis

            async def go() -> None:
                async with open_redis(REDIS_URL) as client:
                    queue = JobQueue(client, Keys(self.prefix))
                    await client.ping()  # connected before the clock starts, as the peers' clients are
                    for _ in range(count):
                        self.sent_at = time.time()
                        await queue.enqueue("diagnostics.stamp", {"key": short, "sleep": sleep})

            trio.run(go)
        elif self.name.startswith("rq"):
            from rq import Queue

            from benchmarks.peers.tasks import stamp

            queue = Queue(self.ns, connection=R)
            for _ in range(count):
                self.sent_at = time.time()
                queue.enqueue(stamp, key, sleep)
        elif self.name == "dramatiq":
            import importlib

            import benchmarks.peers.tasks as tasks

            importlib.reload(tasks)
            for _ in range(count):
                self.sent_at = time.time()
                tasks.dramatiq_stamp.send(key, sleep)
        elif self.name == "taskiq":
            import importlib

            import benchmarks.peers.tasks as tasks

            importlib.reload(tasks)

            async def go() -> None:
                await tasks.taskiq_broker.startup()
                for _ in range(count):
                    self.sent_at = time.time()
                    await tasks.taskiq_stamp.kiq(key, sleep)
                await tasks.taskiq_broker.shutdown()

            asyncio.run(go())
        elif self.name == "arq":
            from arq import create_pool
            from arq.connections import RedisSettings

            async def go() -> None:
                pool = await create_pool(RedisSettings.from_dsn(REDIS_URL), default_queue_name=self.ns)
                for _ in range(count):
                    self.sent_at = time.time()
                    await pool.enqueue_job("arq_stamp", key, sleep, _queue_name=self.ns)
                await pool.aclose()

            asyncio.run(go())

    # -- measuring ---------------------------------------------------------------------------------------
    def wait_stamps(self, n: int, timeout: float = 600) -> list[float]:
        deadline = time.monotonic() + timeout
        while R.llen(self.key) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: {R.llen(self.key)} of {n} jobs ran")
            time.sleep(0.005)
        return sorted(float(v) for v in R.lrange(self.key, 0, -1))

    def drain(self, count: int, sleep: float = 0.0) -> tuple[float, float]:
        """(jobs/s from the first job's start to the last's, the worker's CPU seconds per job meanwhile)."""
        R.delete(self.key)
        self.enqueue(count, sleep)
        self.start()
        assert self.proc is not None
        self.wait_stamps(1)
        cpu, started = cpu_seconds(self.proc.pid), R.llen(self.key)
        stamps = self.wait_stamps(count)
        cpu = cpu_seconds(self.proc.pid) - cpu
        self.stop()
        elapsed = stamps[-1] - stamps[0]
        return count / elapsed if elapsed > 0 else float("inf"), cpu / max(1, count - started)

    def commands_per_job(self, count: int = 300) -> float:
        """Top-level Redis commands the worker side sends per job, by MONITOR (commands a Lua script runs
        inside Redis are not round trips and are left out; so are the job's own LPUSH and our polling). Only
        connections that name this run's keys count: other programs share this Redis."""
        R.delete(self.key)
        self.enqueue(count)
        stamped = 0
        per_client: dict[str, int] = {}
        ours: set[str] = set()
        monitor_conn = redis.Redis.from_url(REDIS_URL)
        with monitor_conn.monitor() as monitor:
            self.start()
            for entry in monitor.listen():  # MONITOR shows a command before it runs: count the stamps
                if entry.get("client_type") == "lua" or entry["command"].upper().startswith(("LLEN", "MONITOR")):
                    continue
                if entry["command"].upper().startswith("LPUSH") and self.key in entry["command"]:
                    stamped += 1
                    if stamped >= count:
                        break
                    continue
                client = f"{entry.get('client_address')}:{entry.get('client_port')}"
                per_client[client] = per_client.get(client, 0) + 1
                if self.ns in entry["command"]:
                    ours.add(client)
        self.stop()
        monitor_conn.close()
        return sum(per_client[client] for client in ours) / count


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its descendants (taskiq's worker is a child), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    used: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry))
            used[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += used.get(current, 0.0)
        todo += children.get(current, [])
    return total


def idle_latencies(peers: list[Peer], samples: int) -> dict[str, list[float]]:
    """Enqueue -> job start with the queue idle 0.3 s before each job. All workers run at once and the
    systems take turns job by job, so a burst of load on this shared machine falls on all of them alike."""
    for peer in peers:
        peer.start()
        peer.enqueue(1)
        peer.wait_stamps(1, timeout=60)  # the worker is up and has run one job
        R.delete(peer.key)
    latencies: dict[str, list[float]] = {peer.label: [] for peer in peers}
    for i in range(samples):
        for peer in peers:
            time.sleep(0.3)
            peer.enqueue(1, suffix=f":{i}")  # sets sent_at just before the library's enqueue call
            _, value = R.blpop([f"{peer.key}:{i}"], timeout=30)
            latencies[peer.label].append(float(value) - peer.sent_at)
    for peer in peers:
        peer.stop()
    return latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--sleepers", type=int, default=2000)
    parser.add_argument("--peers", default=",".join(PEERS))
    parser.add_argument("--samples", type=int, default=30, help="idle start latency samples per system")
    args = parser.parse_args()
    peers = [Peer(name) for name in args.peers.split(",")]
    try:
        latencies = idle_latencies(peers, args.samples)
    finally:
        for peer in peers:
            peer.stop()
    rows = []
    for peer in peers:
        name, latency = peer.label, latencies[peer.label]
        try:
            noop, noop_cpu = peer.drain(args.jobs)
            sleepy, sleepy_cpu = peer.drain(args.sleepers if peer.name != "rq-fork" else args.sleepers // 10, 0.01)
            commands = peer.commands_per_job()
        except Exception as exc:  # one peer failing does not end the comparison
            print(f"{name}: failed: {exc}", file=sys.stderr)
            peer.stop()
            continue
        rows.append((name, noop, sleepy, pct(latency, 0.5) * 1000, pct(latency, 0.99) * 1000, commands,
                     noop_cpu * 1e6, sleepy_cpu * 1e6))
        print(f"{name}: done", file=sys.stderr, flush=True)
    ours = next((r for r in rows if r[0] == "ours"), None)
    best_peer = max((r[1] for r in rows if not r[0].startswith("ours")), default=None)
    print(f"{'system':16} {'no-op jobs/s':>12} {'10ms jobs/s':>12} {'start p50 ms':>12} {'start p99 ms':>12} "
          f"{'cmds/job':>9} {'CPU µs/job: no-op':>17} {'10ms':>5}")
    for name, noop, sleepy, p50, p99, commands, cpu, sleepy_cpu in rows:
        print(f"{name:16} {noop:12.0f} {sleepy:12.0f} {p50:12.2f} {p99:12.2f} {commands:9.2f} {cpu:17.0f} "
              f"{sleepy_cpu:5.0f}")
    if ours and best_peer:
        print(f"\nno-op drain, ours / fastest peer: {ours[1] / best_peer:.2f}x")


if __name__ == "__main__":
    main()

"""The 1,000-message WhatsApp burst (30 % redelivered) through our webhook against the original design
(Flask + RQ under gunicorn), same machine, same load generator, in one run: for each number of server
processes (``--processes``, ours as API_PROCESSES sharing the port, gunicorn as that many workers) and each
number of posts in flight (``--in-flight``: 20 on keep-alive connections; 1,000 = every post connecting and
posting at once, as a reconnecting bridge delivers).

Each server first takes ``--warmup`` posts that are not measured (connections, the tenant lookup, script
loading: the first posts after a start). Ours: ``appliance api`` processes, and ``appliance worker`` started
once each burst is accepted (the baseline runs no worker either, so both figures are accept latency alone);
each burst must end with every unique message stored exactly once. Server CPU per post is read from /proc
(user + system of the server processes during the burst): unlike posts/s it holds under a loaded machine.
"p99 open" is the p99 of the posts sent on a connection already open (each connection's first post also
waits for the connection: at 20 in flight those 20 are 2 % of the burst, enough to be the p99).

    .venv/bin/python benchmarks/webhook_bench.py [--messages 1000] [--duplicates 0.3] \
        [--in-flight 20,1000] [--processes 1,2] [--rounds 1] [--warmup 200]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from appliance.loadtest.procinfo import cpu_seconds  # noqa: E402
from appliance.loadtest.webhooks import burst, post_burst, run_webhooks  # noqa: E402
from appliance.settings import Settings  # noqa: E402
from benchmarks.common import free_port, wait_listening  # noqa: E402

SECRET = "bench-internal-secret"
OURS, FLASK = "appliance (Quart-Trio)", "Flask + RQ"


def pids(procs: list[subprocess.Popen[bytes]]) -> list[int]:
    return [p.pid for p in procs]


def first_business(settings: Settings) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text("SELECT min(id) FROM businesses")).scalar_one())
    finally:
        engine.dispose()


def start_worker(workers: list[subprocess.Popen[bytes]], command: list[str], env: dict[str, str]) -> None:
    workers.append(subprocess.Popen(command, env=env, cwd=ROOT))


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def measured(pids: Callable[[], list[int]], run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``run``'s report plus the server processes' CPU µs per post during it."""
    before = cpu_seconds(*pids())
    report = run()
    report["server_cpu_us_per_post"] = round(1e6 * (cpu_seconds(*pids()) - before) / report["posted"], 1)
    return report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--duplicates", type=float, default=0.3)
    parser.add_argument("--in-flight", default="20,1000", help="posts in flight, with commas")
    parser.add_argument("--processes", default="1", help="server process counts, with commas")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=200, help="posts before each server's first burst")
    args = parser.parse_args()
    depths = [int(d) for d in args.in_flight.split(",")]
    results: list[tuple[int, int, dict[str, Any], dict[str, Any]]] = []
    for processes in (int(p) for p in args.processes.split(",")):
        for _ in range(args.rounds):
            results += run_round(processes, depths, args.messages, args.duplicates, args.warmup)
    print(f"\n{'webhook':22} {'procs':>5} {'in flight':>9} {'p50 ms':>8} {'p99 ms':>8} {'p99 open':>8} {'max ms':>8} "
          f"{'posts/s':>8} {'cpu µs/post':>11} {'non-2xx':>7} {'stored once':>16}")
    for processes, depth, ours, theirs in results:
        for name, r in ((OURS, ours), (FLASK, theirs)):
            once = f"{r['exactly_once']} ({r['stored_rows']}/{r['unique_messages']})" if "stored_rows" in r else "-"
            reused = f"{r['open_connection_p99_ms']:8.1f}" if r["open_connection_p99_ms"] is not None else f"{'-':>8}"
            print(f"{name:22} {processes:5d} {depth:9d} {r['accept_p50_ms']:8.1f} {r['accept_p99_ms']:8.1f} {reused} "
                  f"{r['accept_max_ms']:8.1f} {r['posts_per_s']:8.1f} {r['server_cpu_us_per_post']:11.0f} "
                  f"{r['non_2xx']:7d} {once:>16}")
    print()
    for processes, depth, ours, theirs in results:
        print(f"{processes} process(es), {depth} in flight: posts/s ours / Flask + RQ "
              f"{ours['posts_per_s'] / theirs['posts_per_s']:.2f}x, p99 Flask + RQ / ours "
              f"{theirs['accept_p99_ms'] / ours['accept_p99_ms']:.2f}x, CPU per post Flask + RQ / ours "
              f"{theirs['server_cpu_us_per_post'] / ours['server_cpu_us_per_post']:.2f}x; "
              f"client CPU {ours['client_cpu_pct']:.0f} % / {theirs['client_cpu_pct']:.0f} %")


def run_round(processes: int, depths: list[int], messages: int, duplicates: float, warmup: int,
              ) -> list[tuple[int, int, dict[str, Any], dict[str, Any]]]:
    prefix = f"appliance:bench{uuid.uuid4().hex[:6]}:"
    port, flask_port = free_port(), free_port()
    env = dict(os.environ, API_PORT=str(port), BIND_HOST="127.0.0.1", INTERNAL_SECRET=SECRET, REDIS_PREFIX=prefix,
               LOG_LEVEL="ERROR", JOB_CONCURRENCY="16", API_PROCESSES=str(processes))
    exe = [sys.executable, "-m", "appliance"]  # this tree's appliance (cwd=ROOT), whatever venv runs us
    subprocess.run([*exe, "migrate"], env=env, cwd=ROOT, check=True, capture_output=True)
    subprocess.run([*exe, "user", "create", "--business", f"bench-{prefix}", "--email", f"{prefix[10:-1]}@bench.test",
                    "--password", "bench-password"], env=env, cwd=ROOT, check=True, capture_output=True)
    apis = [subprocess.Popen([*exe, "api"], env=env, cwd=ROOT) for _ in range(processes)]
    flask = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "-w", str(processes), "-k", "gthread",
                              "--threads", "8", "--backlog", "2048", "-b", f"127.0.0.1:{flask_port}",
                              "--log-level", "warning", "benchmarks.baseline_webhook:app"], env=env, cwd=ROOT)
    workers: list[subprocess.Popen[bytes]] = []
    out = []
    try:
        wait_listening(port)
        wait_listening(flask_port)
        settings = Settings(_env_file=None, api_port=port, internal_secret=SECRET, redis_prefix=prefix)
        # First posts after a start pay for connections, the tenant lookup, script loading: not the figure.
        for url, tenant in ((f"http://127.0.0.1:{port}/webhook/whatsapp/incoming", first_business(settings)),
                            (f"http://127.0.0.1:{flask_port}/webhook/whatsapp/incoming", 1)):
            trio.run(post_burst, url, SECRET, tenant, burst(warmup, 0, seed=3)[0])
        for depth in depths:
            # The worker starts once the burst is accepted, as the baseline has none: both are accept alone.
            then_worker = partial(start_worker, workers, [*exe, "worker"], env)
            ours = measured(partial(pids, apis), partial(trio.run, run_webhooks, settings, messages, duplicates,
                                                         None, None, then_worker, depth))
            for worker in workers:
                worker.terminate()
                worker.wait(timeout=60)
            workers.clear()
            batch, _ = burst(messages, duplicates, seed=2)
            theirs = measured(partial(children, flask.pid), partial(
                trio.run, post_burst, f"http://127.0.0.1:{flask_port}/webhook/whatsapp/incoming", SECRET, 1, batch,
                depth))
            print(f"{processes} process(es), {depth} in flight: ours {ours}\n  Flask + RQ {theirs}", flush=True)
            out.append((processes, depth, ours, theirs))
    finally:
        for proc in [*apis, flask, *workers]:
            proc.terminate()
        for proc in [*apis, flask, *workers]:
            proc.wait(timeout=60)
    return out


if __name__ == "__main__":
    main()

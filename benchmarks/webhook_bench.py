"""The 1,000-message WhatsApp burst (30 % redelivered) through our webhook against the original design
(Flask + RQ), one run, same machine, same load generator, 20 requests in flight.

Ours: ``appliance api`` and then ``appliance worker`` as real processes; the worker starts once the burst
is accepted (the baseline runs no worker either, so both figures are accept latency alone), and the burst
must end with every unique message stored exactly once.

    .venv/bin/python benchmarks/webhook_bench.py [--messages 1000] [--duplicates 0.3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import uuid
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from appliance.loadtest.webhooks import burst, post_burst, run_webhooks  # noqa: E402
from appliance.settings import Settings  # noqa: E402
from benchmarks.common import free_port, wait_listening  # noqa: E402

SECRET = "bench-internal-secret"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--duplicates", type=float, default=0.3)
    args = parser.parse_args()
    prefix = f"appliance:bench{uuid.uuid4().hex[:6]}:"
    port, flask_port = free_port(), free_port()
    env = dict(os.environ, API_PORT=str(port), BIND_HOST="127.0.0.1", INTERNAL_SECRET=SECRET, REDIS_PREFIX=prefix,
               LOG_LEVEL="ERROR", JOB_CONCURRENCY="16")
    exe = [sys.executable, "-m", "appliance"]  # this tree's appliance (cwd=ROOT), whatever venv runs us
    subprocess.run([*exe, "migrate"], env=env, cwd=ROOT, check=True, capture_output=True)
    subprocess.run([*exe, "user", "create", "--business", f"bench-{prefix}", "--email", f"{prefix[10:-1]}@bench.test",
                    "--password", "bench-password"], env=env, cwd=ROOT, check=True, capture_output=True)
    procs = [subprocess.Popen([*exe, "api"], env=env, cwd=ROOT),
             subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "-w", "1", "-k", "gthread",
                               "--threads", "8", "-b", f"127.0.0.1:{flask_port}", "--log-level", "warning",
                               "benchmarks.baseline_webhook:app"], env=env, cwd=ROOT)]
    try:
        wait_listening(port)
        wait_listening(flask_port)
        settings = Settings(_env_file=None, api_port=port, internal_secret=SECRET, redis_prefix=prefix)
        # The worker starts once the burst is accepted, as the baseline has none: both figures are accept alone.
        ours = trio.run(run_webhooks, settings, args.messages, args.duplicates, None, None,
                        lambda: procs.append(subprocess.Popen([*exe, "worker"], env=env, cwd=ROOT)))
        messages, _ = burst(args.messages, args.duplicates, seed=2)
        theirs = trio.run(post_burst, f"http://127.0.0.1:{flask_port}/webhook/whatsapp/incoming", SECRET, 1, messages)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)
    print(f"{'webhook':22} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'posts/s':>8} {'non-2xx':>8} {'stored once':>12}")
    for name, r in (("appliance (Quart-Trio)", ours), ("Flask + RQ", theirs)):
        rows = f" ({r['stored_rows']}/{r['unique_messages']})" if "stored_rows" in r else ""
        once = str(r.get("exactly_once", "-")) + rows
        print(f"{name:22} {r['accept_p50_ms']:8.1f} {r['accept_p99_ms']:8.1f} {r['accept_max_ms']:8.1f} "
              f"{r['posts_per_s']:8.1f} {r['non_2xx']:8d} {once:>12}")
    print(f"\np99 ratio (Flask + RQ / ours): {theirs['accept_p99_ms'] / ours['accept_p99_ms']:.2f}x; "
          f"throughput ratio (ours / Flask + RQ): {ours['posts_per_s'] / theirs['posts_per_s']:.2f}x")


if __name__ == "__main__":
    main()

"""Media role against the original design, side by side in one run, with the same Twilio simulator.

Each server is pinned to CPU 0 and the load generator (``appliance loadtest calls``) to CPU 1. For every
call count, each server gets RUNS runs; a point passes when p99 < 50 ms with nothing lost and nobody
disconnected. Prints a table and the largest passing call count of each (all runs must pass).

    .venv/bin/python benchmarks/media_bench.py [--calls 25,50,75,100] [--seconds 5] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import free_port, wait_listening  # noqa: E402

TOKEN = "bench-auth-token"


def start(name: str, port: int) -> subprocess.Popen:
    env = dict(os.environ, TWILIO_AUTH_TOKEN=TOKEN, MEDIA_PORT=str(port), BIND_HOST="127.0.0.1", LOG_LEVEL="ERROR")
    if name == "appliance (hypercorn trio)":
        argv = [str(ROOT / ".venv/bin/appliance"), "media"]
    else:
        argv = [sys.executable, str(ROOT / "benchmarks/baseline_media.py"), str(port),
                "wsproto" if "wsproto" in name else "websockets"]
    proc = subprocess.Popen(["taskset", "-c", "0", *argv], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_listening(port)
    return proc


def load(port: int, calls: int, seconds: float, pid: int) -> dict:
    env = dict(os.environ, TWILIO_AUTH_TOKEN=TOKEN, LOG_LEVEL="WARNING")
    out = subprocess.run(["taskset", "-c", "1", str(ROOT / ".venv/bin/appliance"), "loadtest", "calls",
                          "--calls", str(calls), "--seconds", str(seconds), "--server-pid", str(pid),
                          "--url", f"ws://127.0.0.1:{port}/ws/twilio-media"],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", default="25,50,75,100,150,200")
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--servers", default="appliance (hypercorn trio),uvicorn + websockets,uvicorn + wsproto")
    args = parser.parse_args()
    servers = args.servers.split(",")
    best = {s: 0 for s in servers}
    print(f"{'server':28} {'calls':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'lost':>6} {'disc':>5} "
          f"{'cpu %':>6} {'KB/call':>8}")
    for calls in [int(c) for c in args.calls.split(",")]:
        for name in servers:
            port = free_port()
            proc = start(name, port)  # a fresh server per point: memory per call is not muddied
            try:
                runs = [load(port, calls, args.seconds, proc.pid) for _ in range(args.runs)]
            finally:
                proc.terminate()
                proc.wait(timeout=60)
            passed = all(r["p99_ms"] < 50 and r["frames_lost"] == 0 and r["disconnected"] == 0 for r in runs)
            if passed:
                best[name] = max(best[name], calls)
            for r in runs:
                print(f"{name:28} {calls:5d} {r['p50_ms']:8.1f} {r['p99_ms']:8.1f} {r['max_ms'] or 0:8.1f} "
                      f"{r['frames_lost']:6d} {r['disconnected']:5d} {r['server_cpu_pct'] or 0:6.1f} "
                      f"{r['rss_per_call_kb'] or 0:8.1f}{'' if passed else '  (fails)'}", flush=True)
    print("\nlargest call count with p99 < 50 ms, nothing lost, in every run:")
    for name, calls in best.items():
        print(f"  {name:28} {calls}")


if __name__ == "__main__":
    main()

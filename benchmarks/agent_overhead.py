"""What the AI voice agent costs the media role per frame: ``realtime`` against ``echo``, side by side.

The media role (``appliance media``, pinned to CPU 0) serves N simulated calls (``appliance loadtest
calls``, CPU 1) twice: once with the ``echo`` agent, once with ``realtime`` bridged to the local GA
Realtime fake (``tests/fakes/realtime.py`` in echo mode, CPU 1: each appended frame comes back as an audio
delta, so the caller gets every frame back either way). The media role's CPU seconds over the caller's
frames gives the cost per frame; the difference is the agent's overhead (a JSON event each way, the
WebSocket to the service, and a mark after each delta). Real deltas carry 100 ms or more, so one mark per
20 ms frame is the worst case.

    .venv/bin/python benchmarks/agent_overhead.py [--calls 20] [--seconds 10] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from appliance.loadtest import procinfo  # noqa: E402
from benchmarks.common import free_port, wait_listening  # noqa: E402

TOKEN = "bench-auth-token"
APPLIANCE = [sys.executable, "-m", "appliance"]
ENV = dict(os.environ, PYTHONPATH=str(ROOT))
FAKE = """
import sys, trio
from functools import partial
from trio_websocket import serve_websocket
from tests.fakes.realtime import FakeRealtime
fake = FakeRealtime(echo=True)
trio.run(partial(serve_websocket, fake.handler, "127.0.0.1", int(sys.argv[1]), ssl_context=None,
                 max_message_size=2**20))
"""


def database() -> tuple[str, str]:
    """A database of its own, migrated to head (the media role records each call)."""
    from tests.conftest import create_database

    name = f"appliance_bench_{uuid.uuid4().hex[:8]}"
    url = create_database(name)
    subprocess.run([*APPLIANCE, "migrate"], env=dict(ENV, DATABASE_URL=url), check=True, capture_output=True)
    return name, url


def measure(agent: str, calls: int, seconds: float, realtime_port: int, database_url: str) -> dict:
    port = free_port()
    env = dict(ENV, TWILIO_AUTH_TOKEN=TOKEN, MEDIA_PORT=str(port), BIND_HOST="127.0.0.1",
               LOG_LEVEL=os.environ.get("AGENT_BENCH_LOG_LEVEL", "ERROR"), VOICE_AGENT=agent, DATABASE_URL=database_url,
               REALTIME_URL=f"ws://127.0.0.1:{realtime_port}/v1/realtime?model=gpt-realtime",
               REALTIME_API_KEY="sk-bench", AGENT_SILENCE_TIMEOUT="600")
    log = open(os.environ.get("AGENT_BENCH_LOG", os.devnull), "a")  # closed with the server
    server = subprocess.Popen(["taskset", "-c", "0", *APPLIANCE, "media"], env=env, stdout=log, stderr=log)
    try:
        wait_listening(port)
        cpu_before = procinfo.cpu_seconds(server.pid)
        out = subprocess.run(["taskset", "-c", "1", *APPLIANCE, "loadtest", "calls",
                              "--calls", str(calls), "--seconds", str(seconds), "--server-pid", str(server.pid),
                              "--url", f"ws://127.0.0.1:{port}/ws/twilio-media"],
                             env=dict(ENV, TWILIO_AUTH_TOKEN=TOKEN, LOG_LEVEL="WARNING"),
                             capture_output=True, text=True, check=True, timeout=seconds + 120)
        result = json.loads(out.stdout)
        # Whole calls (connect, stream, hang up, records) over the caller's frames: per-call costs included.
        result["cpu_us_per_frame"] = 1e6 * (procinfo.cpu_seconds(server.pid) - cpu_before) / max(
            1, result["frames_sent"])
        return result
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from tests.conftest import drop_database

    name, url = database()
    realtime_port = free_port()
    fake = subprocess.Popen(["taskset", "-c", "1", sys.executable, "-c", FAKE, str(realtime_port)], cwd=ROOT,
                            env=ENV)
    try:
        wait_listening(realtime_port)
        print(f"{'agent':9} {'calls':>5} {'frames':>7} {'lost':>5} {'p50 ms':>7} {'p99 ms':>7} {'cpu %':>6} "
              f"{'us/frame':>9}")
        per_frame: dict[str, list[float]] = {"echo": [], "realtime": []}
        for _ in range(args.runs):
            for agent in ("echo", "realtime"):
                r = measure(agent, args.calls, args.seconds, realtime_port, url)
                us = r["cpu_us_per_frame"]
                per_frame[agent].append(us)
                print(f"{agent:9} {args.calls:5d} {r['frames_echoed']:7d} {r['frames_lost']:5d} {r['p50_ms']:7.1f} "
                      f"{r['p99_ms']:7.1f} {r['server_cpu_pct']:6.1f} {us:9.1f}", flush=True)
        echo, realtime = (sorted(per_frame[a])[len(per_frame[a]) // 2] for a in ("echo", "realtime"))
        print(f"\nmedian CPU per frame: echo {echo:.1f} us, realtime {realtime:.1f} us: the agent adds "
              f"{realtime - echo:.1f} us a frame ({realtime / echo:.2f}x)")
    finally:
        fake.terminate()
        fake.wait(timeout=30)
        drop_database(name)


if __name__ == "__main__":
    main()

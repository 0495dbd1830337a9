"""Media role against the original design, side by side in one run, with the same Twilio simulator.

Each server is pinned to CPU 0 and the load generator (``appliance loadtest calls``) to CPU 1. For every
call count, each server gets RUNS runs, the servers taking turns run by run (so both see the same noise from
whatever else the machine does); a point passes when p99 < 50 ms with nothing lost and nobody disconnected
in every run. Then each server is run at twice its largest passing load (the overload point: it passes
when no call is disconnected or cut and p99 < 250 ms). Prints every run, the calls per core of each server,
the CPU µs per echoed frame (server CPU time / frames echoed) and the ratios ours / uvicorn + websockets.
A simulator near 100 % of its core makes the server's figures lower bounds (marked "sim-bound").

First, the CPU cost per echoed frame in a closed loop (``benchmarks/media_cost.py``: each call sends a frame
and waits for its echo), which other load on the machine does not bend: COST_ROUNDS rounds, the servers
taking turns, median and ratio printed. The open-loop call counts above need the two cores to themselves.

``--processes N`` adds the multi-process run: ours with MEDIA_PROCESSES=N (N processes on one port),
everything unpinned, against one process at the same loads.

    PYTHONPATH=. .venv/bin/python benchmarks/media_bench.py [--calls 50,100,150,200,300] [--seconds 5] [--runs 3]
    PYTHONPATH=. .venv/bin/python benchmarks/media_bench.py --calls 100,200 --processes 2 --servers ours
    PYTHONPATH=. .venv/bin/python benchmarks/media_bench.py --calls "" --cost-rounds 5   # the CPU cost only
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
OURS, PEER, WSPROTO = "ours (hypercorn trio)", "uvicorn + websockets", "uvicorn + wsproto"
ALIASES = {"ours": OURS, "websockets": PEER, "wsproto": WSPROTO}
SIM_BOUND = 90.0  # simulator CPU % above which it, not the server, may be the limit


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               TWILIO_AUTH_TOKEN=TOKEN, BIND_HOST="127.0.0.1", LOG_LEVEL="ERROR")
    return env | extra


def start(name: str, port: int, processes: int = 0) -> list[subprocess.Popen]:
    """The server's processes; ``processes`` > 0: that many of ours sharing the port, unpinned."""
    pin = [] if processes else ["taskset", "-c", "0"]
    if name == OURS:
        argv = [*pin, sys.executable, "-m", "appliance", "media"]
        env = _env(MEDIA_PORT=str(port), MEDIA_PROCESSES=str(max(1, processes)))
        procs = [subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for _ in range(max(1, processes))]
        wait_listening(port, listeners=len(procs))  # every process, so the kernel spreads calls over all
    else:
        argv = [*pin, sys.executable, str(ROOT / "benchmarks/baseline_media.py"), str(port),
                "wsproto" if name == WSPROTO else "websockets"]
        procs = [subprocess.Popen(argv, env=_env(), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    wait_listening(port)
    return procs


def load(port: int, calls: int, seconds: float, pids: list[int], pinned: bool = True) -> dict:
    pin = ["taskset", "-c", "1"] if pinned else []
    out = subprocess.run([*pin, sys.executable, "-m", "appliance", "loadtest", "calls",
                          "--calls", str(calls), "--seconds", str(seconds),
                          "--server-pid", ",".join(str(p) for p in pids),
                          "--url", f"ws://127.0.0.1:{port}/ws/twilio-media"],
                         env=_env(LOG_LEVEL="WARNING"), cwd=ROOT, capture_output=True, text=True, check=True,
                         timeout=seconds + 60)
    return json.loads(out.stdout)


def passes(r: dict) -> bool:
    return r["p99_ms"] < 50 and r["frames_lost"] == 0 and r["disconnected"] == 0 and r["cut"] == 0


def holds_overload(r: dict) -> bool:
    return r["disconnected"] == 0 and r["cut"] == 0 and r["p99_ms"] < 250


def row(label: str, calls: int, r: dict, verdict: str) -> None:
    sim = "  sim-bound" if r["client_cpu_pct"] > SIM_BOUND else ""
    print(f"{label:28} {calls:5d} {r['p50_ms']:8.1f} {r['p99_ms']:8.1f} {r['frames_lost']:6d} "
          f"{r['disconnected'] + r['failed_to_connect']:5d} {r['server_cpu_pct'] or 0:6.1f} "
          f"{r['server_cpu_us_per_frame'] or 0:7.1f} {r['rss_per_call_kb'] or 0:8.1f} "
          f"{r['client_cpu_pct']:6.1f}  {verdict}{sim}", flush=True)
    if r.get("disconnect_reasons"):
        print(f"{'':28} disconnected: {r['disconnect_reasons']}", flush=True)


def measure(names: list[str], calls: int, args: argparse.Namespace, processes: int = 0) -> dict[str, list]:
    """RUNS runs of each server at ``calls``, the servers taking turns; a fresh server per point."""
    servers = {}
    for name in names:
        port = free_port()
        servers[name] = (port, start(name, port, processes))
    runs: dict[str, list] = {name: [] for name in names}
    try:
        for _ in range(args.runs):
            for name, (port, procs) in servers.items():
                runs[name].append(load(port, calls, args.seconds, [p.pid for p in procs], pinned=not processes))
    finally:
        for _, procs in servers.values():
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=60)
    return runs


def measure_cost(names: list[str], rounds: int) -> None:
    """Closed-loop CPU µs per echoed frame, the servers taking turns, a fresh server each round."""
    found: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(rounds):
        for name in names:
            port = free_port()
            procs = start(name, port)
            try:
                out = subprocess.run(["taskset", "-c", "1", sys.executable, str(ROOT / "benchmarks/media_cost.py"),
                                      f"ws://127.0.0.1:{port}/ws/twilio-media", str(procs[0].pid)],
                                     env=_env(), cwd=ROOT, capture_output=True, text=True, check=True, timeout=900)
            finally:
                for proc in procs:
                    proc.terminate()
                    proc.wait(timeout=60)
            found[name].append(json.loads(out.stdout)["us_per_frame"])
    print("CPU µs per echoed frame, closed loop (20 calls x 1000 frames; every round):")
    medians = {}
    for name, values in found.items():
        medians[name] = sorted(values)[len(values) // 2]
        print(f"  {name:28} median {medians[name]:7.1f}   runs {', '.join(f'{v:.0f}' for v in values)}")
    if OURS in medians and PEER in medians:
        print(f"  ratio ours / {PEER}: {medians[OURS] / medians[PEER]:.2f}x\n", flush=True)


def header() -> None:
    print(f"{'server':28} {'calls':>5} {'p50 ms':>8} {'p99 ms':>8} {'lost':>6} {'disc':>5} {'cpu %':>6} "
          f"{'µs/frm':>7} {'KB/call':>8} {'sim %':>6}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", default="50,100,150,200,300")
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--servers", default="ours,websockets", help="ours, websockets, wsproto")
    parser.add_argument("--processes", type=int, default=0, help="also run ours with MEDIA_PROCESSES=N")
    parser.add_argument("--no-overload", action="store_true")
    parser.add_argument("--cost-rounds", type=int, default=3, help="closed-loop CPU cost rounds (0: skip)")
    args = parser.parse_args()
    names = [ALIASES.get(s, s) for s in args.servers.split(",")]
    if args.cost_rounds:
        measure_cost(names, args.cost_rounds)
    if not args.calls:
        return
    best = {name: 0 for name in names}
    cost: dict[str, list[float]] = {name: [] for name in names}  # µs per frame at passing points
    header()
    for calls in [int(c) for c in args.calls.split(",")]:
        for name, runs in measure(names, calls, args).items():
            ok = all(passes(r) for r in runs)
            if ok:
                best[name] = max(best[name], calls)
                cost[name] += [r["server_cpu_us_per_frame"] for r in runs]
            for r in runs:
                row(name, calls, r, "pass" if ok else "fails")
    if not args.no_overload:
        print("\noverload: twice the largest passing load (holds: nobody disconnected or cut, p99 < 250 ms)")
        header()
        for name in names:
            if best[name]:
                runs = measure([name], 2 * best[name], args)[name]
                ok = all(holds_overload(r) for r in runs)
                for r in runs:
                    row(name, 2 * best[name], r, "holds" if ok else "breaks")
    print("\ncalls per core (p99 < 50 ms, nothing lost, every run) and CPU µs per echoed frame at those loads:")
    for name in names:
        mean = sum(cost[name]) / len(cost[name]) if cost[name] else float("nan")
        print(f"  {name:28} {best[name]:5d} calls   {mean:7.1f} µs/frame")
    if OURS in names and PEER in names and best[PEER]:
        ours_cost = sum(cost[OURS]) / len(cost[OURS]) if cost[OURS] else float("nan")
        peer_cost = sum(cost[PEER]) / len(cost[PEER]) if cost[PEER] else float("nan")
        print(f"  ratio ours / {PEER}: calls {best[OURS] / best[PEER]:.2f}x, "
              f"CPU per frame {ours_cost / peer_cost:.2f}x")
    if args.processes:
        print(f"\nmulti-process: ours with MEDIA_PROCESSES={args.processes} against one process, all unpinned")
        header()
        largest = {args.processes: 0, 1: 0}
        for calls in [int(c) for c in args.calls.split(",")]:
            for procs in largest:
                runs = measure([OURS], calls, args, processes=procs)[OURS]
                ok = all(passes(r) for r in runs)
                largest[procs] = max(largest[procs], calls) if ok else largest[procs]
                for r in runs:
                    row(f"ours x{procs}", calls, r, "pass" if ok else "fails")
        print(f"  largest passing load: x{args.processes} {largest[args.processes]} calls, x1 {largest[1]} calls"
              + (f" ({largest[args.processes] / largest[1]:.2f}x)" if largest[1] else ""))


if __name__ == "__main__":
    main()

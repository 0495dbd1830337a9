"""Simulated Twilio calls against a media role: N calls, 50 frames a second each, paced by the clock,
through the echo agent. Measures each frame's round trip, frames lost, and the server's CPU and memory.

It ends within ``seconds`` + 15 s whatever the server does: calls get CONNECT_BUDGET to connect (those that
did not are reported as failed to connect and the rest stream anyway), and everything still open at the
hard deadline is cancelled and reported as cut."""

from __future__ import annotations

import base64
import json
import logging
import struct
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import trio
from trio_websocket import ConnectionClosed, HandshakeError

from appliance.loadtest import procinfo
from appliance.media.audio import FRAME_SECONDS
from appliance.media.simulator import media_message, open_twilio_socket, start_message, stop_message
from appliance.media.twilio import make_stream_token, stream_key
from appliance.settings import Settings

log = logging.getLogger(__name__)
DRAIN_WAIT = 1.0
SETTLE = 0.5  # between the last call connecting and the first frame: call setup is not what we time
CONNECT_BUDGET = 10.0  # calls not connected by then are reported as failed; the others stream
OVERRUN = 15.0  # the whole run ends within seconds + OVERRUN
REPORT_MARGIN = 1.0  # of OVERRUN, kept for reading the server's figures and printing


@dataclass
class CallResult:
    sent: int = 0
    echoed: int = 0
    latencies: list[float] = field(default_factory=list)
    connected: bool = False
    disconnected: str | None = None
    finished: bool = False  # streamed every frame and said stop


def frame(seq: int) -> str:
    return base64.b64encode(struct.pack(">I", seq) + b"\xff" * 156).decode()


def frame_seq(payload: str) -> int:
    return struct.unpack(">I", base64.b64decode(payload)[:4])[0]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Schedule:
    """When streaming starts: set once every call is connected, so no call starts late and bursts."""

    go: trio.Event = field(default_factory=trio.Event)
    base: float = 0.0


async def one_call(url: str, key: bytes, index: int, offset: float, seconds: float, result: CallResult,
                   connected: trio.Event, schedule: Schedule) -> None:
    call_sid, stream_sid = f"CAload{uuid.uuid4().hex[:26]}", f"MZload{index}"
    frames = int(seconds / FRAME_SECONDS)
    sent_at = [0.0] * frames
    try:
        async with open_twilio_socket(url) as ws:
            await ws.send_message(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
            await ws.send_message(start_message(call_sid, stream_sid, make_stream_token(key, call_sid)))
            result.connected = True
            connected.set()
            await schedule.go.wait()
            start_at = schedule.base + offset

            async def receive() -> None:
                while result.echoed < frames:
                    message = json.loads(await ws.get_message())
                    if message.get("event") == "media":
                        seq = frame_seq(message["media"]["payload"])
                        result.latencies.append(trio.current_time() - sent_at[seq])
                        result.echoed += 1

            async with trio.open_nursery() as nursery:
                nursery.start_soon(receive)
                for seq in range(frames):
                    await trio.sleep_until(start_at + seq * FRAME_SECONDS)
                    sent_at[seq] = trio.current_time()
                    await ws.send_message(media_message(stream_sid, frame(seq), seq))
                    result.sent += 1
                with trio.move_on_after(DRAIN_WAIT):
                    while result.echoed < result.sent:
                        await trio.sleep(0.01)
                nursery.cancel_scope.cancel()
            await ws.send_message(stop_message(stream_sid))
            result.finished = True
    except* (ConnectionClosed, OSError, HandshakeError) as group:
        exc = group.exceptions[0]
        result.disconnected = f"{type(exc).__name__}: {exc}"
        connected.set()


async def run_calls(settings: Settings, calls: int, seconds: float, url: str | None,
                    server_pids: list[int] | None) -> dict[str, Any]:
    url = url or f"ws://127.0.0.1:{settings.media_port}/ws/twilio-media"
    key = stream_key(settings.secrets("twilio_auth_token")[0])
    port = int(url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
    # /proc reads go through a thread like any other blocking call (the scan of every process's fds is slow).
    found = await trio.to_thread.run_sync(procinfo.listener_pid, port) if not server_pids else None
    pids = server_pids or ([found] if found else [])
    pid = pids[0] if pids else None  # whether we may read the server's figures at all
    rss_idle = await trio.to_thread.run_sync(procinfo.rss_bytes, *pids) if pid else 0
    results = [CallResult() for _ in range(calls)]
    schedule = Schedule()
    peak_rss = 0

    async def sample_rss(done: trio.Event) -> None:
        nonlocal peak_rss
        while not done.is_set() and pid:
            peak_rss = max(peak_rss, await trio.to_thread.run_sync(procinfo.rss_bytes, *pids))
            with trio.move_on_after(0.25):
                await done.wait()

    done = trio.Event()
    hard_deadline = trio.current_time() + seconds + OVERRUN - REPORT_MARGIN
    cpu_before, wall_before, own_before = 0.0, time.monotonic(), time.process_time()
    with trio.CancelScope(deadline=hard_deadline) as hard:
        async with trio.open_nursery() as nursery:
            connected = []
            for i, result in enumerate(results):
                event = trio.Event()
                connected.append(event)
                # Calls are uncorrelated: spread their 20 ms ticks over the interval.
                offset = (i % 50) * FRAME_SECONDS / 50
                nursery.start_soon(one_call, url, key, i, offset, seconds, result, event, schedule)
            with trio.move_on_after(CONNECT_BUDGET):
                for event in connected:  # connect everyone first (the server records each call), then stream
                    await event.wait()
            schedule.base = trio.current_time() + SETTLE
            schedule.go.set()
            cpu_before = await trio.to_thread.run_sync(procinfo.cpu_seconds, *pids) if pid else 0.0
            wall_before, own_before = time.monotonic(), time.process_time()
            nursery.start_soon(sample_rss, done)

            async def finished() -> None:
                await trio.sleep_until(schedule.base + seconds + DRAIN_WAIT)
                done.set()

            nursery.start_soon(finished)
    if hard.cancelled_caught:
        log.warning("calls still open %gs after the start: cut", seconds + OVERRUN - REPORT_MARGIN)
    cpu = (await trio.to_thread.run_sync(procinfo.cpu_seconds, *pids) - cpu_before) if pid else None
    wall = time.monotonic() - wall_before
    own_cpu = time.process_time() - own_before
    latencies = [v for r in results for v in r.latencies]
    sent = sum(r.sent for r in results)
    echoed = sum(r.echoed for r in results)
    return {
        "calls": calls, "seconds": seconds, "url": url,
        "frames_sent": sent, "frames_echoed": echoed, "frames_lost": sent - echoed,
        "loss_pct": round(100 * (sent - echoed) / sent, 3) if sent else None,
        "disconnected": sum(1 for r in results if r.disconnected),
        "failed_to_connect": sum(1 for r in results if not r.connected),
        "cut": sum(1 for r in results if r.connected and not r.finished),
        "p50_ms": round(1000 * percentile(latencies, 0.50), 2),
        "p99_ms": round(1000 * percentile(latencies, 0.99), 2),
        "max_ms": round(1000 * max(latencies), 2) if latencies else None,
        "frames_per_s": round(echoed / seconds, 1),
        "server_pids": pids,
        "server_cpu_pct": round(100 * cpu / wall, 1) if cpu is not None else None,
        # the server's CPU time per frame it echoed (one in, one out)
        "server_cpu_us_per_frame": round(1e6 * cpu / echoed, 1) if cpu is not None and echoed else None,
        # the simulator's own share of its core: near 100 %, the server figures are lower bounds
        "client_cpu_pct": round(100 * own_cpu / wall, 1),
        "server_rss_mb": round(peak_rss / 2**20, 1) if pid else None,
        "rss_per_call_kb": round((peak_rss - rss_idle) / 1024 / calls, 1) if pid and calls else None,
    }

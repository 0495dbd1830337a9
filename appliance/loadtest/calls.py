"""Simulated Twilio calls against a media role: N calls, 50 frames a second each, paced by the clock,
through the echo agent. Measures each frame's round trip, frames lost, and the server's CPU and memory.

It ends within ``seconds`` + 15 s whatever the server does: calls get CONNECT_BUDGET to connect (those that
did not are reported as failed to connect and the rest stream anyway), and everything still open at the
hard deadline is cancelled and reported as cut."""

from __future__ import annotations

import base64
import logging
import struct
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import trio

from appliance.loadtest import procinfo
from appliance.loadtest.ws_client import ClosedError, HandshakeError, WebSocketClient, open_websocket
from appliance.media.audio import FRAME_SECONDS
from appliance.media.simulator import start_message, stop_message
from appliance.media.twilio import make_stream_token, stream_key
from appliance.settings import Settings

log = logging.getLogger(__name__)
DRAIN_WAIT = 1.0
SETTLE = 0.5  # between the last call connecting and the first frame: call setup is not what we time
CONNECT_BUDGET = 10.0  # calls not connected by then are reported as failed; the others stream
OVERRUN = 15.0  # the whole run ends within seconds + OVERRUN
REPORT_MARGIN = 1.0  # of OVERRUN, kept for reading the server's figures and printing
SLOTS = 50  # the calls' 20 ms ticks are spread over this many evenly spaced instants, one pacing task each


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


def echoed_seq(text: str) -> int | None:
    """The frame number of an echoed media message, read from the start of its payload (whatever the JSON
    spacing): the first 8 base64 characters are 6 bytes, the first 4 the number. None if not media."""
    at = text.find('"payload"')
    if at < 0:
        return None
    start = text.index('"', at + 9) + 1
    return struct.unpack(">I", base64.b64decode(text[start:start + 8])[:4])[0]


def media_frames(frames: int) -> list[tuple[str, str]]:
    """Each frame's message, around the call's streamSid: the same JSON as ``simulator.media_message``,
    built once for every call (the load generator must cost less per frame than the server)."""
    return [(f'{{"event": "media", "sequenceNumber": "{seq}", "streamSid": "',
             f'", "media": {{"track": "inbound", "chunk": "{seq}", "timestamp": "{seq * 20}", '
             f'"payload": "{frame(seq)}"}}}}') for seq in range(frames)]


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
    frames: int = 0
    lag: list[float] = field(default_factory=list)  # how late each pacing tick woke, seconds


@dataclass
class LiveCall:
    """A connected call, for its slot's pacing task: it sends the call's frames."""

    ws: WebSocketClient
    stream_sid: str
    result: CallResult
    sent_at: list[float]
    all_sent: trio.Event = field(default_factory=trio.Event)


async def pace(slot: list[LiveCall], start_at: float, schedule: Schedule, messages: list[tuple[str, str]]) -> None:
    """One slot's calls, a frame each every 20 ms from ``start_at``. Each frame's latency counts from
    the moment it was handed to the kernel, and how late the tick woke is recorded (``send_lag``)."""
    clock, lag = trio.current_time, schedule.lag
    for seq in range(schedule.frames):
        due = start_at + seq * FRAME_SECONDS
        await trio.sleep_until(due)
        head, tail = messages[seq]
        lag.append(clock() - due)
        for call in slot:
            if call.ws.closed is None:
                call.sent_at[seq] = clock()
                try:
                    call.ws.send_text(head + call.stream_sid + tail)
                except ClosedError:
                    continue
                call.result.sent += 1
    for call in slot:
        call.all_sent.set()


async def one_call(url: str, key: bytes, index: int, result: CallResult, connected: trio.Event,
                   schedule: Schedule, slot: list[LiveCall]) -> None:
    call_sid, stream_sid = f"CAload{uuid.uuid4().hex[:26]}", f"MZload{index}"
    try:
        async with open_websocket(url) as ws:
            ws.send_text('{"event": "connected", "protocol": "Call", "version": "1.0.0"}')
            ws.send_text(start_message(call_sid, stream_sid, make_stream_token(key, call_sid)))
            result.connected = True
            connected.set()
            await schedule.go.wait()
            call = LiveCall(ws, stream_sid, result, [0.0] * schedule.frames)
            slot.append(call)
            all_echoed = trio.Event()

            async def receive() -> None:
                clock, sent_at, latencies = trio.current_time, call.sent_at, result.latencies
                while result.echoed < schedule.frames:
                    message = await ws.get_message()
                    seq = echoed_seq(message) if type(message) is str else None
                    if seq is not None:
                        latencies.append(clock() - sent_at[seq])
                        result.echoed += 1
                all_echoed.set()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(receive)
                await call.all_sent.wait()
                with trio.move_on_after(DRAIN_WAIT):
                    await all_echoed.wait()
                nursery.cancel_scope.cancel()
            if ws.closed:
                raise ws.closed
            ws.send_text(stop_message(stream_sid))
            result.finished = True
    except* (ClosedError, OSError, HandshakeError, trio.TooSlowError) as group:
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
    schedule = Schedule(frames=int(seconds / FRAME_SECONDS))
    messages = media_frames(schedule.frames)
    slots: list[list[LiveCall]] = [[] for _ in range(min(SLOTS, calls))]
    peak_rss = 0

    async def sample_rss(done: trio.Event) -> None:
        nonlocal peak_rss
        while not done.is_set() and pid:
            peak_rss = max(peak_rss, await trio.to_thread.run_sync(procinfo.rss_bytes, *pids))
            with trio.move_on_after(0.25):
                await done.wait()

    done = trio.Event()
    hard_deadline = trio.current_time() + seconds + OVERRUN - REPORT_MARGIN
    cpu_before: float | None = None
    wall_before, own_before = time.monotonic(), time.process_time()
    with trio.CancelScope(deadline=hard_deadline) as hard:
        async with trio.open_nursery() as nursery:
            connected = []
            for i, result in enumerate(results):
                event = trio.Event()
                connected.append(event)
                nursery.start_soon(one_call, url, key, i, result, event, schedule, slots[i % len(slots)])
            with trio.move_on_after(CONNECT_BUDGET):
                for event in connected:  # connect everyone first (the server records each call), then stream
                    await event.wait()
            schedule.base = trio.current_time() + SETTLE
            schedule.go.set()
            for s, slot in enumerate(slots):
                # Calls are uncorrelated: their 20 ms ticks are spread over the interval.
                nursery.start_soon(pace, slot, schedule.base + s * FRAME_SECONDS / len(slots), schedule,
                                   messages)
            cpu_before = await trio.to_thread.run_sync(procinfo.cpu_seconds, *pids) if pid else None
            wall_before, own_before = time.monotonic(), time.process_time()
            nursery.start_soon(sample_rss, done)

            async def finished() -> None:
                await trio.sleep_until(schedule.base + seconds + DRAIN_WAIT)
                done.set()

            nursery.start_soon(finished)
    if hard.cancelled_caught:
        log.warning("calls still open %gs after the start: cut", seconds + OVERRUN - REPORT_MARGIN)
    # None when the server (or one of its processes) has exited: its figures are then unknown
    cpu_after = await trio.to_thread.run_sync(procinfo.cpu_seconds, *pids) if pid else None
    cpu = cpu_after - cpu_before if cpu_after is not None and cpu_before is not None else None
    wall = time.monotonic() - wall_before
    own_cpu = time.process_time() - own_before
    latencies = [v for r in results for v in r.latencies]
    sent = sum(r.sent for r in results)
    echoed = sum(r.echoed for r in results)
    lag = schedule.lag
    return {
        "calls": calls, "seconds": seconds, "url": url,
        "frames_sent": sent, "frames_echoed": echoed, "frames_lost": sent - echoed,
        "loss_pct": round(100 * (sent - echoed) / sent, 3) if sent else None,
        "disconnected": sum(1 for r in results if r.disconnected),
        "disconnect_reasons": dict(Counter(r.disconnected for r in results if r.disconnected).most_common(3)),
        "failed_to_connect": sum(1 for r in results if not r.connected),
        "cut": sum(1 for r in results if r.connected and not r.finished),
        "p50_ms": round(1000 * percentile(latencies, 0.50), 2),
        "p99_ms": round(1000 * percentile(latencies, 0.99), 2),
        "max_ms": round(1000 * max(latencies), 2) if latencies else None,
        "frames_per_s": round(echoed / seconds, 1),
        "server_pids": pids,
        "server_exited": bool(pid) and cpu_after is None,  # then its CPU figures are unknown (None)
        "server_cpu_pct": round(100 * cpu / wall, 1) if cpu is not None else None,
        # the server's CPU time per frame it echoed (one in, one out)
        "server_cpu_us_per_frame": round(1e6 * cpu / echoed, 1) if cpu is not None and echoed else None,
        # the simulator's own share of its core: near 100 %, the server figures are lower bounds
        "client_cpu_pct": round(100 * own_cpu / wall, 1),
        # the simulator's CPU time per frame echoed (its send, its receive), and how late its pacing woke
        "client_cpu_us_per_frame": round(1e6 * own_cpu / echoed, 1) if echoed else None,
        "send_lag_p99_ms": round(1000 * percentile(lag, 0.99), 2) if lag else None,
        "server_rss_mb": round(peak_rss / 2**20, 1) if pid else None,
        "rss_per_call_kb": round((peak_rss - rss_idle) / 1024 / calls, 1) if pid and calls else None,
    }

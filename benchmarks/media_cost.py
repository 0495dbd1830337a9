"""CPU cost per echoed frame of a media server, measured so that other load on the machine does not bend it.

CALLS simulated Twilio calls each send a media frame and wait for its echo, FRAMES times (closed loop: the
server is never behind, so nothing is shed and every frame is echoed); the figure is the server's CPU time
(user + system, from /proc) over the frames echoed. A starved server only takes longer; its CPU time per
frame stays what it is. Frames carry no timestamp. The clock runs from when every call has had a first
frame echoed (the server has set the call up: its database rows, its agent) to when every call has had its
last (before any hangs up): the steady per-frame cost, not the cost of starting and ending calls.

    python benchmarks/media_cost.py URL SERVER_PID [--calls 20] [--frames 1000]   (prints JSON)
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys

import trio

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from appliance.loadtest import procinfo
from appliance.media.simulator import open_twilio_socket, start_message
from appliance.media.twilio import make_stream_token, stream_key

PAYLOAD = base64.b64encode(b"\xff" * 160).decode()


async def one_call(url: str, key: bytes, index: int, frames: int, ready: trio.Event, go: trio.Event,
                   done: trio.Event, hang_up: trio.Event) -> None:
    async with open_twilio_socket(url) as ws:
        await ws.send_message(start_message(f"CAcost{index}", f"MZ{index}", make_stream_token(key, f"CAcost{index}")))
        message = json.dumps({"event": "media", "sequenceNumber": "1", "streamSid": f"MZ{index}",
                              "media": {"track": "inbound", "chunk": "1", "payload": PAYLOAD}})
        await ws.send_message(message)
        await ws.get_message()  # the call is set up and echoing
        ready.set()
        await go.wait()
        for _ in range(frames):
            await ws.send_message(message)
            await ws.get_message()
        done.set()
        await hang_up.wait()


async def measure(url: str, pid: int, calls: int, frames: int) -> dict[str, float]:
    key = stream_key(os.environ["TWILIO_AUTH_TOKEN"])
    go, hang_up = trio.Event(), trio.Event()
    readies, dones = [trio.Event() for _ in range(calls)], [trio.Event() for _ in range(calls)]
    with trio.fail_after(600):
        async with trio.open_nursery() as nursery:
            for i in range(calls):
                nursery.start_soon(one_call, url, key, i, frames, readies[i], go, dones[i], hang_up)
            for event in readies:
                await event.wait()
            cpu_before = procinfo.cpu_seconds(pid)
            go.set()
            for event in dones:
                await event.wait()
            cpu_after = procinfo.cpu_seconds(pid)
            hang_up.set()
    return {"us_per_frame": round(1e6 * (cpu_after - cpu_before) / (calls * frames), 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("pid", type=int)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--frames", type=int, default=1000)
    args = parser.parse_args()
    print(json.dumps(trio.run(measure, args.url, args.pid, args.calls, args.frames)))


if __name__ == "__main__":
    main()

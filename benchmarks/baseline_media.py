"""The original system's media design, for comparison: uvicorn + websockets, an asyncio.Queue between the
receive loop and the sender, echo agent. Same protocol and stream tokens as ours.

    python benchmarks/baseline_media.py PORT
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import uvicorn

from appliance.media.twilio import stream_key, stream_token_valid

KEY = stream_key(os.environ["TWILIO_AUTH_TOKEN"])


async def app(scope, receive, send):
    if scope["type"] != "websocket":
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
        return
    await receive()
    await send({"type": "websocket.accept"})
    queue: asyncio.Queue = asyncio.Queue(maxsize=600)
    stream_sid = None

    async def sender() -> None:
        while True:
            payload = await queue.get()
            await send({"type": "websocket.send", "text": json.dumps(
                {"event": "media", "streamSid": stream_sid, "media": {"payload": payload}})})

    task = None
    try:
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                break
            event = json.loads(message["text"])
            kind = event.get("event")
            if kind == "start":
                start = event["start"]
                if not stream_token_valid(KEY, start["callSid"], start["customParameters"].get("token", "")):
                    await send({"type": "websocket.close", "code": 1008})
                    return
                stream_sid = event["streamSid"]
                task = asyncio.create_task(sender())
            elif kind == "media" and task is not None:
                await queue.put(event["media"]["payload"])
            elif kind == "stop":
                break
    finally:
        if task:
            task.cancel()


if __name__ == "__main__":
    ws = sys.argv[2] if len(sys.argv) > 2 else "websockets"
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", ws=ws)

"""A local stand-in for the Baileys bridge's HTTP API on a real Hypercorn socket: records every send and
fails the first ``fail_first`` of them with a 503; serves inbound media at
``GET /media/<tenant>/<message id>`` from ``media`` (404 for anything it does not hold), as a bridge does
with Baileys' ``downloadMediaMessage``."""

from __future__ import annotations

import json
import logging
from functools import partial
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve


class FakeBridge:
    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.requests: list[dict[str, Any]] = []  # every request, failed ones included
        self.sent: list[dict[str, Any]] = []
        self.url = ""
        self.media: dict[tuple[str, str], tuple[str, bytes]] = {}  # (tenant, message id) -> (type, bytes)
        self.media_requests: list[str] = []

    async def app(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["method"] == "GET" and scope["path"].startswith("/media/"):
            await self._media(scope["path"], send)
            return
        payload = json.loads(body or b"{}")
        self.requests.append(payload)
        if scope["path"] != "/send":
            status, answer = 404, {"error": "no route"}
        elif len(self.requests) <= self.fail_first:
            status, answer = 503, {"error": "whatsapp socket reconnecting"}
        else:
            self.sent.append(payload)
            status, answer = 200, {"id": f"BRIDGE{len(self.sent):08d}"}
        data = json.dumps(answer).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": data})

    async def _media(self, path: str, send) -> None:
        self.media_requests.append(path)
        parts = path.split("/")
        found = self.media.get((parts[2], parts[3])) if len(parts) == 4 else None
        content_type, data = found or ("application/json", b'{"error": "no such media"}')
        await send({"type": "http.response.start", "status": 200 if found else 404,
                    "headers": [(b"content-type", content_type.encode()),
                                (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data})

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        config = Config()
        config.bind = ["127.0.0.1:0"]
        config.accesslog = None
        config.errorlog = logging.getLogger("fake_bridge")
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(partial(serve, self.app, config))
            self.url = binds[0]
            task_status.started(self.url)

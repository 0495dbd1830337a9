"""What the HTTP fakes share: a Hypercorn socket on port 0, reading a body, answering JSON, and waiting
for something to have happened."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def serve_asgi(app: Any, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve ``app`` on 127.0.0.1 on a free port; ``started`` with its base URL."""
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = logging.getLogger("fake_http")
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(serve, app, config))
        task_status.started(binds[0])


async def lifespan(receive: Receive, send: Send) -> None:
    while (await receive())["type"] == "lifespan.startup":
        await send({"type": "lifespan.startup.complete"})
    await send({"type": "lifespan.shutdown.complete"})


async def read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def respond(send: Send, status: int, body: str | bytes, content_type: str = "application/json") -> None:
    data = body.encode() if isinstance(body, str) else body
    headers = [(b"content-type", content_type.encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


async def respond_json(send: Send, status: int, payload: Any) -> None:
    await respond(send, status, json.dumps(payload))


class Changes:
    """Lets a test wait until a fake has seen something, with no polling."""

    def __init__(self) -> None:
        self._event = trio.Event()

    def notify(self) -> None:
        self._event.set()

    async def until(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            if self._event.is_set():
                self._event = trio.Event()
            await self._event.wait()


class HttpFake:
    """A fake whose ``app`` is served on its own port by ``run`` (start it with ``nursery.start``)."""

    url = ""

    async def app(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        raise NotImplementedError

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self.url = await nursery.start(partial(serve_asgi, self.app))
            task_status.started(self.url)

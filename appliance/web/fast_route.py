"""A POST route answered by a plain ASGI handler in front of Quart, for a hot route that needs none of
Quart's per-request machinery (request context, before/after hooks, sessions, werkzeug request objects):
the WhatsApp webhook, whose burst spent most of its CPU there (docs: webhook figures).

What the route keeps from the app: the error shape and statuses of ``web/errors.py``; the size limit (413
with ``Connection: close``, never reading past it); a body the handler did not read is drained before the
answer (or the connection closed when it is over the limit), as ``web/inputs.py`` does; the security
headers; the request metrics; and its Quart rule, so ``/api/openapi.json`` still documents it and a request
the fast path does not take (another method, a query string) is still answered by Quart.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, HTTPScope, Scope
from quart import Quart

from appliance.web.errors import ApiError, known_error, log_error, too_large_message
from appliance.web.health import IN_PROGRESS, LATENCY, REQUESTS

ReadBody = Callable[[], Awaitable[bytes]]
Handler = Callable[[Mapping[str, str], ReadBody], Awaitable[dict[str, Any]]]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]


class _Disconnected(Exception):
    pass


class _Body:
    """The request body, read at most once and never past ``limit`` bytes."""

    def __init__(self, receive: Receive, limit: int, declared: str | None) -> None:
        self.receive, self.limit = receive, limit
        self.declared = int(declared) if declared and declared.isdigit() else None
        self.complete = False
        self.too_large = False

    async def read(self) -> bytes:
        if self.declared is not None and self.declared > self.limit:
            self.too_large = True
        chunks: list[bytes] = []
        size = 0
        while not self.too_large and not self.complete:
            message = await self.receive()
            if message["type"] != "http.request":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            self.too_large = size > self.limit
            chunks.append(chunk)
            self.complete = not message.get("more_body", False)
        if self.too_large:
            raise ApiError(413, too_large_message(self.limit), headers={"Connection": "close"})
        return b"".join(chunks)

    async def drain(self) -> bool:
        """Consume what the handler left unread; False if the connection must close instead."""
        if not self.complete and not self.too_large:
            try:
                await self.read()
            except ApiError:
                pass
        return not self.too_large


def install_fast_route(app: Quart, path: str, handler: Handler, security_headers: Mapping[str, str]) -> None:
    """Answer ``POST path`` (no query string) with ``handler``, which gets the request headers (lower-case
    names) and a function reading the body, and returns the JSON answer or raises as a view would."""
    limit = int(app.config["MAX_CONTENT_LENGTH"])
    secure = [(k.lower().encode(), v.encode()) for k, v in security_headers.items()]
    latency = LATENCY.labels("POST", path)
    inner = app.asgi_app

    async def respond(send: Send, status: int, answer: dict[str, Any], extra: Mapping[str, str]) -> None:
        body = orjson.dumps(answer)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *secure,
                   *((k.lower().encode(), v.encode()) for k, v in extra.items())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def route(scope: HTTPScope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        IN_PROGRESS.inc()
        try:
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            body = _Body(receive, limit, headers.get("content-length"))
            extra: dict[str, str] = {}
            try:
                answer, status = await handler(headers, body.read), 200
            except _Disconnected:
                return
            except Exception as exc:  # the error shape for everything, as web/errors.py's handlers give it
                status, message, fields, extra = known_error(exc, limit)
                answer = {"success": False, "error": message, **fields}
                log_error("POST", path, status, message, exc)
            try:
                if not await body.drain():
                    extra = {**extra, "Connection": "close"}
            except _Disconnected:
                return
            await respond(send, status, answer, extra)
            REQUESTS.labels("POST", path, str(status)).inc()
            latency.observe(time.perf_counter() - started)
        finally:
            IN_PROGRESS.dec()

    async def asgi_app(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if scope["type"] == "http" and scope["path"] == path and scope["method"] == "POST" \
                and not scope["query_string"]:
            await route(scope, receive, send)
        else:
            await inner(scope, receive, send)

    app.asgi_app = asgi_app  # type: ignore[method-assign]  # Quart's documented way to add ASGI middleware

"""The media role's ASGI application, written against ASGI directly: every media frame crosses it, so it
carries no framework between Hypercorn and the session (the per-frame cost is what limits calls a core).

    POST /webhook/twilio/voice    signed by Twilio; answers <Connect><Stream> with a per-call token
    POST /webhook/twilio/status   signed by Twilio; moves the call row
    WS   /ws/twilio-media         one CallSession per socket
    GET  /health, /metrics
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, parse_qsl

import trio
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from appliance.calls import store as calls
from appliance.media import metrics
from appliance.media.agents import AgentFactory, make_agent, resolve_agents
from appliance.media.session import (
    CLOSE_NORMAL,
    CLOSE_POLICY,
    CLOSE_TRY_LATER,
    CallInfo,
    CallSession,
    CallStats,
    TransportGone,
)
from appliance.media.twilio import (
    connect_stream_twiml,
    make_stream_token,
    signature_valid,
    stream_key,
    stream_token_valid,
)
from appliance.services import Services
from appliance.settings import SettingMissingError

log = logging.getLogger(__name__)
MAX_WEBHOOK_BODY = 64 * 1024
STREAM_PATH = "/ws/twilio-media"
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class AsgiSocket:
    """The session's view of an accepted ASGI WebSocket."""

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive, self._send = receive, send
        # Hypercorn's trio worker hands us its queue's bound receive: take what is queued without a round
        # trip through the scheduler, wait only when the queue is empty.
        channel = getattr(receive, "__self__", None)
        self._channel = channel if isinstance(channel, trio.MemoryReceiveChannel) else None
        self._receive_nowait = self._channel.receive_nowait if self._channel is not None else None

    async def receive(self) -> str | bytes | None:
        if self._receive_nowait is None:
            message = await self._receive()
        else:
            try:
                message = self._receive_nowait()
            except trio.WouldBlock:
                message = await self._receive()
        if message["type"] == "websocket.receive":
            text = message.get("text")
            return text if text is not None else message.get("bytes") or b""
        return None

    def backlog(self) -> bool:
        """Whether Hypercorn has already queued another message for us (unknown: assume so)."""
        return self._channel is None or self._channel.statistics().current_buffer_used > 0

    async def send(self, text: str) -> None:
        try:
            await self._send({"type": "websocket.send", "text": text})
        except Exception as exc:  # Hypercorn raises several kinds once the peer has gone
            raise TransportGone from exc

    async def close(self, code: int, reason: str) -> None:
        try:
            await self._send({"type": "websocket.close", "code": code, "reason": reason})
        except Exception:  # already closed
            pass


class DbRecorder:
    """Call rows follow the stream; a database hiccup is logged, never allowed to drop the call."""

    def __init__(self, services: Services) -> None:
        self.db = services.db

    async def started(self, call: CallInfo) -> None:
        await self._write(calls.stream_started, call.call_sid, call.stream_sid)

    async def ended(self, call: CallInfo, stats: CallStats, reason: str) -> None:
        await self._write(calls.stream_ended, call.call_sid, stats.frames_in, stats.frames_out,
                          stats.frames_dropped, reason)

    async def _write(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            with trio.fail_after(5):
                await self.db.run(fn, *args)
        except Exception as exc:
            log.warning("call %s: could not record %s: %s", args[0], fn.__name__, exc)


class MediaApp:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings
        self.recorder = DbRecorder(services)
        self.agents: dict[str, AgentFactory] = resolve_agents(self.settings.voice_agents)
        self.live: set[CallSession] = set()
        self.accepting = True
        self._calls_changed = trio.Event()

    # -- ASGI --------------------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = (scope["method"], scope["path"])
        try:
            if route == ("GET", "/health"):
                status = 503 if not self.accepting else 200
                body = json.dumps({"status": "ok" if self.accepting else "draining", "calls": len(self.live)})
                await _respond(send, status, body.encode(), "application/json")
            elif route == ("GET", "/metrics"):
                await _respond(send, 200, generate_latest(), CONTENT_TYPE_LATEST)
            elif route == ("POST", "/webhook/twilio/voice"):
                await _respond(send, 200, (await self._voice(scope, receive)).encode(), "text/xml")
            elif route == ("POST", "/webhook/twilio/status"):
                await self._status(scope, receive)
                await _respond(send, 204, b"", "text/plain")
            elif scope["path"] in ("/webhook/twilio/voice", "/webhook/twilio/status", "/health", "/metrics"):
                raise HttpError(405, f"{scope['method']} not allowed here")
            else:
                raise HttpError(404, f"no route {scope['path']}")
        except HttpError as exc:
            await _respond(send, exc.status, json.dumps({"error": exc.message}).encode(), "application/json")

    # -- webhooks ------------------------------------------------------------------------------------------
    async def _signed_form(self, scope: Scope, receive: Receive, route: str) -> dict[str, str]:
        try:
            auth_tokens = self.settings.secrets("twilio_auth_token")  # old and new while it is rotated
        except SettingMissingError as exc:
            log.error("%s refused: %s", route, exc)
            raise HttpError(503, str(exc)) from None
        body = await _read_body(receive)
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        signature = dict(scope["headers"]).get(b"x-twilio-signature", b"").decode("latin-1")
        url = self._public_url(scope)
        if not any([signature_valid(token, url, pairs, signature) for token in auth_tokens]):
            metrics.WEBHOOKS.labels(route, "bad_signature").inc()
            log.warning("%s: bad or missing X-Twilio-Signature; 403", route)
            raise HttpError(403, "X-Twilio-Signature does not match this request")
        form = dict(pairs)
        if not form.get("CallSid"):
            raise HttpError(400, "CallSid is missing")
        return form

    async def _voice(self, scope: Scope, receive: Receive) -> str:
        form = await self._signed_form(scope, receive, "voice")
        if not self.accepting:
            raise HttpError(503, "media role is shutting down")
        query = parse_qs(scope.get("query_string", b"").decode())
        requested = query.get("business", [None])[0]
        if requested is not None and not requested.isdigit():
            raise HttpError(400, "business must be a business id")
        business_id = await self.services.db.run(calls.business_for_call, int(requested) if requested else None)
        if business_id is None:
            raise HttpError(400, "business: no such business (add ?business=<id> to the voice webhook URL)")
        await self.services.db.run(calls.record_incoming, business_id, form["CallSid"], form.get("From"),
                                   form.get("To"))
        metrics.WEBHOOKS.labels("voice", "ok").inc()
        token = make_stream_token(stream_key(self.settings.secrets("twilio_auth_token")[0]), form["CallSid"])
        base = self._public_url(scope, path="")
        stream_url = "wss://" + base.split("://", 1)[1] if base.startswith("https://") else \
            "ws://" + base.split("://", 1)[1]
        return connect_stream_twiml(stream_url + STREAM_PATH, token)

    async def _status(self, scope: Scope, receive: Receive) -> None:
        form = await self._signed_form(scope, receive, "status")
        status = form.get("CallStatus", "")
        if not status:
            raise HttpError(400, "CallStatus is missing")
        duration = form.get("CallDuration")
        known = await self.services.db.run(calls.apply_status, form["CallSid"], status,
                                           float(duration) if duration and duration.isdigit() else None)
        metrics.WEBHOOKS.labels("status", "ok" if known else "unknown_call").inc()

    def _public_url(self, scope: Scope, path: str | None = None) -> str:
        """The URL Twilio called: PUBLIC_URL behind a proxy, else what the request itself says."""
        path = scope["path"] if path is None else path
        query = scope.get("query_string", b"").decode()
        suffix = path + (f"?{query}" if query and path else "")
        if self.settings.public_url:
            return self.settings.public_url.rstrip("/") + suffix
        headers = dict(scope["headers"])
        host = headers.get(b"host", b"").decode("latin-1") or "%s:%d" % tuple(scope["server"])
        return f"{scope.get('scheme', 'http')}://{host}{suffix}"

    # -- media streams -------------------------------------------------------------------------------------
    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        if scope["path"] != STREAM_PATH or not self.accepting:
            await send({"type": "websocket.close", "code": CLOSE_TRY_LATER if not self.accepting else CLOSE_POLICY})
            return
        await send({"type": "websocket.accept"})
        try:
            keys = [stream_key(token) for token in self.settings.secrets("twilio_auth_token")]
        except SettingMissingError:
            keys = []  # every start is refused: no token can be valid
        session = CallSession(
            AsgiSocket(receive, send),
            verify=lambda call_sid, token: any(stream_token_valid(key, call_sid, token) for key in keys),
            agent_for=self._agent_for, recorder=self.recorder, idle_timeout=self.settings.media_idle_timeout,
        )
        self.live.add(session)
        try:
            await session.run()
        finally:
            self.live.discard(session)
            self._calls_changed.set()

    async def _agent_for(self, call: CallInfo):
        try:
            with trio.fail_after(5):
                chosen = await self.services.db.run(calls.voice_agent_for, call.call_sid)
        except Exception as exc:  # the caller still gets the default agent
            log.warning("call %s: business's voice agent unknown (%s); using %s", call.call_sid, exc,
                        self.settings.voice_agent)
            chosen = None
        return await make_agent(self.agents, chosen or self.settings.voice_agent, self.services, call)

    async def warm_up(self) -> None:
        """Run a call's queries once, on no call, before the port listens: the ORM configures itself and
        the pool opens a connection now rather than during the first call. A database that is down now
        only leaves that to the first call."""
        try:
            with trio.fail_after(5):
                await self.services.db.run(calls.voice_agent_for, "warm-up")
                await self.services.db.run(calls.stream_started, "warm-up", "")
        except Exception as exc:
            log.warning("database warm-up failed (%s: %s); the first call pays for it", type(exc).__name__, exc)

    async def drain(self, grace: float) -> None:
        """Refuse new calls, let live ones run up to ``grace``, then end each with a final mark and close."""
        self.accepting = False
        if self.live:
            log.info("draining: %d calls live, up to %gs", len(self.live), grace)
        with trio.move_on_after(grace):
            await self._until_no_calls()
        for session in list(self.live):
            session.end("shutdown", CLOSE_NORMAL)
        with trio.move_on_after(10):
            await self._until_no_calls()

    async def _until_no_calls(self) -> None:
        while self.live:
            self._calls_changed = trio.Event()
            await self._calls_changed.wait()


async def _read_body(receive: Receive) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_WEBHOOK_BODY:
            raise HttpError(413, f"request body over {MAX_WEBHOOK_BODY} bytes")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _respond(send: Send, status: int, body: bytes, content_type: str) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})

"""The phone agent: a bridge from one Twilio call to a speech-to-speech service speaking the GA Realtime
protocol over WebSocket.

    caller audio --append--> service        service --output_audio.delta--> play + mark --> Twilio
                                             service --speech_started--> truncate (what was heard) + clear
                                             service --response.done--> usage, tools --> function_call_output

The greeting goes first (``response.create`` right after ``session.update``). Every audio delta is
followed by a mark, so on barge-in the marks Twilio has acknowledged say how much of the assistant's item
the caller actually heard (``audio_end_ms`` of the truncate). Limits: silence (no caller speech and no
agent audio for ``silence_timeout``) and ``max_duration``. A service error (other than a rejected client
event) or a dropped service socket is logged with its code, the caller hears the fallback through a
TwiML redirect, and the call ends.

    ServiceError   the voice service failed the conversation (code: the service's, or ours)
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

import trio
from trio_websocket import ConnectionClosed, HandshakeError, open_websocket_url

from appliance.agent import events
from appliance.agent.config import AgentConfig, Caller
from appliance.agent.record import Conversation
from appliance.agent.telephony import Telephony, TelephonyError
from appliance.agent.tools import Toolbox, realtime_tools

log = logging.getLogger(__name__)
TRANSCRIBE_MODEL = "gpt-4o-mini-transcribe"
CONNECT_TIMEOUT = 10.0
PLAYOUT_MARGIN = 2.0  # seconds beyond the unplayed audio to wait for Twilio's marks before hanging up
RECOVERABLE_ERRORS = ("invalid_request_error",)  # a rejected client event; the session goes on


class ServiceError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class _Over(Exception):
    """The conversation is over for a reason of ours (end_call, transfer, silence)."""


class Connection(Protocol):
    async def send_message(self, message: str) -> None: ...
    async def get_message(self) -> str | bytes: ...


Connect = Callable[[], AbstractAsyncContextManager[Connection]]
Save = Callable[[Conversation], Awaitable[None]]


class Line(Protocol):
    """What the agent needs of a call (the media role's CallSession)."""

    async def audio_in(self) -> str: ...
    def play(self, payload: str) -> None: ...
    def mark(self, name: str) -> None: ...
    def clear(self) -> None: ...
    def end(self, reason: str) -> None: ...
    @property
    def stats(self) -> Any: ...  # .marks_pending: the marks sent that Twilio has not acknowledged yet


class RealtimeAgent:
    def __init__(self, url: str, api_key: str, config: AgentConfig, caller: Caller, toolbox: Toolbox, *,
                 telephony: Telephony | None = None, transcribe_model: str = TRANSCRIBE_MODEL,
                 save: Save | None = None, connect: Connect | None = None) -> None:
        self.url, self.api_key = url, api_key
        self.config, self.caller, self.toolbox = config, caller, toolbox
        self.telephony, self.transcribe_model, self.save = telephony, transcribe_model, save
        self.connect = connect or self._open_websocket
        self.record = Conversation()
        self._item: str | None = None  # the assistant item whose audio is playing
        self._item_marks: list[tuple[str, int]] = []  # (mark name, ms of the item played once Twilio acks it)
        self._item_ms = 0
        self._truncated: set[str] = set()
        self._said: dict[Any, dict[str, Any]] = {}  # assistant item id -> its transcript entry
        self._marks = 0
        self._silence = trio.CancelScope()
        self._started = 0.0

    # -- the call ----------------------------------------------------------------------------------------
    async def run(self, call: Line) -> None:
        self._started = trio.current_time()
        reason, fallback = "agent finished", False
        try:
            with trio.move_on_after(self.config.max_duration) as cap:
                try:
                    await self._converse(call)
                except* _Over as over:
                    reason = str(over.exceptions[0])
                except* ServiceError as failed:
                    error = failed.exceptions[0]
                    assert isinstance(error, ServiceError)
                    log.warning("call %s: voice service error %s; ending with the fallback",
                                self.caller.call_sid, error)
                    reason, fallback = f"voice service error: {error.code}", True
            if cap.cancelled_caught:
                reason = f"max duration {self.config.max_duration:g}s"
            if fallback:
                await self._fallback()
        finally:
            self.record.end_reason = self.record.end_reason or reason
            self.record.tool_calls = self.toolbox.calls
            self.record.lead_id = self.toolbox.lead_id
            if self.save is not None:
                with trio.CancelScope(shield=True), trio.move_on_after(5):
                    await self.save(self.record)
        call.end(reason)
        await trio.sleep_forever()  # the call's cancellation ends us, with the reason given

    async def _converse(self, call: Line) -> None:
        try:
            async with self.connect() as ws:
                tools = realtime_tools(self.config)
                update = events.session_update(self.config, self.caller, tools, self.transcribe_model)
                await self._send(ws, update)
                await self._send(ws, events.greeting(self.config, self.caller))
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._upstream, call, ws)
                    nursery.start_soon(self._watch_silence)
                    await self._downstream(call, ws)
        except* ConnectionClosed as closed:
            raise ServiceError("connection_closed", str(closed.exceptions[0])) from None
        except* (HandshakeError, OSError) as refused:
            raise ServiceError("unreachable", str(refused.exceptions[0])) from None

    @asynccontextmanager
    async def _open_websocket(self) -> AsyncIterator[Connection]:
        headers = [(b"Authorization", f"Bearer {self.api_key}".encode())]
        async with open_websocket_url(self.url, extra_headers=headers, connect_timeout=CONNECT_TIMEOUT,
                                      disconnect_timeout=2) as ws:
            try:
                yield ws
            finally:  # trio-websocket 0.12 leaves the TCP stream open when the server closed first
                with trio.CancelScope(shield=True):
                    await ws._stream.aclose()

    @staticmethod
    async def _send(ws: Connection, event: dict[str, Any]) -> None:
        await ws.send_message(json.dumps(event))

    async def _upstream(self, call: Line, ws: Connection) -> None:
        while True:
            await ws.send_message(events.append(await call.audio_in()))

    async def _watch_silence(self) -> None:
        self._silence.deadline = trio.current_time() + self.config.silence_timeout
        with self._silence:
            await trio.sleep_forever()
        raise _Over(f"silence for {self.config.silence_timeout:g}s")

    def _quiet_from_now(self) -> None:
        if self._silence.deadline != math.inf:
            self._silence.deadline = trio.current_time() + self.config.silence_timeout

    # -- what the service says ---------------------------------------------------------------------------
    async def _downstream(self, call: Line, ws: Connection) -> None:
        while True:
            event = _parse(await ws.get_message())
            kind = event.get("type")
            if kind == "response.output_audio.delta":
                self._play(call, event["item_id"], event["delta"])
            elif kind == "input_audio_buffer.speech_started":
                await self._barge_in(call, ws)
            elif kind == "input_audio_buffer.speech_stopped":
                self._silence.deadline = trio.current_time() + self.config.silence_timeout
            elif kind == "conversation.item.input_audio_transcription.completed":
                self.record.said("caller", event.get("transcript") or "", self._now())
            elif kind == "response.output_audio_transcript.done":
                said = self.record.said("agent", event.get("transcript") or "", self._now())
                self._said[event.get("item_id")] = said
                if event.get("item_id") in self._truncated:
                    said["interrupted"] = True
            elif kind == "response.done":
                await self._response_done(call, ws, event.get("response") or {})
            elif kind == "error":
                self._error(event.get("error") or {})

    def _play(self, call: Line, item_id: str, delta: str) -> None:
        if item_id != self._item:
            self._item, self._item_ms, self._item_marks = item_id, 0, []
        call.play(delta)
        self._item_ms += events.audio_ms(delta)
        self._marks += 1
        name = f"a{self._marks}"
        call.mark(name)
        self._item_marks.append((name, self._item_ms))
        self._quiet_from_now()

    async def _barge_in(self, call: Line, ws: Connection) -> None:
        """The caller talks over the agent: tell the service what they heard, and stop playing the rest."""
        self._silence.deadline = math.inf
        if self._item is not None and self._unplayed(call):
            pending = set(call.stats.marks_pending)
            heard = max((ms for name, ms in self._item_marks if name not in pending), default=0)
            await self._send(ws, events.truncate(self._item, heard))
            self._truncated.add(self._item)
            if self._item in self._said:  # its transcript came before the caller cut in
                self._said[self._item]["interrupted"] = True
        call.clear()
        self._item, self._item_marks = None, []

    def _unplayed(self, call: Line) -> bool:
        pending = set(call.stats.marks_pending)
        return any(name in pending for name, _ in self._item_marks)

    async def _response_done(self, call: Line, ws: Connection, response: dict[str, Any]) -> None:
        self.record.count(response.get("usage"))
        actions = []
        for item in response.get("output") or []:
            if item.get("type") == "function_call":
                result = await self.toolbox.call(item.get("name", ""), item.get("arguments", ""))
                await self._send(ws, events.function_output(item.get("call_id", ""), result.output))
                actions.append(result.action)
        if "transferred" in actions:
            raise _Over(f"transferred to {self.config.transfer_number}")
        if "end" in actions:
            await self._play_out(call)
            raise _Over("agent ended the call")
        if actions:
            await self._send(ws, events.RESPONSE_CREATE)
        self._quiet_from_now()

    async def _play_out(self, call: Line) -> None:
        """Let Twilio play what is queued (its marks come back) before hanging up; bounded."""
        unplayed = self._item_ms / 1000 if self._unplayed(call) else 0.0
        with trio.move_on_after(unplayed + PLAYOUT_MARGIN):
            while self._unplayed(call):  # the session signals no mark ack: a bounded poll
                await trio.sleep(0.05)

    def _error(self, error: dict[str, Any]) -> None:
        kind, code = error.get("type") or "error", error.get("code") or error.get("type") or "unknown"
        if kind in RECOVERABLE_ERRORS:
            log.warning("call %s: the voice service rejected an event: %s (%s)", self.caller.call_sid,
                        error.get("message"), code)
            return
        raise ServiceError(code, str(error.get("message") or error))

    async def _fallback(self) -> None:
        if self.telephony is None or not self.caller.call_sid:
            log.warning("call %s: no Twilio REST credentials, so no spoken fallback", self.caller.call_sid)
            return
        try:
            with trio.fail_after(10):
                await self.telephony.say_and_hang_up(self.caller.call_sid, self.config.fallback_text)
        except (TelephonyError, trio.TooSlowError) as exc:
            log.warning("call %s: fallback not delivered: %s", self.caller.call_sid, exc)

    def _now(self) -> float:
        return trio.current_time() - self._started


def _parse(raw: str | bytes) -> dict[str, Any]:
    try:
        event = json.loads(raw)
    except ValueError:
        log.warning("voice service sent a message that is not JSON; skipped")
        return {}
    return event if isinstance(event, dict) else {}

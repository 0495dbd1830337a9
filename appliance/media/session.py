"""One Twilio Media Stream: the protocol, its deadlines, and audio both ways through bounded channels.

    socket --receive loop--> inbound DropOldest (~10 s) --> agent --> outbound DropOldest (~12 s) --sender--> socket

The receive loop never waits on the agent: a full channel drops its oldest frame (counted). An agent whose
handling of a frame never waits (echo) takes it straight from the receive loop (``listen``), one task switch
less per frame; what it queues while the receive loop handles a message, the receive loop sends itself
(Hypercorn writes in the caller's task), one more switch less: a socket that takes nothing then stops the
reading, which is the backpressure a caller's own audio wants. Audio an agent plays from its own task (a voice
service's answer) goes through the sender task, so the receive loop never waits on it. A frame that arrives
more than STALE_AFTER later than its own timestamp says (the server is behind: overload) is dropped on
arrival, counted, when newer messages already wait behind it: stale audio is shed, never queued (a late frame
with nothing behind it was late on its way here, and it is the newest audio there is). Deadlines are cancel
scopes: no valid ``start`` within START_TIMEOUT closes a ghost session; no message for the idle timeout ends
the call. Bad messages are counted and skipped; MAX_BAD_IN_A_ROW of them close the socket with 1007. Whatever
ends the call, it ends with a final mark and a normal close when the socket still stands, and the recorder
learns the counters and the reason.
"""

from __future__ import annotations

import binascii
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
import trio

from appliance.media import metrics
from appliance.media.audio import DropOldest, frames_for
from appliance.nursery.exception_groups import leaves

log = logging.getLogger(__name__)
START_TIMEOUT = 10.0
INBOUND_SECONDS = 10.0
OUTBOUND_SECONDS = 12.0
MAX_PAYLOAD = 8000  # bytes of audio in one media message (Twilio sends 160)
MAX_MESSAGE = 16 * 1024  # characters of one text message
MAX_BAD_IN_A_ROW = 20
STALE_AFTER = 0.2  # seconds a frame may arrive later than the call's earliest-arriving frames did
CLOCK_DRIFT = 1e-3  # how fast (s/s) Twilio's media clock may fall behind ours without frames turning stale
CLOSE_NORMAL, CLOSE_GOING_AWAY, CLOSE_POLICY, CLOSE_BAD_DATA, CLOSE_TRY_LATER = 1000, 1001, 1008, 1007, 1013


class Transport(Protocol):
    async def receive(self) -> str | bytes | None: ...  # None once the peer has gone
    def backlog(self) -> bool: ...  # another message is already waiting to be received
    async def send(self, text: str) -> None: ...
    async def close(self, code: int, reason: str) -> None: ...


class Recorder(Protocol):
    async def started(self, call: CallInfo) -> None: ...
    async def ended(self, call: CallInfo, stats: CallStats, reason: str) -> None: ...


class TransportGone(Exception):
    """The socket closed under us while sending."""


class CallEnded(Exception):
    """Ends a call from inside with a reason and close code (bad data, agent failure, shutdown)."""

    def __init__(self, reason: str, code: int = CLOSE_NORMAL) -> None:
        super().__init__(reason)
        self.reason, self.code = reason, code


@dataclass
class CallInfo:
    call_sid: str
    stream_sid: str
    parameters: dict[str, str]


@dataclass
class CallStats:
    frames_in: int = 0
    frames_out: int = 0
    dropped_in: int = 0
    dropped_out: int = 0
    cleared: int = 0
    bad_messages: int = 0
    dtmf: list[str] = field(default_factory=list)
    marks_pending: list[str] = field(default_factory=list)

    @property
    def frames_dropped(self) -> int:
        return self.dropped_in + self.dropped_out


class Agent(Protocol):
    async def run(self, call: CallSession) -> None: ...


TokenCheck = Callable[[str, str], bool]  # (call_sid, token) -> valid
AgentFactory = Callable[[CallInfo], Awaitable[Agent]]


class CallSession:
    def __init__(self, transport: Transport, *, verify: TokenCheck, agent_for: AgentFactory,
                 recorder: Recorder, idle_timeout: float) -> None:
        self.transport = transport
        self.verify = verify
        self.agent_for = agent_for
        self.recorder = recorder
        self.idle_timeout = idle_timeout
        self.stats = CallStats()
        self.info: CallInfo | None = None
        self.inbound: DropOldest[str] = DropOldest(frames_for(INBOUND_SECONDS))
        self.outbound: DropOldest[tuple[str, str]] = DropOldest(frames_for(OUTBOUND_SECONDS))
        self._scope = trio.CancelScope()
        self._ending: CallEnded | None = None
        self._open = True
        self._bad_in_a_row = 0
        self._listener: Callable[[str], None] | None = None
        self._heard = 0.0  # when the last message arrived (the idle deadline follows it lazily)
        self._lag_floor = float("inf")  # the smallest arrival time minus media timestamp seen so far
        self._floor_at = 0.0
        self._media_prefix = ""
        self._in_loop = False  # the receive loop is handling a message: it sends what gets queued meanwhile
        self._loop_queued = False
        self._sending = False  # one sender at a time: the receive loop or the sender task
        self._wake_sender = trio.Event()

    # -- what agents use ---------------------------------------------------------------------------------
    async def audio_in(self) -> str:
        """The next inbound frame (base64 mu-law) for the agent."""
        return await self.inbound.get()

    def listen(self, callback: Callable[[str], None]) -> None:
        """Hand each inbound frame to ``callback`` in the receive loop instead of queueing it for
        ``audio_in``: for agents whose handling never waits (it must not block or raise). Frames queued
        before the agent started go to it first."""
        while True:
            try:
                callback(self.inbound.receive_channel.receive_nowait())
            except trio.WouldBlock:
                break
        self._listener = callback

    def play(self, payload: str) -> None:
        """Queue a frame of audio for the caller; the oldest queued frame goes when 12 s are waiting."""
        if not self.outbound.put(("media", payload)):
            metrics.FRAMES.dropped += 1
        self._queued()

    def mark(self, name: str) -> None:
        self.stats.marks_pending.append(name)
        self.outbound.put(("mark", name))
        self._queued()

    def clear(self) -> None:
        """Barge-in: forget queued audio here and tell Twilio to flush what it buffered."""
        self.stats.cleared += self.outbound.flush()
        self.stats.marks_pending.clear()
        self.outbound.put(("clear", ""))
        self._queued()

    def _queued(self) -> None:
        if self._in_loop:
            self._loop_queued = True
        else:
            self._wake_sender.set()

    def end(self, reason: str, code: int = CLOSE_NORMAL) -> None:
        """End the call from outside (shutdown): final mark, normal close."""
        if self._ending is None:
            self._ending = CallEnded(reason, code)
        self._scope.cancel()

    # -- the call ----------------------------------------------------------------------------------------
    async def run(self) -> str:
        """Serve the socket until the call ends; returns the end reason."""
        reason, code = "caller hung up", CLOSE_NORMAL
        try:
            with self._scope:
                with trio.move_on_after(START_TIMEOUT) as ghost:
                    self.info = await self._await_start()
                if ghost.cancelled_caught:
                    metrics.GHOSTS.inc()
                    log.warning("ghost session: no valid start within %gs", START_TIMEOUT)
                    raise CallEnded("no start within 10s", CLOSE_POLICY)
                if self.info is None:
                    return "closed before start"
                await self._serve_call()
        except CallEnded as ended:
            reason, code = ended.reason, ended.code
        except TransportGone:
            reason, code = "socket lost", CLOSE_NORMAL
        if self._ending is not None:
            reason, code = self._ending.reason, self._ending.code
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            await self._finish(reason, code)
        return reason

    async def _await_start(self) -> CallInfo | None:
        while True:
            message = await self._next_message()
            if message is None:
                return None
            event = message.get("event")
            if event == "connected":
                continue
            if event != "start":
                self._bad("before_start")
                continue
            start = message.get("start") or {}
            call_sid, stream_sid = start.get("callSid"), message.get("streamSid") or start.get("streamSid")
            parameters = start.get("customParameters") or {}
            if not isinstance(call_sid, str) or not isinstance(stream_sid, str) or not isinstance(parameters, dict):
                raise CallEnded("start without callSid or streamSid", CLOSE_POLICY)
            if not self.verify(call_sid, str(parameters.get("token", ""))):
                log.warning("call %s: stream token does not match its CallSid; closing", call_sid)
                raise CallEnded("bad stream token", CLOSE_POLICY)
            return CallInfo(call_sid, stream_sid, {str(k): str(v) for k, v in parameters.items()})

    async def _serve_call(self) -> None:
        assert self.info is not None
        metrics.CALLS_ACTIVE.inc()
        try:
            await self.recorder.started(self.info)
            try:
                agent = await self.agent_for(self.info)
            except Exception as exc:  # no agent for this call ends the call, not the process
                log.warning("call %s: no voice agent: %s: %s", self.info.call_sid, type(exc).__name__, exc)
                raise CallEnded(f"agent unavailable: {type(exc).__name__}", CLOSE_NORMAL) from exc
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._sender)
                    nursery.start_soon(self._run_agent, agent)
                    await self._receive_loop()
                    nursery.cancel_scope.cancel()
            except BaseExceptionGroup as group:
                ours, rest = group.split((CallEnded, TransportGone))
                if rest is not None or ours is None:
                    raise
                raise leaves(ours)[0] from None
        finally:
            metrics.CALLS_ACTIVE.dec()

    async def _run_agent(self, agent: Agent) -> None:
        try:
            await agent.run(self)
        except Exception as exc:  # an agent's failure ends its call, never the process
            log.warning("call %s: voice agent failed: %s: %s", self.info and self.info.call_sid,
                        type(exc).__name__, exc)
            raise CallEnded(f"agent failed: {type(exc).__name__}", CLOSE_NORMAL) from exc
        raise CallEnded("agent finished", CLOSE_NORMAL)

    async def _receive_loop(self) -> None:
        self._heard = trio.current_time()
        while True:
            # Moving a deadline per message costs more than the message; it is checked when it fires.
            with trio.CancelScope(deadline=self._heard + self.idle_timeout):
                while True:
                    message = await self._next_message()
                    if message is None:
                        return
                    self._heard = trio.current_time()
                    self._in_loop = True
                    try:
                        if self._on_event(message):
                            return
                    finally:
                        self._in_loop = False
                    if self._loop_queued:
                        self._loop_queued = False
                        if not self._sending:  # else the one sending takes it too
                            await self._send_queued()
            if self._heard + self.idle_timeout <= trio.current_time():
                raise CallEnded(f"idle for {self.idle_timeout:g}s", CLOSE_NORMAL)

    def _on_event(self, message: dict[str, Any]) -> bool:
        """Handle one message during the call; True when Twilio says the stream stopped."""
        event = message.get("event")
        if event == "media":
            media = message.get("media") or {}
            payload = media.get("payload")
            if not isinstance(payload, str) or not _valid_audio(payload):
                self._bad("bad_audio")
                return False
            self.stats.frames_in += 1
            metrics.FRAMES.inbound += 1
            if self._stale(media.get("timestamp")) and self.transport.backlog():
                self.stats.dropped_in += 1
                metrics.FRAMES.dropped += 1
            elif self._listener is not None:
                self._listener(payload)
            elif not self.inbound.put(payload):
                self.stats.dropped_in += 1
                metrics.FRAMES.dropped += 1
        elif event == "mark":
            name = (message.get("mark") or {}).get("name")
            if name in self.stats.marks_pending:
                self.stats.marks_pending.remove(name)
        elif event == "dtmf":
            digit = (message.get("dtmf") or {}).get("digit")
            if isinstance(digit, str):
                self.stats.dtmf.append(digit)
        elif event == "stop":
            return True
        elif event in ("connected", "start"):
            self._bad("repeated_" + str(event))
            return False
        else:
            self._bad("unknown_event")
            return False
        self._bad_in_a_row = 0
        return False

    def _stale(self, timestamp: object) -> bool:
        """Whether this frame arrived STALE_AFTER later than the call's timely frames (Twilio stamps each
        frame with its milliseconds since the stream started). The timely baseline may creep up by
        CLOCK_DRIFT a second, so a sender clock slower than ours never makes a long call's frames stale."""
        if not isinstance(timestamp, str) or not timestamp.isdigit():
            return False
        lag = self._heard - int(timestamp) / 1000
        self._lag_floor = min(lag, self._lag_floor + (self._heard - self._floor_at) * CLOCK_DRIFT)
        self._floor_at = self._heard
        return lag - self._lag_floor > STALE_AFTER

    async def _next_message(self) -> dict[str, Any] | None:
        while True:
            raw = await self.transport.receive()
            if raw is None:
                self._open = False
                return None
            if len(raw) > MAX_MESSAGE:
                self._bad("oversized")
                continue
            try:
                message = orjson.loads(raw)
            except orjson.JSONDecodeError:
                self._bad("malformed_json")
                continue
            if not isinstance(message, dict):
                self._bad("malformed_json")
                continue
            return message

    def _bad(self, kind: str) -> None:
        self.stats.bad_messages += 1
        self._bad_in_a_row += 1
        metrics.BAD_MESSAGES.labels(kind).inc()
        if self._bad_in_a_row == 1:
            log.info("call %s: skipping a bad message (%s)", self.info and self.info.call_sid, kind)
        if self._bad_in_a_row >= MAX_BAD_IN_A_ROW:
            raise CallEnded(f"{MAX_BAD_IN_A_ROW} bad messages in a row (last: {kind})", CLOSE_BAD_DATA)

    # -- sending ---------------------------------------------------------------------------------------
    async def _sender(self) -> None:
        """Sends what agents queue from their own tasks (the receive loop sends what it queued itself)."""
        while True:
            await self._wake_sender.wait()
            self._wake_sender = trio.Event()
            if not self._sending:
                await self._send_queued()

    async def _send_queued(self) -> None:
        """Send everything queued, in order, until the queue is empty (also what others queue meanwhile)."""
        receive_nowait = self.outbound.receive_channel.receive_nowait
        self._sending = True
        try:
            while True:
                try:
                    kind, data = receive_nowait()
                except trio.WouldBlock:
                    return
                await self._send(self._outbound_message(kind, data))
                if kind == "media":
                    self.stats.frames_out += 1
                    metrics.FRAMES.outbound += 1
        finally:
            self._sending = False

    def _outbound_message(self, kind: str, data: str) -> str:
        assert self.info is not None
        if kind == "media":  # payload is checked base64: nothing to escape
            if not self._media_prefix:
                self._media_prefix = '{"event":"media","streamSid":%s,"media":{"payload":"' % (
                    json.dumps(self.info.stream_sid))
            return self._media_prefix + data + '"}}'
        if kind == "mark":
            return json.dumps({"event": "mark", "streamSid": self.info.stream_sid, "mark": {"name": data}})
        return json.dumps({"event": "clear", "streamSid": self.info.stream_sid})

    async def _send(self, text: str) -> None:
        if not self._open:
            raise TransportGone
        try:  # one sender at a time: _send_queued during the call, _finish after it
            await self.transport.send(text)
        except TransportGone:
            self._open = False
            raise

    async def _finish(self, reason: str, code: int) -> None:
        self.stats.dropped_out = self.outbound.dropped
        if self.info is not None and self._open:
            try:
                await self._send(self._outbound_message("mark", "end"))
            except TransportGone:
                pass
        if self._open:
            self._open = False
            await self.transport.close(code, reason[:120])
        if self.info is not None:
            metrics.CALLS_ENDED.labels(reason.split(":")[0].split(" ")[0]).inc()
            log.info("call %s ended: %s (in %d, out %d, dropped %d)", self.info.call_sid, reason,
                     self.stats.frames_in, self.stats.frames_out, self.stats.frames_dropped)
            await self.recorder.ended(self.info, self.stats, reason)


def _valid_audio(payload: str) -> bool:
    if len(payload) > MAX_PAYLOAD * 4 // 3 + 4:
        return False
    try:
        binascii.a2b_base64(payload, strict_mode=True)
    except binascii.Error:
        return False
    return True

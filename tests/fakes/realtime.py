"""A local server speaking the GA OpenAI Realtime protocol over WebSocket.

Every event it receives is validated with the official package's ``RealtimeClientEvent`` (and must carry no
field the type does not know: the package's models allow extras, a real server rejects them); every event it
sends is built from ``openai.types.realtime`` server event types. So neither side can drift from the service.

Behaviour: ``session.created`` on connect; ``session.update`` answered with ``session.updated``;
``response.create`` plays the next scripted :class:`Turn` (assistant audio, its transcript, function calls)
and ends with ``response.done`` carrying usage; a truncate is answered with ``conversation.item.truncated``.
The test makes the caller speak (``speech_started``, then transcript and the next turn), fails the service
with an ``error`` event, or drops the socket.
"""

from __future__ import annotations

import base64
import itertools
import json
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any, get_args

import trio
from openai import BaseModel
from openai.types import realtime as rt
from pydantic import TypeAdapter
from trio_websocket import CloseReason, ConnectionClosed, WebSocketRequest

from tests.fakes.asgi import Changes

CLIENT_EVENT = TypeAdapter(rt.RealtimeClientEvent)
APPEND_PREFIX = '{"type":"input_audio_buffer.append"'
ECHO_VALIDATED = 50  # appends of a connection validated in full before the echo fast path
USAGE = {"input_tokens": 120, "output_tokens": 40, "total_tokens": 160,
         "input_token_details": {"audio_tokens": 100, "text_tokens": 20, "cached_tokens": 0},
         "output_token_details": {"audio_tokens": 30, "text_tokens": 10}}


def unknown_fields(model: Any, path: str = "") -> list[str]:
    """Every field in ``model`` (recursively) that its type does not declare."""
    found: list[str] = []
    if isinstance(model, BaseModel):
        found += [f"{path}{name}" for name in (model.model_extra or {})]
        for name in type(model).model_fields:
            found += unknown_fields(getattr(model, name), f"{path}{name}.")
    elif isinstance(model, list):
        for i, value in enumerate(model):
            found += unknown_fields(value, f"{path}{i}.")
    return found


def validate_client_event(raw: str | bytes) -> Any:
    event = CLIENT_EVENT.validate_json(raw)
    extra = unknown_fields(event)
    if extra:
        raise AssertionError(f"client event {event.type} has fields the GA protocol does not know: {extra}")
    return event


def server_event(model: type[BaseModel], **fields: Any) -> str:
    """A server event built (and so validated) from its official type."""
    fields.setdefault("type", get_args(model.model_fields["type"].annotation)[0])
    return model.model_validate(fields).model_dump_json(exclude_unset=True)


@dataclass
class Turn:
    """One scripted response: ``chunks`` audio deltas of ``chunk_ms`` each, its transcript, function calls."""

    transcript: str = ""
    chunks: int = 0
    chunk_ms: int = 100
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


class MemoryConnection:
    """One end of an in-memory WebSocket-like pair (for tests under MockClock)."""

    def __init__(self, send: trio.MemorySendChannel[str], receive: trio.MemoryReceiveChannel[str]) -> None:
        self._send, self._receive = send, receive

    @classmethod
    def pair(cls) -> tuple[MemoryConnection, MemoryConnection]:
        a_send, a_receive = trio.open_memory_channel[str](math.inf)
        b_send, b_receive = trio.open_memory_channel[str](math.inf)
        return cls(a_send, b_receive), cls(b_send, a_receive)

    async def send_message(self, message: str) -> None:
        try:
            self._send.send_nowait(message)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise ConnectionClosed(CloseReason(1006, "peer gone")) from None

    async def get_message(self) -> str:
        try:
            return await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise ConnectionClosed(CloseReason(1006, "peer gone")) from None

    async def aclose(self) -> None:
        self._send.close()
        self._receive.close()


class FakeRealtime:
    def __init__(self, turns: list[Turn] | None = None, *, echo: bool = False) -> None:
        self.turns = deque(turns or [])
        # Load tests: answer each appended frame with the same audio as a delta, and nothing else. Once the
        # first appends of a connection have validated, later ones take a fast path (same shape, new audio).
        self.echo = echo
        self.received: list[Any] = []  # validated client events, in order
        self.headers: dict[str, str] = {}
        self.path = ""
        self.changes = Changes()
        self._ids = itertools.count(1)
        self._ws: Any = None
        self._lock = trio.Lock()
        self._commands: trio.MemorySendChannel[Any] | None = None
        self._echo_template: str | None = None

    # -- what the test looks at --------------------------------------------------------------------------
    def of_type(self, kind: str) -> list[Any]:
        return [e for e in self.received if e.type == kind]

    @property
    def appended(self) -> int:
        return len(self.of_type("input_audio_buffer.append"))

    async def until(self, predicate: Any) -> None:
        await self.changes.until(predicate)

    # -- what the test makes happen ----------------------------------------------------------------------
    async def caller_speaks(self, transcript: str, *, respond: bool = True) -> None:
        """Server VAD heard the caller: speech_started now; speech_stopped, transcript, next turn after."""
        await self._command(("speak", transcript, respond))

    async def fail(self, code: str, kind: str = "server_error", message: str = "The server had an error"
                   ) -> None:
        await self._command(("fail", code, kind, message))

    async def drop(self) -> None:
        await self._command(("drop",))

    async def _command(self, command: Any) -> None:
        await self.until(lambda: self._commands is not None)
        assert self._commands is not None
        await self._commands.send(command)

    # -- serving -----------------------------------------------------------------------------------------
    async def handler(self, request: WebSocketRequest) -> None:
        """trio-websocket's ``serve_websocket`` handler."""
        self.headers = {k.decode().lower(): v.decode() for k, v in request.headers}
        self.path = request.path
        await self.serve(await request.accept())

    async def serve(self, ws: Any) -> None:
        self._ws = ws
        send, receive = trio.open_memory_channel[Any](math.inf)
        try:
            await self._send(rt.SessionCreatedEvent, session={"type": "realtime", "model": "gpt-realtime"})
            async with trio.open_nursery() as nursery:
                self._commands = send
                self.changes.notify()
                nursery.start_soon(self._run_commands, receive, nursery.cancel_scope)
                appends = 0
                while True:
                    raw = await ws.get_message()
                    if self.echo and appends > ECHO_VALIDATED and raw.startswith(APPEND_PREFIX):
                        await self._echo(ws, json.loads(raw)["audio"])
                        continue
                    event = validate_client_event(raw)
                    appends += event.type == "input_audio_buffer.append"
                    await self._on_client_event(event, ws)
        except* ConnectionClosed:
            pass

    async def _send(self, model: type[BaseModel], *, to: Any = None, **fields: Any) -> None:
        """Send on ``to`` (the connection that asked), else on the latest connection."""
        async with self._lock:
            await (to or self._ws).send_message(server_event(model, event_id=f"event_{next(self._ids)}", **fields))

    async def _on_client_event(self, event: Any, ws: Any) -> None:
        self.received.append(event)
        self.changes.notify()
        if event.type == "session.update":
            await self._send(rt.SessionUpdatedEvent, session=event.session.model_dump(exclude_unset=True))
        elif event.type == "response.create":
            await self._respond()
        elif event.type == "input_audio_buffer.append" and self.echo:
            await self._echo(ws, event.audio)
        elif event.type == "conversation.item.truncate":
            await self._send(rt.ConversationItemTruncatedEvent, item_id=event.item_id, content_index=0,
                             audio_end_ms=event.audio_end_ms)
        elif event.type == "conversation.item.create":
            await self._send(rt.ConversationItemCreatedEvent, item=event.item.model_dump(exclude_unset=True))

    async def _echo(self, ws: Any, audio: str) -> None:
        if self._echo_template is None:
            self._echo_template = server_event(rt.ResponseAudioDeltaEvent, event_id="event_echo", delta="AUDIO",
                                               response_id="resp_echo", item_id="item_echo", output_index=0,
                                               content_index=0)
        await ws.send_message(self._echo_template.replace('"AUDIO"', json.dumps(audio)))

    async def _run_commands(self, commands: trio.MemoryReceiveChannel[Any], scope: trio.CancelScope) -> None:
        async for command in commands:
            if command[0] == "speak":
                await self._speak(command[1], command[2])
            elif command[0] == "fail":
                _, code, kind, message = command
                error = {"type": kind, "code": code, "message": message}
                await self._send(rt.RealtimeErrorEvent, error=error)
            elif command[0] == "drop":
                await self._ws.aclose()
                scope.cancel()
                return

    async def _speak(self, transcript: str, respond: bool) -> None:
        item_id = f"item_user_{next(self._ids)}"
        await self._send(rt.InputAudioBufferSpeechStartedEvent, audio_start_ms=0, item_id=item_id)
        await self._send(rt.InputAudioBufferSpeechStoppedEvent, audio_end_ms=800, item_id=item_id)
        await self._send(rt.InputAudioBufferCommittedEvent, item_id=item_id)
        await self._send(rt.ConversationItemInputAudioTranscriptionCompletedEvent, item_id=item_id,
                         content_index=0, transcript=transcript,
                         usage={"type": "tokens", "input_tokens": 8, "output_tokens": 4, "total_tokens": 12})
        if respond:
            await self._respond()

    async def _respond(self) -> None:
        turn = self.turns.popleft() if self.turns else Turn() if self.echo else Turn("Mm-hm.", chunks=1)
        response_id = f"resp_{next(self._ids)}"
        await self._send(rt.ResponseCreatedEvent, response={"id": response_id, "object": "realtime.response",
                                                            "status": "in_progress", "output": []})
        output: list[dict[str, Any]] = []
        if turn.chunks or turn.transcript:
            item_id = f"item_assistant_{next(self._ids)}"
            message = {"id": item_id, "type": "message", "role": "assistant", "status": "in_progress",
                       "content": []}
            await self._send(rt.ResponseOutputItemAddedEvent, response_id=response_id, output_index=0,
                             item=message)
            where = {"response_id": response_id, "item_id": item_id, "output_index": 0, "content_index": 0}
            for i in range(turn.chunks):
                audio = bytes([i % 256]) * (turn.chunk_ms * 8)  # mu-law at 8 kHz: 8 bytes a millisecond
                await self._send(rt.ResponseAudioDeltaEvent, delta=base64.b64encode(audio).decode(), **where)
            await self._send(rt.ResponseAudioDoneEvent, **where)
            await self._send(rt.ResponseAudioTranscriptDoneEvent, transcript=turn.transcript, **where)
            message = message | {"status": "completed",
                                 "content": [{"type": "output_audio", "transcript": turn.transcript}]}
            await self._send(rt.ResponseOutputItemDoneEvent, response_id=response_id, output_index=0,
                             item=message)
            output.append(message)
        for name, arguments in turn.calls:
            call = {"id": f"item_fc_{next(self._ids)}", "type": "function_call", "status": "completed",
                    "call_id": f"call_{next(self._ids)}", "name": name, "arguments": json.dumps(arguments)}
            await self._send(rt.ResponseFunctionCallArgumentsDoneEvent, response_id=response_id,
                             item_id=call["id"], output_index=len(output), call_id=call["call_id"], name=name,
                             arguments=call["arguments"])
            output.append(call)
        await self._send(rt.ResponseDoneEvent, response={
            "id": response_id, "object": "realtime.response", "status": "completed", "output": output,
            "usage": USAGE})

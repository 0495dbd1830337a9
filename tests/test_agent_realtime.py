"""The phone agent against a local GA Realtime server whose events are checked against the official
openai types: greeting first, audio both ways with marks, barge-in with truncate, tools, transfer, failures,
limits."""

from __future__ import annotations

import base64
import logging
from functools import partial
from typing import Any

import pytest
import trio
from sqlalchemy import text
from trio_websocket import serve_websocket

from appliance.agent.config import AgentConfig, Caller
from appliance.agent.realtime import RealtimeAgent
from appliance.agent.record import Conversation
from appliance.agent.telephony import Telephony
from appliance.agent.tools import Toolbox
from appliance.media.session import CallSession
from tests.conftest import make_tenant
from tests.fakes.realtime import FakeRealtime, MemoryConnection, Turn
from tests.fakes.twilio_rest import FakeTwilioRest
from tests.helpers import wait_until
from tests.media_fakes import FRAME, ListRecorder, MemorySocket

CALLER = "+15550001111"
ACCOUNT, TOKEN = "AC" + "1" * 32, "twilio-auth-token"


class Harness:
    """One call: Twilio's side (a memory socket), our CallSession with the realtime agent, the fakes."""

    def __init__(self, fake: FakeRealtime, url: str, db: Any, twilio: FakeTwilioRest | None,
                 config: AgentConfig, business_id: int = 0, connect: Any = None) -> None:
        self.fake, self.sock, self.recorder = fake, MemorySocket(), ListRecorder()
        self.saved: list[Conversation] = []
        caller = Caller(business_id=business_id, phone=CALLER, call_sid="CA1")
        telephony = Telephony(ACCOUNT, TOKEN, twilio.url) if twilio else None
        self.agent = RealtimeAgent(url, "sk-test", config, caller,
                                   Toolbox(db, caller, config, "call", telephony), telephony=telephony,
                                   save=self._save, connect=connect)
        self.twilio_seen: list[dict[str, Any]] = []

        async def agent_for(_info):
            return self.agent

        self.call = CallSession(self.sock, verify=lambda sid, tok: True, agent_for=agent_for,
                                recorder=self.recorder, idle_timeout=3600)

    async def _save(self, record: Conversation) -> None:
        self.saved.append(record)

    async def next_sent(self, *, ack: bool = True) -> dict[str, Any]:
        """What we sent Twilio next; marks are acknowledged as Twilio does once the audio before them has
        played."""
        with trio.fail_after(10):
            message = await self.sock.next_sent()
        self.twilio_seen.append(message)
        if ack and message["event"] == "mark" and message["mark"]["name"] != "end":
            self.sock.push({"event": "mark", "streamSid": "MZ1", "mark": {"name": message["mark"]["name"]}})
        return message

    async def sent_until(self, event: str, *, ack: bool = True) -> list[dict[str, Any]]:
        seen = [await self.next_sent(ack=ack)]
        while seen[-1]["event"] != event:
            seen.append(await self.next_sent(ack=ack))
        return seen

    async def until_acked(self, name: str) -> None:
        async def acked() -> bool:
            return name not in self.call.stats.marks_pending
        await wait_until(acked, timeout=10)

    def reason(self) -> str:
        return self.recorder.ends[0][2]


@pytest.fixture
async def fake_url(nursery):
    fake = FakeRealtime()
    server = await nursery.start(partial(serve_websocket, fake.handler, "127.0.0.1", 0, ssl_context=None))
    return fake, f"ws://127.0.0.1:{server.port}/v1/realtime?model=gpt-realtime"


@pytest.fixture
async def twilio(nursery):
    fake = FakeTwilioRest(ACCOUNT, TOKEN)
    await nursery.start(fake.run)
    return fake


async def _async(value: bool) -> bool:
    return value


def audio_of(messages: list[dict[str, Any]]) -> list[bytes]:
    return [base64.b64decode(m["media"]["payload"]) for m in messages if m["event"] == "media"]


async def test_greets_first_streams_audio_both_ways_with_marks_in_order(fake_url, services):
    fake, url = fake_url
    fake.turns.append(Turn("Hello, thanks for calling Acme.", chunks=3, chunk_ms=100))
    h = Harness(fake, url, services.db, None, AgentConfig(greeting="Hello, thanks for calling Acme."))
    h.sock.start()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(h.call.run)
        greeting = await h.sent_until("mark")
        greeting += await h.sent_until("mark")
        greeting += await h.sent_until("mark")
        for _ in range(5):
            h.sock.media()
        with trio.fail_after(10):
            await fake.until(lambda: fake.appended == 5)
        h.sock.hang_up()
    kinds = [e.type for e in fake.received]
    assert kinds[:2] == ["session.update", "response.create"]  # the greeting goes before any caller audio
    session = fake.received[0].session
    assert session.type == "realtime"
    assert session.audio.input.format.type == "audio/pcmu"
    assert session.audio.output.format.type == "audio/pcmu"
    assert session.audio.input.turn_detection.type == "server_vad" and session.audio.input.transcription.model
    assert {t.name for t in session.tools} == {"lookup_caller", "save_lead", "take_message", "end_call"}
    assert "Hello, thanks for calling Acme." in fake.received[1].response.instructions
    assert fake.headers["authorization"] == "Bearer sk-test" and "openai-beta" not in fake.headers
    assert [e.audio for e in fake.of_type("input_audio_buffer.append")] == [FRAME] * 5
    assert [m["event"] for m in greeting] == ["media", "mark"] * 3
    assert audio_of(greeting) == [bytes([i]) * 800 for i in range(3)]  # in order, as the service sent them
    assert h.saved[0].transcript == [{"role": "agent", "text": "Hello, thanks for calling Acme.",
                                      "at": h.saved[0].transcript[0]["at"]}]
    assert h.saved[0].usage["total_tokens"] == 160 and h.saved[0].usage["responses"] == 1
    assert h.reason() == "caller hung up"


async def test_barge_in_clears_twilio_and_truncates_to_what_the_caller_heard(fake_url, services):
    fake, url = fake_url
    fake.turns.append(Turn("A long greeting the caller will talk over.", chunks=5, chunk_ms=100))
    h = Harness(fake, url, services.db, None, AgentConfig())
    h.sock.start()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(h.call.run)
        sent = [await h.next_sent(ack=i < 4) for i in range(10)]  # Twilio played two frames (200 ms) so far
        assert [m["event"] for m in sent] == ["media", "mark"] * 5
        await h.until_acked(sent[3]["mark"]["name"])
        await fake.caller_speaks("Sorry, I need a plumber", respond=False)
        assert (await h.next_sent(ack=False)) == {"event": "clear", "streamSid": "MZ1"}
        with trio.fail_after(10):
            await fake.until(lambda: fake.of_type("conversation.item.truncate"))
        await wait_until(lambda: _async(len(h.agent.record.transcript) == 2))
        h.sock.hang_up()
    (truncate,) = fake.of_type("conversation.item.truncate")
    assert truncate.audio_end_ms == 200 and truncate.content_index == 0
    assert truncate.item_id.startswith("item_assistant_")
    assert h.call.stats.cleared >= 0 and h.call.stats.marks_pending == []
    transcript = h.saved[0].transcript
    assert transcript[0]["role"] == "agent" and transcript[0]["interrupted"] is True
    assert transcript[1]["role"] == "caller" and transcript[1]["text"] == "Sorry, I need a plumber"


async def test_a_tool_call_creates_the_lead_and_its_result_goes_back_before_the_next_response(
        fake_url, services):
    fake, url = fake_url
    business_id, _, _ = await make_tenant(services)
    fake.turns.extend([
        Turn("Hi! Who am I speaking with?", chunks=1),
        Turn("Thanks Dana, I've noted that.", chunks=1,
             calls=[("save_lead", {"name": "Dana Levi", "notes": "wants a quote for a kitchen"})]),
        Turn("Anything else?", chunks=1),
    ])
    h = Harness(fake, url, services.db, None, AgentConfig(), business_id=business_id)
    h.sock.start()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(h.call.run)
        await h.sent_until("mark")
        await fake.caller_speaks("This is Dana Levi, I want a quote for my kitchen")
        with trio.fail_after(10):
            await fake.until(lambda: len(fake.of_type("response.create")) == 2)
        await h.sent_until("mark")
        await h.sent_until("mark")
        await wait_until(lambda: _async(h.agent.record.usage.get("responses") == 3))
        h.sock.hang_up()
    kinds = [e.type for e in fake.received]
    created = kinds.index("conversation.item.create")
    assert kinds[created + 1] == "response.create"
    output = fake.received[created].item
    assert output.type == "function_call_output" and output.call_id.startswith("call_")
    leads = await services.db.run(lambda s: s.execute(
        text("SELECT name, phone, source, notes FROM leads WHERE business_id = :b"),
        {"b": business_id}).all())
    assert [tuple(r) for r in leads] == [("Dana Levi", CALLER, "call", "wants a quote for a kitchen")]
    record = h.saved[0]
    assert record.lead_id is not None and record.tool_calls[0]["name"] == "save_lead"
    assert record.tool_calls[0]["output"]["saved"] is True
    assert [t["role"] for t in record.transcript] == ["agent", "caller", "agent", "agent"]
    assert record.usage["total_tokens"] == 3 * 160 and record.usage["input_audio_tokens"] == 300


async def test_transfer_redirects_the_call_to_a_dial_through_twilio_rest(fake_url, services, twilio):
    fake, url = fake_url
    transfer = Turn("Putting you through.", chunks=1, calls=[("transfer_call", {"reason": "wants a human"})])
    fake.turns.extend([Turn("Hello.", chunks=1), transfer])
    h = Harness(fake, url, services.db, twilio, AgentConfig(transfer_number="+15550009999"))
    h.sock.start()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(h.call.run)
        await h.sent_until("mark")
        await fake.caller_speaks("Can I talk to a person?")
        with trio.fail_after(10):
            await h.sock.closed_event.wait()
    (update,) = twilio.updates
    assert update["call_sid"] == "CA1"
    assert "<Dial>+15550009999</Dial>" in update["form"]["Twiml"]
    assert h.reason() == "transferred to +15550009999"
    assert h.saved[0].tool_calls[0]["output"] == {"transferring": True}


async def test_end_call_lets_the_goodbye_play_then_hangs_up(fake_url, services):
    fake, url = fake_url
    fake.turns.extend([Turn("Hello.", chunks=1), Turn("Goodbye!", chunks=3, calls=[("end_call", {})])])
    h = Harness(fake, url, services.db, None, AgentConfig())
    h.sock.start()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(h.call.run)
        await h.sent_until("mark")
        await fake.caller_speaks("That's all, bye")
        seen = await h.sent_until("mark")
        while not (seen[-1]["event"] == "mark" and seen[-1]["mark"]["name"] == "end"):
            seen.append(await h.next_sent())
    assert [m["event"] for m in seen].count("media") == 3  # the whole goodbye went out before the final mark
    assert h.reason() == "agent ended the call"


@pytest.mark.parametrize("how", ["error", "drop"])
async def test_service_failure_ends_the_call_with_the_spoken_fallback(fake_url, services, twilio, caplog,
                                                                     how):
    fake, url = fake_url
    fake.turns.append(Turn("Hello.", chunks=1))
    h = Harness(fake, url, services.db, twilio, AgentConfig())
    h.sock.start()
    caplog.set_level(logging.WARNING, logger="appliance.agent.realtime")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(h.call.run)
        await h.sent_until("mark")
        if how == "error":
            await fake.fail("server_error")
        else:
            await fake.drop()
        with trio.fail_after(10):
            await h.sock.closed_event.wait()
    code = "server_error" if how == "error" else "connection_closed"
    assert h.reason() == f"voice service error: {code}"
    (update,) = twilio.updates
    assert "<Say>Sorry, our assistant is not available right now." in update["form"]["Twiml"]
    assert "<Hangup" in update["form"]["Twiml"]
    assert any(code in r.getMessage() for r in caplog.records)


async def test_a_rejected_client_event_is_logged_and_the_call_goes_on(fake_url, services, caplog):
    fake, url = fake_url
    fake.turns.extend([Turn("Hello.", chunks=1), Turn("Still here.", chunks=1)])
    h = Harness(fake, url, services.db, None, AgentConfig())
    h.sock.start()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(h.call.run)
        await h.sent_until("mark")
        await fake.fail("invalid_value", kind="invalid_request_error", message="audio_end_ms too large")
        await fake.caller_speaks("Hello?")
        await h.sent_until("mark")
        h.sock.hang_up()
    assert h.reason() == "caller hung up"
    assert any("invalid_value" in r.getMessage() for r in caplog.records)


async def test_unreachable_service_gives_the_fallback(services, twilio):
    h = Harness(FakeRealtime(), "ws://127.0.0.1:1/v1/realtime", services.db, twilio, AgentConfig())
    h.sock.start()
    with trio.fail_after(15):
        await h.call.run()
    assert h.reason() == "voice service error: unreachable" and len(twilio.updates) == 1


@pytest.mark.parametrize(("limit", "reason"), [("silence", "silence for 20s"), ("max", "max duration 60s")])
async def test_silence_and_max_duration_end_the_call_at_their_deadline(autojump_clock, limit, reason):
    fake = FakeRealtime([Turn("Hello.", chunks=1)])
    ours, theirs = MemoryConnection.pair()

    class Opened:
        async def __aenter__(self) -> MemoryConnection:
            return ours

        async def __aexit__(self, *exc: object) -> None:
            await ours.aclose()

    config = AgentConfig(silence_timeout=20, max_duration=60)
    h = Harness(fake, "memory://", None, None, config, connect=Opened)

    async def chatter() -> None:  # the caller keeps talking, so only the duration cap ends the call
        while True:
            await fake.caller_speaks("and another thing", respond=False)
            await trio.sleep(5)

    h.sock.start()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(fake.serve, theirs)
        start = trio.current_time()
        if limit == "max":
            nursery.start_soon(chatter)
        await h.call.run()
        elapsed = trio.current_time() - start
        nursery.cancel_scope.cancel()
    assert h.reason() == reason
    assert elapsed == pytest.approx(20 if limit == "silence" else 60, abs=0.5)

"""The Media Streams session under a MockClock: deadlines, backpressure, bad input, barge-in."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from appliance.media.agents import EchoAgent
from appliance.media.session import MAX_BAD_IN_A_ROW, START_TIMEOUT, CallSession
from tests.media_fakes import FRAME, ListRecorder, MemorySocket


class StalledAgent:
    """Never reads: the caller's audio must pile up in the inbound channel and the oldest be dropped."""

    def __init__(self) -> None:
        self.release = trio.Event()

    async def run(self, call: CallSession) -> None:
        await self.release.wait()
        while True:
            await call.audio_in()


def session(sock: MemorySocket, recorder: ListRecorder, agent=None, idle: float = 30.0) -> CallSession:
    async def agent_for(_info):
        return agent or EchoAgent()

    return CallSession(sock, verify=lambda sid, token: token == "good", agent_for=agent_for,
                       recorder=recorder, idle_timeout=idle)


@pytest.fixture
def mock_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def test_ghost_session_is_closed_after_ten_seconds(mock_clock):
    sock, recorder = MemorySocket(), ListRecorder()
    sock.push({"event": "connected", "protocol": "Call", "version": "1.0.0"})
    started = trio.current_time()
    reason = await session(sock, recorder).run()
    assert reason == "no start within 10s"
    assert sock.closed == (1008, "no start within 10s")
    assert trio.current_time() - started == pytest.approx(START_TIMEOUT)
    assert recorder.starts == []


async def test_start_with_a_token_for_another_call_is_refused(mock_clock):
    sock, recorder = MemorySocket(), ListRecorder()
    sock.start(token="stolen")
    assert await session(sock, recorder).run() == "bad stream token"
    assert sock.closed == (1008, "bad stream token") and recorder.starts == []


async def test_echo_then_idle_deadline_ends_with_final_mark_and_normal_close(mock_clock):
    sock, recorder = MemorySocket(), ListRecorder()
    sock.start()
    for _ in range(3):
        sock.media()
    t0 = trio.current_time()
    call = session(sock, recorder, idle=30.0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(call.run)
        echoed = [await sock.next_sent() for _ in range(3)]
        assert all(m == {"event": "media", "streamSid": "MZ1", "media": {"payload": FRAME}} for m in echoed)
        await sock.closed_event.wait()
    assert trio.current_time() - t0 == pytest.approx(30.0)
    assert (await sock.next_sent()) == {"event": "mark", "streamSid": "MZ1", "mark": {"name": "end"}}
    assert sock.closed == (1000, "idle for 30s")
    info, stats, reason = recorder.ends[0]
    assert info.call_sid == "CA1" and (stats.frames_in, stats.frames_out, stats.frames_dropped) == (3, 3, 0)


async def test_full_inbound_channel_drops_oldest_and_never_blocks_the_receive_loop(mock_clock):
    sock, recorder = MemorySocket(), ListRecorder()
    agent = StalledAgent()
    call = session(sock, recorder, agent=agent)
    sock.start()
    payloads = [f"{i:04d}" + FRAME[4:] for i in range(600)]  # 12 s of audio against a 10 s channel
    for p in payloads:
        sock.media(p)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(call.run)
        await trio.testing.wait_all_tasks_blocked()
        assert call.stats.frames_in == 600  # every frame was read off the socket
        assert call.stats.dropped_in == 100
        assert call.inbound.receive_channel.receive_nowait() == payloads[100]  # the oldest went; the newest stayed
        sock.push({"event": "stop", "streamSid": "MZ1", "stop": {"callSid": "CA1"}})
    assert recorder.ends[0][1].frames_dropped == 100 and recorder.ends[0][2] == "caller hung up"


async def test_bad_messages_are_counted_and_skipped_until_they_persist(mock_clock):
    sock, recorder = MemorySocket(), ListRecorder()
    sock.start()
    for bad in ("{not json", '{"event": "wat"}', "[1,2]"):
        sock.push(bad)
    sock.media("!!!not-base64!!!")
    sock.media()  # a good frame in between resets the run of bad ones
    for _ in range(MAX_BAD_IN_A_ROW):
        sock.push("garbage")
    reason = await session(sock, recorder).run()
    assert reason == f"{MAX_BAD_IN_A_ROW} bad messages in a row (last: malformed_json)"
    assert sock.closed[0] == 1007
    stats = recorder.ends[0][1]
    assert stats.bad_messages == 4 + MAX_BAD_IN_A_ROW and stats.frames_in == 1


async def test_barge_in_clear_flushes_queued_audio_and_tells_twilio(mock_clock):
    sock, recorder = MemorySocket(), ListRecorder()
    call = session(sock, recorder, agent=StalledAgent())
    sock.start()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(call.run)
        await trio.testing.wait_all_tasks_blocked()
        # The agent queues an answer faster than the socket takes it, then the caller talks over it.
        for _ in range(50):
            call.play(FRAME)
        call.mark("answer-1")
        call.clear()
        await trio.testing.wait_all_tasks_blocked()
        sent = []
        while True:
            try:
                sent.append(sock.out.receive_nowait())
            except trio.WouldBlock:
                break
        assert sent[-1] == {"event": "clear", "streamSid": "MZ1"}
        media_sent = len(sent) - 1  # what the sender had taken before the clear
        assert media_sent < 50 and call.stats.cleared == 51 - media_sent  # 50 frames and the mark
        assert call.stats.marks_pending == []
        sock.hang_up()
    assert recorder.ends[0][2] == "caller hung up"


async def test_agent_failure_ends_only_that_call(mock_clock):
    class Broken:
        async def run(self, call: CallSession) -> None:
            await call.audio_in()
            raise RuntimeError("voice service said no")

    sock, recorder = MemorySocket(), ListRecorder()
    sock.start()
    sock.media()
    assert await session(sock, recorder, agent=Broken()).run() == "agent failed: RuntimeError"
    assert sock.closed == (1000, "agent failed: RuntimeError")

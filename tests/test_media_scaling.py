"""Several media processes on one port (SO_REUSEPORT), stale audio shed under overload, and a load test that
ends on time whatever the server does."""

from __future__ import annotations

import json
import socket

import pytest
import trio
from pydantic import SecretStr
from trio_websocket import ConnectionClosed

from appliance.loadtest.calls import OVERRUN, run_calls
from appliance.media.serve import serve_media
from appliance.media.session import STALE_AFTER, CallSession
from appliance.media.simulator import media_message, open_twilio_socket, start_message
from appliance.nursery.supervisor import expand_roles
from appliance.serving import BACKLOG, listen_socket
from tests.conftest import free_port, make_tenant
from tests.media_fakes import FRAME, ListRecorder, MemorySocket
from tests.test_media import AUTH_TOKEN, place_call


def test_a_shared_listener_lets_another_bind_the_port_and_a_private_one_does_not():
    port = free_port()
    first = listen_socket("127.0.0.1", port, shared=True)
    try:
        assert first.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
        listen_socket("127.0.0.1", port, shared=True).close()
        with pytest.raises(OSError):
            listen_socket("127.0.0.1", port, shared=False)
    finally:
        first.close()
    assert BACKLOG >= 1024


def test_the_supervisor_runs_media_processes_of_their_own_each():
    assert expand_roles(["media", "api", "worker"], 1, media=2) == ["api", "media-1", "media-2", "worker-1"]
    assert expand_roles(["media", "api"], 1, api=3, media=1) == ["api-1", "api-2", "api-3", "media"]


async def test_two_media_processes_share_the_port_and_each_drains_its_own_calls(settings, services, nursery):
    port = free_port()
    settings = settings.model_copy(update={"twilio_auth_token": SecretStr(AUTH_TOKEN), "shutdown_grace": 0.5,
                                           "media_port": port, "media_processes": 2, "bind_host": "127.0.0.1"})
    stops = [trio.Event(), trio.Event()]
    handles = [await nursery.start(serve_media, settings, stop) for stop in stops]
    base = f"http://127.0.0.1:{port}"
    business_id, _, _ = await make_tenant(services)
    calls = 12
    tokens = [await place_call(base, business_id, f"CAshare{i}") for i in range(calls)]  # any instance answers
    live = [0, 0]

    async def call(i: int, all_live: trio.Event, ended: list[str]) -> None:
        async with open_twilio_socket(base.replace("http://", "ws://") + "/ws/twilio-media") as ws:
            await ws.send_message(start_message(f"CAshare{i}", f"MZ{i}", tokens[i]))
            await ws.send_message(media_message(f"MZ{i}", FRAME, 0))
            assert json.loads(await ws.get_message())["event"] == "media"  # its token held where it landed
            live[0] += 1
            await all_live.wait()
            try:
                while True:
                    message = json.loads(await ws.get_message())
                    if message["event"] == "mark":
                        ended.append(message["mark"]["name"])
            except ConnectionClosed as closed:
                assert closed.reason.code == 1000

    all_live, ended = trio.Event(), []
    with trio.fail_after(20):
        async with trio.open_nursery() as streams:
            for i in range(calls):
                streams.start_soon(call, i, all_live, ended)
            while live[0] < calls:
                await trio.sleep(0.01)
            counts = [int(handle.status().split()[0]) for handle in handles]
            assert sum(counts) == calls and min(counts) > 0, counts  # both took calls (2 * 2**-12 to fail)
            all_live.set()
            stops[0].set()  # the first process drains: its calls end with the final mark, the others stay
            while len(ended) < counts[0]:
                await trio.sleep(0.01)
            assert int(handles[1].status().split()[0]) == counts[1]
            stops[1].set()
    assert ended == ["end"] * calls


async def _echo_agent(_info):
    from appliance.media.agents import EchoAgent
    return EchoAgent()


def echo_call(sock: MemorySocket, recorder: ListRecorder) -> CallSession:
    """A call on ``sock`` through the echo agent, any stream token accepted."""
    return CallSession(sock, verify=lambda sid, tok: True, agent_for=_echo_agent, recorder=recorder, idle_timeout=30)


async def test_frames_arriving_late_for_their_timestamp_are_shed_not_queued():
    clock_sock, recorder = MemorySocket(), ListRecorder()
    call = echo_call(clock_sock, recorder)
    clock_sock.start()

    def media(ms: int) -> None:
        clock_sock.push({"event": "media", "streamSid": "MZ1",
                         "media": {"track": "inbound", "timestamp": str(ms), "payload": FRAME}})

    async with trio.open_nursery() as inner:
        inner.start_soon(call.run)
        media(0)  # on time: sets the call's baseline
        assert (await clock_sock.next_sent())["event"] == "media"
        await trio.sleep(STALE_AFTER + 0.1)
        media(20)  # arrives STALE_AFTER later than its timestamp allows: dropped, counted
        media(int(1000 * (STALE_AFTER + 0.1)))  # on time again
        assert (await clock_sock.next_sent())["event"] == "media"
        clock_sock.hang_up()
    stats = recorder.ends[0][1]
    assert (stats.frames_in, stats.frames_out, stats.dropped_in) == (3, 2, 1)


async def test_a_late_frame_with_nothing_waiting_behind_it_is_played_not_shed():
    sock, recorder = MemorySocket(), ListRecorder()
    call = echo_call(sock, recorder)
    sock.start()
    async with trio.open_nursery() as inner:
        inner.start_soon(call.run)
        sock.push({"event": "media", "streamSid": "MZ1", "media": {"timestamp": "0", "payload": FRAME}})
        assert (await sock.next_sent())["event"] == "media"
        await trio.sleep(STALE_AFTER + 0.1)
        # late on its way here (the server is not behind: nothing queued after it): the newest audio there is
        sock.push({"event": "media", "streamSid": "MZ1", "media": {"timestamp": "20", "payload": FRAME}})
        assert (await sock.next_sent())["event"] == "media"
        sock.hang_up()
    assert recorder.ends[0][1].dropped_in == 0


async def test_a_sender_clock_slower_than_ours_does_not_turn_a_long_calls_frames_stale(autojump_clock):
    sock, recorder = MemorySocket(), ListRecorder()
    call = echo_call(sock, recorder)
    sock.start()
    async with trio.open_nursery() as inner:
        inner.start_soon(call.run)
        for second in range(1000):  # Twilio's clock 500 ppm slow: 0.5 s behind ours after 1,000 s
            sock.push({"event": "media", "streamSid": "MZ1",
                       "media": {"track": "inbound", "timestamp": str(second * 9995 // 10), "payload": FRAME}})
            assert (await sock.next_sent())["event"] == "media"
            await trio.sleep(1)
        sock.hang_up()
    assert recorder.ends[0][1].dropped_in == 0


@pytest.mark.slow
# trio-websocket 0.12 leaves the TCP socket of a handshake cancelled midway for the garbage collector.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_load_test_ends_on_time_against_a_server_that_never_answers(settings, autojump_clock):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts nothing: connects hang, then the backlog overflows
    port = listener.getsockname()[1]
    settings = settings.model_copy(update={"twilio_auth_token": SecretStr(AUTH_TOKEN)})
    try:
        started = trio.current_time()
        report = await run_calls(settings, 5, 2.0, f"ws://127.0.0.1:{port}/ws/twilio-media", [])
        assert trio.current_time() - started <= 2.0 + OVERRUN
    finally:
        listener.close()
    assert report["failed_to_connect"] == 5 and report["frames_sent"] == 0

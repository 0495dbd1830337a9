"""The load test's lean WebSocket client (``appliance/loadtest/ws_client.py``): against the media role's
Hypercorn (patched, as the media role runs it), and against a scripted server on a real socket that sends
the frames Hypercorn would not (splits, pings between fragments, bad frames) and reads the client's frames
with wsproto, an independent implementation."""

from __future__ import annotations

import functools
import json
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
import trio
from pydantic import SecretStr
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage

from appliance.loadtest import ws_client
from appliance.loadtest.calls import echoed_seq, frame, media_frames, run_calls
from appliance.loadtest.ws_client import ClosedError, FrameReader, HandshakeError, ProtocolError, open_websocket
from appliance.media.simulator import media_message
from tests.test_hypercorn_patch import echo  # noqa: F401  (the fixture: patched Hypercorn, echoing)
from tests.test_hypercorn_patch import frame as ws_frame

TEXT, BINARY, CONTINUATION, CLOSE, PING = 0x1, 0x2, 0x0, 0x8, 0x9


server_frame = functools.partial(ws_frame, mask=b"")  # a server's frame: not masked unless a test says


# --- against the media role's Hypercorn ---

async def test_messages_of_every_length_class_go_both_ways_in_order(echo):  # noqa: F811
    sizes = [0, 1, 125, 126, 127, 65535, 65536, 99_000]  # 7-bit, 16-bit and 64-bit lengths
    sent = [("é" + "x" * (size - 2)) if size >= 2 else "x" * size for size in sizes]  # size in bytes
    async with open_websocket(f"ws://127.0.0.1:{echo.port}/ws") as ws:
        for text in sent:  # back to back: several frames per read, long ones split across reads
            ws.send_text(text)
        ws.send_bytes(b"\x00\xffbinary")
        with trio.fail_after(10):
            got = [await ws.get_message() for _ in range(len(sent) + 1)]
    assert got == [*sent, b"\x00\xffbinary"]
    assert echo.received[:len(sent)] == sent  # the server unmasked every length right
    assert ws.closed is not None and ws.closed.code == 1000  # our close, answered by the server's
    await echo.disconnected()


async def test_a_message_over_the_servers_limit_ends_with_its_close_code(echo):  # noqa: F811
    async with open_websocket(f"ws://127.0.0.1:{echo.port}/ws") as ws:
        ws.send_text("y" * 100_001)
        with trio.fail_after(10), pytest.raises(ClosedError) as closed:
            await ws.get_message()
        assert closed.value.code == 1009
        with pytest.raises(ClosedError):
            ws.send_text("after the close")


async def test_many_calls_connect_and_echo_through_the_media_handshake(echo):  # noqa: F811
    async def call(i: int, got: list[str]) -> None:
        async with open_websocket(f"ws://127.0.0.1:{echo.port}/ws") as ws:
            ws.send_text(f"call {i}")
            got.append(await ws.get_message())

    got: list[str] = []
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            for i in range(50):
                nursery.start_soon(call, i, got)
    assert sorted(got) == sorted(f"call {i}" for i in range(50))


# --- against a scripted server ---

class Scripted:
    """One connection's server side: a real handshake, then raw bytes out and wsproto events in."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.ws = Connection(ConnectionType.SERVER)

    async def events(self, count: int) -> list[object]:
        found: list[object] = []
        with trio.fail_after(10):
            while len(found) < count:
                found.extend(self.ws.events())
                if len(found) < count:
                    data = await self.stream.receive_some(65536)
                    if not data:
                        break
                    self.ws.receive_data(data)
        return found


@asynccontextmanager
async def scripted(script: Callable[[Scripted], Awaitable[None]], answer: bytes | None = None
                   ) -> AsyncIterator[str]:
    """A listener whose one connection runs ``script`` after answering the upgrade (``answer``: instead of
    the right 101, send this)."""
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]

    async def serve() -> None:
        stream = await listener.accept()
        stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        head = b""
        while b"\r\n\r\n" not in head:
            head += await stream.receive_some(4096)
        key = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                   if line.lower().startswith(b"sec-websocket-key:"))
        await stream.send_all(answer or (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                         b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                                         + ws_client.accept_key(key) + b"\r\n\r\n"))
        server = Scripted(stream)  # (wsproto's Connection starts open: it reads frames from here on)
        await script(server)
        await stream.aclose()

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve)
            yield f"ws://127.0.0.1:{port}/ws"
    await listener.aclose()


async def test_frames_split_anywhere_fragments_and_a_ping_between_them_arrive_whole_and_pong_is_sent():
    stream_bytes = (server_frame(TEXT, b"one") + server_frame(TEXT, b"x" * 300)
                    + server_frame(TEXT, b"frag", fin=False) + server_frame(PING, b"are you there")
                    + server_frame(CONTINUATION, b"men", fin=False) + server_frame(CONTINUATION, b"ted")
                    + server_frame(BINARY, bytes(70_000)))
    seen: list[object] = []

    async def script(server: Scripted) -> None:
        for i in range(0, 40):  # the first 40 bytes one write each: headers and lengths split mid-way
            await server.stream.send_all(stream_bytes[i:i + 1])
            await trio.sleep(0.001)  # (not to settle anything: so that the client reads them one by one)
        await server.stream.send_all(stream_bytes[40:])
        seen.extend(await server.events(2))  # the pong, then the close
        await server.stream.send_all(server_frame(CLOSE, (1000).to_bytes(2, "big")))

    async with scripted(script) as url:
        async with open_websocket(url) as ws:
            with trio.fail_after(10):
                got = [await ws.get_message() for _ in range(4)]
            assert got == ["one", "x" * 300, "fragmented", bytes(70_000)]
    assert isinstance(seen[0], Pong) and seen[0].payload == b"are you there"
    assert isinstance(seen[1], CloseConnection) and seen[1].code == 1000


async def test_a_close_from_the_server_is_answered_with_its_code_and_ends_get_message():
    seen: list[object] = []

    async def script(server: Scripted) -> None:
        await server.stream.send_all(server_frame(TEXT, b"last words")
                                     + server_frame(CLOSE, (4001).to_bytes(2, "big") + b"bye"))
        seen.extend(await server.events(1))

    async with scripted(script) as url, open_websocket(url) as ws:
        with trio.fail_after(10):
            assert await ws.get_message() == "last words"  # what came before the close is still read
            with pytest.raises(ClosedError) as closed:
                await ws.get_message()
    assert (closed.value.code, closed.value.reason) == (4001, "bye")
    assert isinstance(seen[0], CloseConnection) and seen[0].code == 4001


@pytest.mark.parametrize(("bad", "code"), [
    (server_frame(TEXT, b"masked", mask=b"abcd"), 1002),
    (server_frame(TEXT, b"reserved", rsv=0x40), 1002),
    (server_frame(0x3, b"opcode 3"), 1002),
    (server_frame(PING, b"", fin=False), 1002),
    (server_frame(CONTINUATION, b"no start"), 1002),
    (server_frame(TEXT, b"\xff\xfe"), 1007),
    (server_frame(TEXT, b"a", fin=False) + server_frame(TEXT, b"b"), 1002),
    (server_frame(CLOSE, b"\x03"), 1002),
])
async def test_a_bad_frame_from_the_server_closes_with_the_rfc_code(bad, code):
    seen: list[object] = []

    async def script(server: Scripted) -> None:
        await server.stream.send_all(bad)
        seen.extend(await server.events(1))

    async with scripted(script) as url, open_websocket(url) as ws:
        with trio.fail_after(10), pytest.raises(ClosedError) as closed:
            await ws.get_message()
    assert closed.value.code == code
    assert isinstance(seen[0], CloseConnection) and seen[0].code == code


async def test_a_socket_closed_without_a_close_frame_is_1006():
    async def script(server: Scripted) -> None:
        await server.stream.send_all(server_frame(TEXT, b"half")[:3])

    async with scripted(script) as url, open_websocket(url) as ws:
        with trio.fail_after(10), pytest.raises(ClosedError) as closed:
            await ws.get_message()
    assert closed.value.code == 1006


async def test_sending_never_waits_on_a_server_that_does_not_read_and_nothing_is_lost():
    size, count = 100_000, 200  # 20 MB: more than the socket buffers hold
    got: list[str] = []
    reading, all_read = trio.Event(), trio.Event()

    async def script(server: Scripted) -> None:
        await reading.wait()
        part = ""
        while len(got) < count:
            for event in await server.events(1):
                if isinstance(event, TextMessage):  # wsproto hands a long message over in parts
                    part += event.data
                    if event.message_finished:
                        got.append(part)
                        part = ""
        all_read.set()

    async with scripted(script) as url, open_websocket(url) as ws:
        for i in range(count):  # send_text is not async: it cannot wait
            ws.send_text(str(i % 10) * size)  # what the kernel does not take waits in the buffer
        assert ws.buffered > 0
        reading.set()
        with trio.fail_after(20):
            await all_read.wait()
    assert got == [str(i % 10) * size for i in range(count)]


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: d3JvbmcgYWNjZXB0IGtleSEhIQ==\r\n\r\n",
])
async def test_a_refused_or_wrongly_accepted_upgrade_is_a_handshake_error(answer):
    async def script(server: Scripted) -> None:
        pass

    async with scripted(script, answer) as url:
        with pytest.raises(HandshakeError):
            async with open_websocket(url):
                pass


# --- no I/O ---

def test_the_frame_reader_gives_the_same_messages_however_the_stream_is_cut():
    stream = (server_frame(TEXT, b"a") + server_frame(TEXT, b"b" * 126) + server_frame(PING, b"p")
              + server_frame(BINARY, b"c", fin=False) + server_frame(CONTINUATION, b"d")
              + server_frame(TEXT, b"e" * 65536))
    whole = FrameReader().feed(stream)
    assert whole == [(TEXT, b"a"), (TEXT, b"b" * 126), (PING, b"p"), (BINARY, b"cd"), (TEXT, b"e" * 65536)]
    for cut in range(1, 160):
        reader = FrameReader()
        assert reader.feed(stream[:cut]) + reader.feed(stream[cut:]) == whole, cut
    with pytest.raises(ProtocolError):  # refused from its length, before the payload arrives
        FrameReader(max_message=100).feed(server_frame(TEXT, b"f" * 101)[:4])
    reader = FrameReader(max_message=100)
    reader.feed(server_frame(TEXT, b"f" * 60, fin=False))
    with pytest.raises(ProtocolError):
        reader.feed(server_frame(CONTINUATION, b"g" * 60))


def test_the_masker_agrees_with_wsproto():
    masker = ws_client.Masker(b"\x01\x82\x43\xf4")
    server = Connection(ConnectionType.SERVER)
    messages = ["", "a", "é" * 62, "b" * 126, "c" * 70_000]
    for text in messages:
        server.receive_data(masker.frame(TEXT, text.encode()))
    server.receive_data(masker.frame(BINARY, b"\x00\x01"))
    server.receive_data(masker.frame(PING, b"hi"))
    events = list(server.events())
    assert [e.data for e in events if isinstance(e, TextMessage)] == messages
    assert [e.data for e in events if isinstance(e, BytesMessage)] == [b"\x00\x01"]
    assert [e.payload for e in events if isinstance(e, Ping)] == [b"hi"]


def test_the_load_tests_prebuilt_frames_are_the_simulators_messages_and_their_seq_reads_back():
    messages = media_frames(300)
    for seq in (0, 1, 255, 299):
        head, tail = messages[seq]
        assert head + "MZx" + tail == media_message("MZx", frame(seq), seq)
        echoed = {"event": "media", "streamSid": "MZx", "media": {"payload": frame(seq)}}
        assert echoed_seq(json.dumps(echoed)) == seq  # the peer's spacing
        assert echoed_seq(json.dumps(echoed, separators=(",", ":"))) == seq  # ours
    assert echoed_seq('{"event":"mark","streamSid":"MZx","mark":{"name":"end"}}') is None


async def test_the_load_test_streams_through_the_lean_client_and_reports_a_server_that_has_exited(
        echo, settings):  # noqa: F811
    gone = await trio.lowlevel.open_process([sys.executable, "-c", "pass"])
    await gone.wait()  # reaped: no /proc entry left, as after a crashed server
    settings = settings.model_copy(update={"twilio_auth_token": SecretStr("load-test token")})
    report = await run_calls(settings, 3, 0.2, f"ws://127.0.0.1:{echo.port}/ws/twilio-media", [gone.pid])
    assert report["frames_sent"] == report["frames_echoed"] == 30 and report["frames_lost"] == 0
    assert report["p99_ms"] < 1000 and report["client_cpu_us_per_frame"] > 0
    assert report["server_exited"] and report["server_cpu_pct"] is None
    assert report["disconnected"] == report["failed_to_connect"] == report["cut"] == 0


async def test_closing_never_outlasts_the_callers_deadline_when_the_server_does_not_answer():
    release = trio.Event()

    async def script(server: Scripted) -> None:
        await release.wait()  # reads nothing, answers no close

    async with scripted(script) as url:
        started = trio.current_time()
        with trio.move_on_after(0.3):
            async with open_websocket(url):
                await trio.sleep_forever()
        assert trio.current_time() - started < ws_client.CLOSE_WAIT / 2  # the caller's 0.3 s, not 5 s
        release.set()

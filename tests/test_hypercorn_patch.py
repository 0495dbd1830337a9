"""The trims of Hypercorn (``appliance/hypercorn_patch/``) on a real Hypercorn socket: whole text frames
take the fast path, everything else still reaches wsproto and ends as wsproto says; an HTTP/1.1 connection
the client has closed is let go at once and freed without the cycle collector."""

from __future__ import annotations

import gc
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import pytest
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from hypercorn.trio.tcp_server import TCPServer
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Pong, TextMessage
from wsproto.frame_protocol import XorMaskerSimple

from appliance import hypercorn_patch
from appliance.hypercorn_patch import tcp, websocket

TEXT, BINARY, CONTINUATION, CLOSE, PING = 0x1, 0x2, 0x0, 0x8, 0x9
MASK = b"\x37\xfa\x21\x3d"


def frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bytes = MASK, rsv: int = 0) -> bytes:
    """A frame as RFC 6455 5.2 lays it out: a client's (masked), or with ``mask=b""`` a server's."""
    size = len(payload)
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    bit = 0x80 if mask else 0
    if size < 126:
        head += bytes([bit | size])
    elif size < 65536:
        head += bytes([bit | 126]) + size.to_bytes(2, "big")
    else:
        head += bytes([bit | 127]) + size.to_bytes(8, "big")
    if not mask:
        return head + payload
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class EchoServer:
    """Hypercorn (patched) serving an app that records each message and sends it back as it came."""

    def __init__(self) -> None:
        self.received: list[object] = []
        self.port = 0
        self._disconnected = trio.Event()

    async def disconnected(self) -> None:
        with trio.fail_after(10):
            await self._disconnected.wait()

    async def app(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                self.received.append(("disconnect", message["code"]))
                self._disconnected.set()
                return
            if message.get("text") is not None:
                self.received.append(message["text"])
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                self.received.append(message["bytes"])
                await send({"type": "websocket.send", "bytes": message["bytes"]})


@pytest.fixture
async def echo(nursery):
    hypercorn_patch.apply()
    server = EchoServer()
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.websocket_max_message_size = 100_000
    binds = await nursery.start(partial(serve, server.app, config, shutdown_trigger=trio.sleep_forever))
    server.port = int(binds[0].rsplit(":", 1)[1])
    return server


class Client:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.ws = Connection(ConnectionType.CLIENT)

    async def events(self, count: int) -> list[object]:
        """The next ``count`` events from the server (fewer when it closes first), a message's parts as one."""
        found: list[object] = []
        part: TextMessage | BytesMessage | None = None
        with trio.fail_after(10):
            while len(found) < count:
                for event in self.ws.events():
                    if isinstance(event, (TextMessage, BytesMessage)):
                        part = event if part is None else type(event)(data=part.data + event.data)
                        if not event.message_finished:
                            continue
                        event, part = part, None
                    found.append(event)
                    if isinstance(event, CloseConnection):
                        return found
                if len(found) < count:
                    data = await self.stream.receive_some(65536)
                    if not data:
                        return found
                    self.ws.receive_data(data)
        return found


@asynccontextmanager
async def connect(port: int) -> AsyncIterator[Client]:
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        yield await handshake(stream)


async def handshake(stream: trio.SocketStream) -> Client:
    await stream.send_all(b"GET /ws HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    head = b""
    with trio.fail_after(10):
        while b"\r\n\r\n" not in head:
            head += await stream.receive_some(4096)
    assert head.startswith(b"HTTP/1.1 101")
    client = Client(stream)
    client.ws.receive_data(head.split(b"\r\n\r\n", 1)[1])
    return client


def texts(events: list[object]) -> list[str]:
    return [e.data for e in events if isinstance(e, TextMessage)]


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 125, 126, 333, 65536])
def test_unmask_agrees_with_wsproto(size):
    payload = os.urandom(size)
    assert websocket._unmask(payload, MASK) == bytes(XorMaskerSimple(MASK).process(bytearray(payload)))


async def test_whole_text_frames_read_at_once_reach_the_app_one_message_each_in_order(echo):
    async with connect(echo.port) as client:
        sent = ["hello", "ünïcödé " * 40, "x" * 125, "y" * 126, "", '{"event":"media"}' * 20]
        await client.stream.send_all(b"".join(frame(TEXT, t.encode()) for t in sent))
        assert texts(await client.events(len(sent))) == sent
        assert echo.received == sent


async def test_a_frame_split_across_reads_goes_through_wsproto_and_the_fast_path_resumes_after_it(echo):
    async with connect(echo.port) as client:
        second = frame(TEXT, b"second " * 30)
        await client.stream.send_all(frame(TEXT, b"first") + second[:9])
        assert texts(await client.events(1)) == ["first"]
        await client.stream.send_all(second[9:] + frame(TEXT, b"third"))
        assert texts(await client.events(2)) == ["second " * 30, "third"]


async def test_fragments_pings_and_binary_frames_are_wsprotos_and_keep_their_order(echo):
    async with connect(echo.port) as client:
        await client.stream.send_all(
            frame(TEXT, b"before")
            + frame(TEXT, b"hel", fin=False) + frame(PING, b"p") + frame(CONTINUATION, b"lo")
            + frame(BINARY, b"\x00\xff")
            + frame(TEXT, b"after"))
        events = await client.events(5)  # (the pong is the reader's, the echoes the app's: in either order)
        assert [type(e) for e in events if not isinstance(e, Pong)] == [TextMessage, TextMessage, BytesMessage,
                                                                         TextMessage]
        assert texts(events) == ["before", "hello", "after"] and [e.payload for e in events if isinstance(e, Pong)]
        assert echo.received == ["before", "hello", b"\x00\xff", "after"]


async def test_a_long_message_with_a_64_bit_length_goes_both_ways(echo):
    async with connect(echo.port) as client:
        text = "z" * 70_000
        await client.stream.send_all(frame(TEXT, text.encode()))
        assert texts(await client.events(1)) == [text]


@pytest.mark.parametrize("bad", [
    frame(TEXT, b"\xff\xfe not utf-8"),
    frame(TEXT, b"unmasked", mask=b""),
    frame(TEXT, b"reserved bit", rsv=0x40),
])
async def test_a_frame_wsproto_refuses_ends_the_connection_as_before(echo, bad):
    async with connect(echo.port) as client:
        await client.stream.send_all(frame(TEXT, b"good") + bad + frame(TEXT, b"never read"))
        await echo.disconnected()  # (Hypercorn drops the connection without a close frame)
        assert echo.received[0] == "good" and echo.received[-1] == ("disconnect", 1006)
        assert "never read" not in echo.received


async def test_a_message_over_the_size_limit_is_closed_with_1009_as_before(echo):
    async with connect(echo.port) as client:
        await client.stream.send_all(frame(TEXT, b"good") + frame(TEXT, b"a" * 100_001) + frame(TEXT, b"never read"))
        events = await client.events(3)
        assert isinstance(events[-1], CloseConnection) and events[-1].code == 1009
        assert echo.received[0] == "good" and "never read" not in echo.received


async def test_a_client_close_reaches_the_app_as_a_disconnect(echo):
    async with connect(echo.port) as client:
        await client.stream.send_all(frame(TEXT, b"bye") + frame(CLOSE, (1000).to_bytes(2, "big")))
        events = await client.events(2)
        assert isinstance(events[-1], CloseConnection) and events[-1].code == 1000
        await echo.disconnected()
        assert echo.received[0] == "bye" and echo.received[-1][0] == "disconnect"


async def test_reading_a_socket_another_task_closed_ends_that_connection_only():
    """Two connections closed under their readers (the app closed them while the reader was busy) must
    each end as closed: waiting on fd -1 raised ValueError, then BusyResourceError, and took the server down."""
    pairs = [socket.socketpair() for _ in range(2)]
    ended: list[str] = []

    async def read(sock: socket.socket) -> None:
        with pytest.raises(trio.ClosedResourceError):
            await tcp._receive(sock, ready=False)
        ended.append("closed")

    for ours, _ in pairs:
        ours.close()
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            for ours, _ in pairs:
                nursery.start_soon(read, ours)
    assert ended == ["closed", "closed"]
    for _, theirs in pairs:
        theirs.close()


# -- HTTP/1.1 connections: what a finished connection leaves behind ------------------------------------
async def http_app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


async def serve_http(nursery: trio.Nursery, keep_alive_timeout: float) -> int:
    hypercorn_patch.apply(direct_writes=False)  # as the api role
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.keep_alive_timeout = keep_alive_timeout
    binds = await nursery.start(partial(serve, http_app, config, shutdown_trigger=trio.sleep_forever))
    return int(binds[0].rsplit(":", 1)[1])


@pytest.fixture
async def http_port(nursery):
    return await serve_http(nursery, 60)  # longer than any wait below: only the client's close may end one


@pytest.fixture
async def short_keep_alive_port(nursery):
    return await serve_http(nursery, 0.3)


async def one_request_then_close_our_side(port: int) -> trio.SocketStream:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
    answer = b""
    with trio.fail_after(10):
        while not answer.endswith(b"ok"):
            answer += await stream.receive_some(4096)
    assert answer.startswith(b"HTTP/1.1 200")
    await stream.send_eof()
    return stream


async def test_a_client_gone_after_its_answer_is_let_go_at_once_not_after_the_keep_alive_timeout(http_port):
    stream = await one_request_then_close_our_side(http_port)
    with trio.fail_after(10):  # Hypercorn alone closes its side only when keep_alive_timeout (60 s) runs out
        assert await stream.receive_some(4096) == b""
    await stream.aclose()


async def test_a_finished_connection_is_freed_without_the_cycle_collector(http_port):
    gc.collect()
    gc.disable()
    try:
        stream = await one_request_then_close_our_side(http_port)
        with trio.fail_after(10):
            assert await stream.receive_some(4096) == b""
            await stream.aclose()
            while any(isinstance(o, TCPServer) for o in gc.get_objects()):  # the handler may still be ending
                await trio.sleep(0.01)
    finally:
        gc.enable()


async def closed_by_the_server(stream: trio.SocketStream) -> bool:
    with trio.move_on_after(10):
        while await stream.receive_some(4096):
            pass
        return True
    return False


async def test_a_connection_that_sends_nothing_is_closed_after_the_keep_alive_timeout(short_keep_alive_port):
    async with await trio.open_tcp_stream("127.0.0.1", short_keep_alive_port) as stream:
        assert await closed_by_the_server(stream)


async def test_a_connection_idle_after_its_answer_is_closed_after_the_keep_alive_timeout(short_keep_alive_port):
    async with await trio.open_tcp_stream("127.0.0.1", short_keep_alive_port) as stream:
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        assert await closed_by_the_server(stream)


async def test_a_request_trickling_in_byte_by_byte_is_closed_after_the_keep_alive_timeout(short_keep_alive_port):
    async with await trio.open_tcp_stream("127.0.0.1", short_keep_alive_port) as stream:
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: test\r\n")
        with trio.move_on_after(10):
            try:
                while True:  # a header byte every 50 ms: never a whole request
                    await stream.send_all(b"X")
                    await trio.sleep(0.05)
            except trio.BrokenResourceError:
                pass
        assert await closed_by_the_server(stream)


async def test_shutting_down_closes_an_idle_keep_alive_connection_at_once(nursery):
    hypercorn_patch.apply(direct_writes=False)
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.keep_alive_timeout = 60
    config.graceful_timeout = 30  # longer than the wait below: only the idle timers may close it
    stop = trio.Event()
    binds = await nursery.start(partial(serve, http_app, config, shutdown_trigger=stop.wait))
    async with await trio.open_tcp_stream("127.0.0.1", int(binds[0].rsplit(":", 1)[1])) as stream:
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        answer = b""
        with trio.fail_after(10):
            while not answer.endswith(b"ok"):
                answer += await stream.receive_some(4096)
        stop.set()
        assert await closed_by_the_server(stream)

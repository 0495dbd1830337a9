"""An idle worker's own Redis connection for its blocking pop (``BRPOP`` of its inbox and the wake-up list).

Why not the shared coredis client: a reply there goes through coredis' reader task, an anyio event and the
command's retry and telemetry wrappers before the waiting task runs; measured on this machine that is about
0.7 ms of CPU per wake-up more than reading the reply on a socket of its own (docs/sections/jobstart.md),
and after idle that CPU is the job's start latency. This module speaks only what the pop needs (RESP2:
AUTH, SELECT, BRPOP) on a Trio stream the worker owns. Errors are the shared client's: a lost or refused
connection is :class:`RedisConnectionError`, a reply that does not come in time :class:`TimeoutError` (both
in ``REDIS_DOWN``), an error reply :class:`RedisError`. A pop cancelled or failed mid-reply closes the
connection (its state is unknown); the next pop opens a new one.
"""

from __future__ import annotations

import ssl
from urllib.parse import parse_qs, unquote, urlsplit

import trio

from appliance.redis import RedisConnectionError, RedisError

CONNECT_TIMEOUT = 2.0
REPLY_MARGIN = 5.0  # a pop's reply may come this long after its server-side timeout before we call it lost


def _command(*parts: str | bytes) -> bytes:
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class BlockingConnection:
    """One connection, one blocking pop at a time (the worker's idle wait)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"REDIS_URL scheme must be redis, rediss or unix, got {parts.scheme!r}")
        query = parse_qs(parts.query)
        self._scheme = parts.scheme
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 6379
        self._path = unquote(parts.path) if parts.scheme == "unix" else ""
        db = query.get("db", [""])[0] or (parts.path.strip("/") if parts.scheme != "unix" else "")
        self._db = db or "0"
        self._username = unquote(parts.username) if parts.username else ""
        self._password = unquote(parts.password) if parts.password else ""
        self._stream: trio.abc.Stream | None = None
        self._buffer = bytearray()

    async def brpop(self, keys: list[str], timeout: float) -> tuple[str, str] | None:
        """``BRPOP keys timeout``: (key, value) of the popped element, or None when ``timeout`` passed."""
        try:
            with trio.fail_after(timeout + REPLY_MARGIN):
                stream = self._stream or await self._connect()
                await stream.send_all(_command("BRPOP", *keys, f"{timeout:g}"))
                reply = await self._reply()
        except trio.TooSlowError:
            await self.aclose()
            raise TimeoutError(f"BRPOP got no reply within {timeout + REPLY_MARGIN:g}s") from None
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            await self.aclose()
            raise RedisConnectionError(f"blocking pop connection lost: {exc}") from exc
        except BaseException:
            await self.aclose()
            raise
        if reply is None:
            return None
        if not isinstance(reply, list) or len(reply) != 2 or reply[0] is None or reply[1] is None:
            raise RedisError(f"unexpected BRPOP reply {reply!r}")
        return reply[0], reply[1]

    async def aclose(self) -> None:
        stream, self._stream = self._stream, None
        self._buffer.clear()
        if stream is not None:
            with trio.CancelScope(shield=True):
                await stream.aclose()

    async def _connect(self) -> trio.abc.Stream:
        stream: trio.abc.Stream
        with trio.fail_after(CONNECT_TIMEOUT):
            if self._scheme == "unix":
                stream = await trio.open_unix_socket(self._path)
            elif self._scheme == "rediss":
                stream = await trio.open_ssl_over_tcp_stream(self._host, self._port,
                                                             ssl_context=ssl.create_default_context())
            else:
                stream = await trio.open_tcp_stream(self._host, self._port)
            self._stream = stream
            setup = []
            if self._password:
                setup.append(_command("AUTH", *([self._username] if self._username else []), self._password))
            if self._db != "0":
                setup.append(_command("SELECT", self._db))
            if setup:
                await stream.send_all(b"".join(setup))
                for _ in setup:
                    await self._reply()
        return stream

    async def _line(self) -> bytes:
        assert self._stream is not None
        while (end := self._buffer.find(b"\r\n")) < 0:
            data = await self._stream.receive_some(65536)
            if not data:
                raise RedisConnectionError("Redis closed the blocking pop connection")
            self._buffer += data
        line = bytes(self._buffer[:end])
        del self._buffer[:end + 2]
        return line

    async def _reply(self) -> str | list[str | None] | None:
        line = await self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"-":
            raise RedisError(rest.decode(errors="replace"))
        if kind == b"+":
            return rest.decode()
        if kind == b"*":
            count = int(rest)
            return None if count < 0 else [await self._bulk() for _ in range(count)]
        if kind == b"$":
            return await self._bulk_body(int(rest))
        raise RedisError(f"unexpected reply {line[:80]!r}")

    async def _bulk(self) -> str | None:
        line = await self._line()
        if line[:1] != b"$":
            raise RedisError(f"expected a bulk string, got {line[:80]!r}")
        return await self._bulk_body(int(line[1:]))

    async def _bulk_body(self, size: int) -> str | None:
        if size < 0:
            return None
        assert self._stream is not None
        while len(self._buffer) < size + 2:
            data = await self._stream.receive_some(65536)
            if not data:
                raise RedisConnectionError("Redis closed the blocking pop connection")
            self._buffer += data
        value = self._buffer[:size].decode()
        del self._buffer[:size + 2]
        return value

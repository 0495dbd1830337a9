"""A WhatsApp webhook burst: N messages, a fraction of them redelivered, posted concurrently. Reports the
accept latency, non-2xx answers, and (once the workers drain) stored rows against unique messages.

The posts go over plain trio sockets with each request built before the clock starts (HTTP/1.1,
keep-alive, one connection per post in flight): a full HTTP client spends more CPU per post than the
server under test, and on a small machine the figure would be the client's.
"""

from __future__ import annotations

import json
import random
import resource
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import trio
from sqlalchemy import func, select

from appliance.jobs.queue import JobQueue
from appliance.loadtest.calls import percentile
from appliance.models import WhatsAppMessage
from appliance.services import Services, open_services
from appliance.settings import Settings

CONCURRENCY = 20
POST_TIMEOUT = 30.0
DRAIN_TIMEOUT = 300.0
MAX_HEADER_BYTES = 65536


def burst(n: int, duplicates: float, seed: int = 1) -> tuple[list[dict[str, Any]], int]:
    """N Baileys messages of which about ``duplicates`` are redeliveries; returns them and the unique count."""
    rng = random.Random(seed)
    unique_count = max(1, round(n * (1 - duplicates)))
    run = uuid.uuid4().hex[:8]
    unique = [{"key": {"id": f"LT{run}{i:07d}", "remoteJid": f"1555{i % 500:07d}@s.whatsapp.net", "fromMe": False},
               "messageTimestamp": int(time.time()), "pushName": f"Load {i % 500}",
               "message": {"conversation": f"load test message {i}"}} for i in range(unique_count)]
    messages = unique + [rng.choice(unique) for _ in range(n - unique_count)]
    rng.shuffle(messages)
    return messages, unique_count


async def _stored(services: Services, business_id: int, prefix: str) -> int:
    def q(session) -> int:
        return session.scalar(select(func.count()).select_from(WhatsAppMessage).where(
            WhatsAppMessage.business_id == business_id, WhatsAppMessage.provider_message_id.like(prefix + "%")))

    return await services.db.run(q)


class _Connection:
    """One keep-alive HTTP/1.1 connection: send a prepared request, read the status and the body."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.stream: trio.SocketStream | None = None
        self.buffer = b""

    async def post(self, request: bytes) -> int:
        if self.stream is None:
            self.stream = await trio.open_tcp_stream(self.host, self.port)
            self.buffer = b""
        await self.stream.send_all(request)
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            await self._read()
        head, self.buffer = self.buffer[:end].decode("latin-1"), self.buffer[end + 4:]
        lines = head.split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            await self._read()
        self.buffer = self.buffer[length:]
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status

    async def _read(self) -> None:
        assert self.stream is not None
        chunk = await self.stream.receive_some(65536)
        if not chunk or len(self.buffer) > MAX_HEADER_BYTES:
            raise OSError("connection closed before the answer was complete")
        self.buffer += chunk

    async def close(self) -> None:
        if self.stream is not None:
            await self.stream.aclose()
            self.stream = None


def _request(host: str, port: int, path: str, secret: str, body: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nX-Internal-Secret: {secret}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


async def post_burst(url: str, secret: str, tenant: int, messages: list[dict[str, Any]],
                     concurrency: int = CONCURRENCY) -> dict[str, Any]:
    """Post one message per request, ``concurrency`` requests in flight (each on its own connection; with
    ``concurrency`` = len(messages) every post connects and is sent at once, as a reconnecting bridge does)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    requests = [_request(host, port, parts.path, secret,
                         json.dumps({"tenantId": tenant, "payload": {"messages": [m]}}).encode()) for m in messages]
    pending = iter(requests)
    latencies: list[float] = []
    reused: list[float] = []  # posts on a connection already open (a bridge's steady state)
    statuses: dict[int, int] = {}

    async def connection() -> None:
        conn = _Connection(host, port)
        try:
            for request in pending:
                started = time.perf_counter()
                was_open = conn.stream is not None
                try:
                    with trio.fail_after(POST_TIMEOUT):
                        code = await conn.post(request)
                except (OSError, ValueError, IndexError, trio.TooSlowError):
                    code = 0
                    await conn.close()
                latencies.append(time.perf_counter() - started)
                if was_open:
                    reused.append(latencies[-1])
                statuses[code] = statuses.get(code, 0) + 1
        finally:
            await conn.close()

    cpu = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(min(concurrency, len(requests))):
            nursery.start_soon(connection)
    wall = time.perf_counter() - started
    used = resource.getrusage(resource.RUSAGE_SELF)
    client_cpu = used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime
    return {
        "posted": len(messages), "in_flight": concurrency,
        "non_2xx": sum(c for s, c in statuses.items() if not 200 <= s < 300), "statuses": statuses,
        "accept_p50_ms": round(1000 * percentile(latencies, 0.5), 2),
        "accept_p99_ms": round(1000 * percentile(latencies, 0.99), 2),
        "accept_max_ms": round(1000 * max(latencies), 2), "posts_per_s": round(len(messages) / wall, 1),
        "open_connection_p99_ms": round(1000 * percentile(reused, 0.99), 2) if reused else None,
        "client_cpu_pct": round(100 * client_cpu / wall, 1),
    }


async def run_webhooks(settings: Settings, n: int, duplicates: float, url: str | None,
                       tenant: int | None = None, before_drain: Any = None,
                       concurrency: int = CONCURRENCY) -> dict[str, Any]:
    """Against a running appliance (API and workers): ``tenant`` defaults to the first business."""
    url = url or f"http://127.0.0.1:{settings.api_port}/webhook/whatsapp/incoming"
    secret = settings.secrets("internal_secret")[0]
    messages, unique_count = burst(n, duplicates)
    prefix = messages[0]["key"]["id"][:10]
    async with open_services(settings) as services:
        if tenant is None:
            from appliance.models import Business

            tenant = await services.db.run(lambda s: s.scalar(select(func.min(Business.id))))
            if tenant is None:
                raise SystemExit("no business yet: appliance user create --business NAME --email EMAIL")
        report = await post_burst(url, secret, tenant, messages, concurrency)
        if before_drain is not None:
            before_drain()  # e.g. the benchmark starts the workers only now
        queue = JobQueue(services.redis, services.keys)
        started = time.perf_counter()
        with trio.move_on_after(DRAIN_TIMEOUT):
            while (stored := await _stored(services, tenant, prefix)) < unique_count:
                stats = await queue.stats()
                if all(q["queued"] == q["running"] == q["scheduled"] == 0 for q in stats["queues"].values()):
                    break
                await trio.sleep(0.1)
        stored = await _stored(services, tenant, prefix)
    return {**report, "duplicates": duplicates, "unique_messages": unique_count, "stored_rows": stored,
            "drain_seconds": round(time.perf_counter() - started, 2), "exactly_once": stored == unique_count}

"""A WhatsApp webhook burst: N messages, a fraction of them redelivered, posted concurrently. Reports the
accept latency, non-2xx answers, and (once the workers drain) stored rows against unique messages."""

from __future__ import annotations

import random
import time
import uuid
from typing import Any

import httpx
import trio
from sqlalchemy import func, select

from appliance.jobs.queue import JobQueue
from appliance.loadtest.calls import percentile
from appliance.models import WhatsAppMessage
from appliance.services import Services, open_services
from appliance.settings import Settings

CONCURRENCY = 20
DRAIN_TIMEOUT = 300.0


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


async def post_burst(url: str, secret: str, tenant: int, messages: list[dict[str, Any]],
                     concurrency: int = CONCURRENCY) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    limiter = trio.CapacityLimiter(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(headers={"X-Internal-Secret": secret}, timeout=30, limits=limits) as http:
        async def post(message: dict[str, Any]) -> None:
            async with limiter:
                started = time.perf_counter()
                try:
                    response = await http.post(url, json={"tenantId": tenant, "payload": {"messages": [message]}})
                    code = response.status_code
                except httpx.HTTPError:
                    code = 0
                latencies.append(time.perf_counter() - started)
                statuses[code] = statuses.get(code, 0) + 1

        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for message in messages:
                nursery.start_soon(post, message)
        wall = time.perf_counter() - started
    return {
        "posted": len(messages), "non_2xx": sum(c for s, c in statuses.items() if not 200 <= s < 300),
        "accept_p50_ms": round(1000 * percentile(latencies, 0.5), 2),
        "accept_p99_ms": round(1000 * percentile(latencies, 0.99), 2),
        "accept_max_ms": round(1000 * max(latencies), 2), "posts_per_s": round(len(messages) / wall, 1),
    }


async def run_webhooks(settings: Settings, n: int, duplicates: float, url: str | None,
                       tenant: int | None = None, before_drain: Any = None) -> dict[str, Any]:
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
        report = await post_burst(url, secret, tenant, messages)
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

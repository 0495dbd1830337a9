"""Durable Redis: what was accepted before redis-server was SIGKILLed still runs after it restarts on the
same directory, exactly once where it is unique; the roles and /api/health say when Redis is not durable.

A private redis-server (benchmarks/servers.py) with the appliance's settings (appendonly yes, everysec);
the run's own database.
"""

from __future__ import annotations

import logging

import pytest
import trio

from appliance.jobs.queue import JobQueue
from appliance.jobs.worker import Worker
from appliance.redis import is_durable, open_redis, warn_unless_durable
from appliance.services import open_services
from appliance.web.app import create_app
from benchmarks.servers import PrivateRedis
from tests.conftest import make_tenant
from tests.helpers import wait_until
from tests.test_whatsapp import SECRET, count, drained, hook, wa_message

JOBS = 1000
WEBHOOKS = 300


@pytest.fixture
async def durable_redis(tmp_path):
    server = PrivateRedis(tmp_path / "redis", appendonly=True, appendfsync="everysec")
    server.directory.mkdir()
    await trio.to_thread.run_sync(server.start)
    try:
        yield server
    finally:
        await trio.to_thread.run_sync(server.stop)


@pytest.mark.slow
async def test_accepted_jobs_and_webhooks_survive_sigkill_of_redis(settings, durable_redis):
    settings = settings.model_copy(update={"redis_url": durable_redis.url})
    messages = [wa_message(f"DUR{i:06d}", phone=f"1555{i % 31:07d}", text=f"m{i}") for i in range(WEBHOOKS)]
    async with open_services(settings) as services:
        assert await is_durable(services.redis)
        async with create_app(services).test_app() as test_app:
            health = await (await test_app.test_client().get("/api/health")).get_json()
            assert health["redis_durable"] is True
        tenant, _, _ = await make_tenant(services)
        queue = JobQueue(services.redis, services.keys)

        async def produce(start: int) -> None:
            for _ in range(start, JOBS, 10):
                await queue.enqueue("diagnostics.stamp", {"key": "durable"})

        async with trio.open_nursery() as nursery:
            for start in range(10):
                nursery.start_soon(produce, start)
        app = create_app(services)
        async with app.test_app() as test_app:
            client = test_app.test_client()
            for message in messages:
                response = await client.post("/webhook/whatsapp/incoming", json=hook(tenant, message),
                                             headers=SECRET)
                assert response.status_code == 200
    # Everything above was answered as accepted; now redis-server dies with no chance to flush anything.
    durable_redis.kill()
    await trio.to_thread.run_sync(durable_redis.start)

    async with open_services(settings) as services, trio.open_nursery() as roles:
        queue = JobQueue(services.redis, services.keys)
        stats = await queue.stats()
        assert sum(q["queued"] for q in stats["queues"].values()) == JOBS + WEBHOOKS
        stop = trio.Event()
        await roles.start(Worker(services, concurrency=16, lease=30, grace=5).run, stop)
        await wait_until(lambda: drained(queue), timeout=60)
        assert await services.redis.llen(services.keys.prefix + "durable") == JOBS
        assert await count(services, tenant) == WEBHOOKS
        # Baileys redelivers after the outage: the unique keys survived too, so nothing is enqueued again.
        app = create_app(services)
        async with app.test_app() as test_app:
            client = test_app.test_client()
            for message in messages[:50]:
                response = await client.post("/webhook/whatsapp/incoming", json=hook(tenant, message),
                                             headers=SECRET)
                assert response.status_code == 200
        await wait_until(lambda: drained(queue), timeout=30)
        totals = (await queue.stats())["totals"]
        assert totals["finished"] == JOBS + WEBHOOKS and totals["started"] == JOBS + WEBHOOKS
        assert await count(services, tenant) == WEBHOOKS
        stop.set()


async def test_roles_warn_loudly_when_redis_keeps_nothing(tmp_path, caplog):
    server = PrivateRedis(tmp_path, appendonly=False)
    await trio.to_thread.run_sync(server.start)
    try:
        async with open_redis(server.url) as redis:
            with caplog.at_level(logging.WARNING, logger="appliance.redis"):
                assert await warn_unless_durable(redis, "worker") is False
            assert "REDIS IS NOT DURABLE" in caplog.text
            await redis.config_set({"appendonly": "yes"})
            caplog.clear()
            assert await warn_unless_durable(redis, "worker") is True
            assert "NOT DURABLE" not in caplog.text
    finally:
        server.kill()  # SIGTERM would wait for the first AOF rewrite just started

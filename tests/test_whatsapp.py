"""WhatsApp: the enqueue-only webhook, exactly-once storage, at-most-once replies, the inbox."""

from __future__ import annotations

import random
import uuid

import httpx
import pytest
import trio
from sqlalchemy import func, select, update

from appliance.jobs.queue import JobQueue
from appliance.jobs.worker import Worker
from appliance.models import Business, Lead, WhatsAppMessage
from appliance.services import open_services
from appliance.web.app import create_app
from appliance.web.security import CONTENT_SECURITY_POLICY
from appliance.web.serve import serve_api
from appliance.whatsapp.batching import InboundBatcher, inbound_batcher
from appliance.whatsapp.incoming import parse
from tests.conftest import bearer, make_tenant
from tests.helpers import wait_until

SECRET = {"X-Internal-Secret": "test-internal-secret"}


def wa_message(msg_id: str, phone: str = "15551230000", text: str = "hello", **key: object) -> dict:
    return {"key": {"id": msg_id, "remoteJid": f"{phone}@s.whatsapp.net", "fromMe": False, **key},
            "messageTimestamp": 1_780_000_000, "pushName": "Ada", "message": {"conversation": text}}


def hook(tenant: int, *messages: dict, updates: list | None = None) -> dict:
    payload: dict = {"messages": list(messages)}
    if updates is not None:
        payload["updates"] = updates
    return {"tenantId": tenant, "payload": payload}


async def set_reply(services, business_id: int, mode: str, text: str | None = None) -> None:
    def apply(session) -> None:
        session.execute(update(Business).where(Business.id == business_id)
                        .values(auto_reply_mode=mode, auto_reply_text=text))

    await services.db.run(apply)


async def count(services, business_id: int, direction: str = "in") -> int:
    def q(session) -> int:
        return session.scalar(select(func.count()).select_from(WhatsAppMessage).where(
            WhatsAppMessage.business_id == business_id, WhatsAppMessage.direction == direction))

    return await services.db.run(q)


async def drained(queue: JobQueue) -> bool:
    stats = await queue.stats()
    return all(q["queued"] == q["running"] == q["scheduled"] == 0 for q in stats["queues"].values())


@pytest.fixture
def wa_settings(settings, bridge):
    return settings.model_copy(update={"baileys_url": bridge.url})


@pytest.fixture
async def wa(wa_settings):
    """Services, a test client and a running worker, all with the fake bridge configured."""
    async with open_services(wa_settings) as services, trio.open_nursery() as roles:  # the worker ends first
        stop = trio.Event()
        await roles.start(Worker(services, concurrency=16, lease=30, grace=5).run, stop)
        app = create_app(services)
        async with app.test_app() as test_app:
            yield services, test_app.test_client(), JobQueue(services.redis, services.keys)
        stop.set()


async def test_secret_validation_tenant_and_size_errors(wa, wa_settings):
    services, client, _ = wa
    tenant, _, _ = await make_tenant(services)
    url = "/webhook/whatsapp/incoming"
    assert (await client.post(url, json=hook(tenant, wa_message("A1")))).status_code == 401
    wrong = await client.post(url, json=hook(tenant, wa_message("A1")), headers={"X-Internal-Secret": "nope"})
    assert wrong.status_code == 401
    not_json = await client.post(url, data=b"{nope", headers=SECRET | {"Content-Type": "application/json"})
    assert not_json.status_code == 400 and "JSON" in (await not_json.get_json())["error"]
    missing_id = wa_message("A1")
    del missing_id["key"]["id"]
    bad = await client.post(url, json=hook(tenant, missing_id), headers=SECRET)
    assert bad.status_code == 400 and "payload.messages.0.key.id" in (await bad.get_json())["error"]
    no_tenant = await client.post(url, json={"payload": {"messages": []}}, headers=SECRET)
    assert no_tenant.status_code == 400 and "tenantId" in (await no_tenant.get_json())["error"]
    unknown = await client.post(url, json=hook(999_999_999, wa_message("A1")), headers=SECRET)
    assert unknown.status_code == 404 and "tenantId" in (await unknown.get_json())["error"]
    huge = hook(tenant, wa_message("A1", text="x" * (wa_settings.max_body_bytes + 1)))
    assert (await client.post(url, json=huge, headers=SECRET)).status_code == 413
    assert await count(services, tenant) == 0


async def test_webhook_answer_and_headers_are_the_same_in_front_of_quart_and_through_it(wa):
    """The fast route (web/fast_route.py) and the Quart view (a request with a query string) answer alike;
    a post naming one message twice stores it once (its jobs go in one script call, in order)."""
    services, client, queue = wa
    tenant, _, _ = await make_tenant(services)
    for n, url in enumerate(("/webhook/whatsapp/incoming", "/webhook/whatsapp/incoming?through=quart")):
        first, second = wa_message(f"FAST{n}{uuid.uuid4().hex[:8]}"), wa_message(f"FAST{n}{uuid.uuid4().hex[:8]}")
        ok = await client.post(url, json=hook(tenant, first, first, second), headers=SECRET)
        assert ok.status_code == 200
        assert await ok.get_json() == {"success": True, "messages": 3, "updates": 0, "lidMappings": 0}
        denied = await client.post(url, json=hook(tenant, first), headers={"X-Internal-Secret": "nope"})
        assert denied.status_code == 401 and (await denied.get_json())["success"] is False
        nan = await client.post(url, data=b'{"tenantId": %d, "payload": {"messages": [{"key": {"id": "N", '
                                b'"remoteJid": "1555@s.whatsapp.net"}, "message": {"n": NaN}}]}}' % tenant,
                                headers=SECRET | {"Content-Type": "application/json"})
        assert nan.status_code == 400 and "must be JSON" in (await nan.get_json())["error"]  # was a 500
        too_big_id = await client.post(url, json=hook(2**40, first), headers=SECRET)  # beyond the id column
        assert too_big_id.status_code == 400 and "invalid value" in (await too_big_id.get_json())["error"]
        for response in (ok, denied, too_big_id):
            assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
            assert response.headers["X-Frame-Options"] == "DENY"
            assert response.headers["Content-Type"] == "application/json"
    await wait_until(lambda: drained(queue))
    assert await count(services, tenant) == 4


async def test_redelivered_message_is_enqueued_once_and_stored_once(wa):
    services, client, queue = wa
    tenant, _, token = await make_tenant(services)
    message = wa_message(f"3EB0{uuid.uuid4().hex[:12]}", text="first contact")
    for _ in range(3):
        response = await client.post("/webhook/whatsapp/incoming", json=hook(tenant, message), headers=SECRET)
        assert response.status_code == 200
    await wait_until(lambda: drained(queue))
    assert (await queue.stats())["totals"]["finished"] == 1  # two redeliveries enqueued nothing
    assert await count(services, tenant) == 1
    # Processing the same message again (a job re-run after a crash) stores nothing new either.
    again = await queue.enqueue("whatsapp.process_message", {"business_id": tenant, "message": message})
    await wait_until(lambda: drained(queue))
    assert (await queue.get(again))["result"] == {"outcome": "duplicate", "message_id": None}
    conversations = await (await client.get("/api/whatsapp/conversations", headers=bearer(token))).get_json()
    (conversation,) = conversations["conversations"]
    assert conversation["jid"] == "15551230000@s.whatsapp.net" and conversation["lead_name"] == "Ada"
    assert conversation["unread"] == 1 and conversation["last_message"]["body"] == "first contact"


async def test_groups_status_and_own_messages_are_skipped(wa):
    services, client, queue = wa
    tenant, _, _ = await make_tenant(services)
    group = wa_message("G1")
    group["key"]["remoteJid"] = "12036302@g.us"
    status = wa_message("S1")
    status["key"]["remoteJid"] = "status@broadcast"
    own = wa_message("O1", fromMe=True)
    caption = wa_message("C1")
    caption["message"] = {"imageMessage": {"caption": "our menu", "mimetype": "image/jpeg"}}
    response = await client.post("/webhook/whatsapp/incoming", json=hook(tenant, group, status, own, caption),
                                  headers=SECRET)
    assert response.status_code == 200 and (await response.get_json())["messages"] == 4
    await wait_until(lambda: drained(queue))
    assert await count(services, tenant) == 1 and await count(services, tenant, "out") == 0


async def test_flood_of_1000_with_30pct_duplicates_stores_each_once_and_replies_once(wa_settings, bridge):
    async with open_services(wa_settings) as services, trio.open_nursery() as roles:
        tenant, _, _ = await make_tenant(services)
        await set_reply(services, tenant, "fixed", "Thanks! We will get back to you shortly.")
        queue = JobQueue(services.redis, services.keys)
        stop = trio.Event()
        await roles.start(Worker(services, concurrency=16, lease=30, grace=5).run, stop)
        api = await roles.start(serve_api, wa_settings, stop)
        base = api.status().rsplit(" ", 1)[1]
        unique = [wa_message(f"3EB0{i:08d}", phone=f"1555{i % 97:07d}", text=f"m{i}") for i in range(700)]
        rng = random.Random(7)
        posts = unique + [rng.choice(unique) for _ in range(300)]
        rng.shuffle(posts)
        statuses: list[int] = []
        limiter = trio.CapacityLimiter(50)
        async with httpx.AsyncClient(base_url=base, headers=SECRET, timeout=30) as http:
            async def post(message: dict) -> None:
                async with limiter:
                    response = await http.post("/webhook/whatsapp/incoming", json=hook(tenant, message))
                    statuses.append(response.status_code)

            async with trio.open_nursery() as burst:
                for message in posts:
                    burst.start_soon(post, message)
        assert statuses.count(200) == 1000
        await wait_until(lambda: drained(queue), timeout=90)
        stats = await queue.stats()
        assert stats["totals"]["finished"] == 700 and stats["totals"].get("failed", 0) == 0
        assert await count(services, tenant) == 700
        assert len(bridge.sent) == 700 and len({s["jid"] for s in bridge.sent}) == 97
        assert await count(services, tenant, "out") == 700

        def leads(session) -> int:
            return session.scalar(select(func.count()).select_from(Lead).where(Lead.business_id == tenant))

        assert await services.db.run(leads) == 97  # one lead per number, even with racing workers
        batches = inbound_batcher(services).batches
        print(f"700 messages stored in {batches} transactions")
        assert batches < 700 / 2  # messages arriving together were written together
        stop.set()


async def test_bridge_failing_twice_then_succeeding_sends_once(wa, bridge):
    services, client, queue = wa
    tenant, _, token = await make_tenant(services)
    await set_reply(services, tenant, "fixed", "auto")
    bridge.fail_first = 2
    message = wa_message("R1")
    response = await client.post("/webhook/whatsapp/incoming", json=hook(tenant, message), headers=SECRET)
    assert response.status_code == 200
    await wait_until(lambda: drained(queue))
    assert len(bridge.requests) == 3 and len(bridge.sent) == 1
    # A re-run of the job (say its worker died after sending) does not send again.
    def forget(session) -> None:
        session.execute(WhatsAppMessage.__table__.delete().where(WhatsAppMessage.business_id == tenant,
                                                                WhatsAppMessage.direction == "in"))

    await services.db.run(forget)
    rerun = await queue.enqueue("whatsapp.process_message", {"business_id": tenant, "message": message})
    await wait_until(lambda: drained(queue))
    assert (await queue.get(rerun))["result"]["reply"] == "already replied" and len(bridge.sent) == 1
    # An operator's message goes the same way and is stored with the bridge's id.
    sent = await client.post("/api/whatsapp/send", json={"phone": "+1 555 123 0000", "text": "Your table is ready"},
                             headers=bearer(token) | {"Idempotency-Key": "k1"})
    body = await sent.get_json()
    assert sent.status_code == 201 and body["message"]["status"] == "sent"
    assert body["message"]["jid"] == "15551230000@s.whatsapp.net" and body["message"]["provider_message_id"]
    repeat = await client.post("/api/whatsapp/send", json={"phone": "+15551230000", "text": "again"},
                               headers=bearer(token) | {"Idempotency-Key": "k1"})
    assert repeat.status_code == 409 and len(bridge.sent) == 2
    no_text = await client.post("/api/whatsapp/send", json={"phone": "+15551230000"}, headers=bearer(token))
    assert no_text.status_code == 422 and "text" in (await no_text.get_json())["error"]


async def test_status_updates_move_stored_messages_forward_only(wa):
    services, client, queue = wa
    tenant, _, token = await make_tenant(services)
    sent = await services.db.run(lambda s: __import__("appliance.whatsapp.store", fromlist=["x"]).store_outbound(
        s, tenant, "15551230000@s.whatsapp.net", "hi", "sent", "3EB0OUT1"))
    updates = [{"key": {"id": "3EB0OUT1", "remoteJid": "15551230000@s.whatsapp.net", "fromMe": True},
                "update": {"status": 4}}]
    assert (await client.post("/webhook/whatsapp/incoming", json=hook(tenant, updates=updates),
                              headers=SECRET)).status_code == 200
    await wait_until(lambda: drained(queue))
    late = [{"key": updates[0]["key"], "update": {"status": 3}}]  # a late 'delivered' after 'read'
    await client.post("/webhook/whatsapp/incoming", json=hook(tenant, updates=late), headers=SECRET)
    await wait_until(lambda: drained(queue))
    page = await (await client.get("/api/whatsapp/conversations/15551230000@s.whatsapp.net/messages",
                                   headers=bearer(token))).get_json()
    assert [(m["id"], m["status"]) for m in page["messages"]] == [(sent["id"], "read")]


async def test_inbox_pages_and_is_tenant_scoped(wa):
    services, client, queue = wa
    tenant, _, token = await make_tenant(services)
    _, _, other_token = await make_tenant(services)
    messages = [wa_message(f"P{i}", text=f"n{i}") for i in range(5)]
    await client.post("/webhook/whatsapp/incoming", json=hook(tenant, *messages), headers=SECRET)
    await wait_until(lambda: drained(queue))
    jid = "15551230000@s.whatsapp.net"
    first = await (await client.get(f"/api/whatsapp/conversations/{jid}/messages?limit=3",
                                    headers=bearer(token))).get_json()
    assert len(first["messages"]) == 3 and first["next_before"] == first["messages"][-1]["id"]
    rest = await (await client.get(f"/api/whatsapp/conversations/{jid}/messages?limit=3&before={first['next_before']}",
                                   headers=bearer(token))).get_json()
    assert sorted(m["body"] for m in first["messages"] + rest["messages"]) == [f"n{i}" for i in range(5)]
    assert rest["next_before"] is None
    read = await client.post(f"/api/whatsapp/conversations/{jid}/read", headers=bearer(token))
    assert (await read.get_json())["marked"] == 5
    mine = await (await client.get("/api/whatsapp/conversations", headers=bearer(token))).get_json()
    assert mine["conversations"][0]["unread"] == 0
    theirs = await (await client.get("/api/whatsapp/conversations", headers=bearer(other_token))).get_json()
    assert theirs["conversations"] == [] and theirs["total"] == 0
    assert (await client.get(f"/api/whatsapp/conversations/{jid}/messages",
                             headers=bearer(other_token))).status_code == 404  # another tenant's conversation


async def test_redis_down_is_503_and_accepting_again_when_it_is_back(settings, own_redis):
    settings = settings.model_copy(update={"redis_url": own_redis.url})
    async with open_services(settings) as services:
        tenant, _, _ = await make_tenant(services)
        app = create_app(services)
        async with app.test_app() as test_app:
            client = test_app.test_client()
            url = "/webhook/whatsapp/incoming"
            assert (await client.post(url, json=hook(tenant, wa_message("D1")), headers=SECRET)).status_code == 200
            own_redis.stop()
            down = await client.post(url, json=hook(tenant, wa_message("D2")), headers=SECRET)
            assert down.status_code == 503 and "redis" in (await down.get_json())["error"]
            own_redis.start()
            await own_redis.wait_up()
            with trio.fail_after(15):
                while (await client.post(url, json=hook(tenant, wa_message("D2")), headers=SECRET)).status_code != 200:
                    await trio.sleep(0.05)
            queue = JobQueue(services.redis, services.keys)
            assert (await queue.stats())["queues"]["high"]["queued"] == 1  # D2 (the restart lost D1: no disk)


async def test_messages_arriving_together_are_written_in_one_transaction(services):
    tenant, _, _ = await make_tenant(services)
    batcher = InboundBatcher(services.db)
    messages = [parse(wa_message(f"B{i}", phone=f"1555{i % 4:07d}")) for i in range(20)]
    results: dict[int, str] = {}

    async def store(i: int) -> None:
        results[i] = (await batcher.store(tenant, messages[i])).outcome

    async with trio.open_nursery() as nursery:
        for i in range(20):
            nursery.start_soon(store, i)
    # Taking the lock yields once, so the 19 others have joined the pending list before the first writes.
    assert batcher.batches == 1 and set(results.values()) == {"stored"}
    assert (await batcher.store(tenant, messages[0])).outcome == "duplicate"  # already stored
    assert await count(services, tenant) == 20

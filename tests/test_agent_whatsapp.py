"""WhatsApp AI replies (auto_reply_mode ``ai``) end to end: webhook, worker, the agent's job against a local
OpenAI-compatible server built from the openai package's types, the reply through the bridge fake."""

from __future__ import annotations

import pytest
import trio
from pydantic import SecretStr
from sqlalchemy import select

from appliance.jobs.queue import JobQueue
from appliance.jobs.worker import Worker
from appliance.models import Lead, WhatsAppMessage
from appliance.services import open_services
from appliance.web.app import create_app
from tests.conftest import make_tenant
from tests.fake_bridge import FakeBridge
from tests.fakes.chat import FakeChat
from tests.helpers import wait_until
from tests.test_whatsapp import SECRET, drained, hook, set_reply, wa_message

FALLBACK = "Thanks for your message! We'll get back to you shortly."


@pytest.fixture
async def chat(nursery):
    fake = FakeChat()
    await nursery.start(fake.run)
    return fake


async def run_ai(settings, chat_url: str, bridge: FakeBridge, *posts: dict, retries: int = 2):
    """Post each webhook body (for one new tenant, mode ai), let the worker drain; returns what it needs."""
    settings = settings.model_copy(update={
        "baileys_url": bridge.url, "llm_base_url": chat_url + "/v1", "llm_api_key": SecretStr("sk-test"),
        "llm_model": "test-model", "llm_max_retries": retries, "llm_timeout": 5.0})
    async with open_services(settings) as services, trio.open_nursery() as roles:
        stop = trio.Event()
        await roles.start(Worker(services, concurrency=4, lease=30, grace=5).run, stop)
        tenant, _, _ = await make_tenant(services)
        await set_reply(services, tenant, "ai")
        queue = JobQueue(services.redis, services.keys)
        app = create_app(services)
        async with app.test_app() as test_app:
            client = test_app.test_client()
            for messages in posts:
                response = await client.post("/webhook/whatsapp/incoming", json=hook(tenant, *messages),
                                             headers=SECRET)
                assert response.status_code == 200
                await wait_until(lambda: drained(queue))
        rows = await services.db.run(lambda s: s.execute(
            select(WhatsAppMessage.direction, WhatsAppMessage.body, WhatsAppMessage.usage)
            .where(WhatsAppMessage.business_id == tenant).order_by(WhatsAppMessage.id)).all())
        leads = await services.db.run(lambda s: s.execute(
            select(Lead.name, Lead.phone, Lead.email, Lead.notes).where(Lead.business_id == tenant)).all())
        stop.set()
    return [tuple(r) for r in rows], [tuple(r) for r in leads]


async def test_an_inbound_message_gets_one_ai_reply_with_the_thread_as_context(settings, chat, bridge):
    chat.script.extend(["Hi Ada! We open at 9.", "You're welcome!"])
    empty = wa_message("A3") | {"message": {}}
    rows, _ = await run_ai(settings, chat.url, bridge, [wa_message("A1", text="When do you open?")],
                           [wa_message("A2", text="Thanks"), empty])
    assert [s["text"] for s in bridge.sent] == ["Hi Ada! We open at 9.", "You're welcome!"]
    assert len(chat.requests) == 2  # the empty message (no text: a reaction, a receipt) is not answered
    second = chat.requests[1]
    assert second["model"] == "test-model"
    assert [(m["role"], m["content"]) for m in second["messages"][1:]] == [
        ("user", "When do you open?"), ("assistant", "Hi Ada! We open at 9."), ("user", "Thanks")]
    assert "WhatsApp" in second["messages"][0]["content"] and "Ada" in second["messages"][0]["content"]
    replies = [r for r in rows if r[0] == "out"]
    assert [r[1] for r in replies] == ["Hi Ada! We open at 9.", "You're welcome!"]
    assert replies[0][2]["total_tokens"] == 62 and replies[0][2]["prompt_cached_tokens"] == 0


async def test_a_tool_call_updates_the_lead_then_the_model_answers(settings, chat, bridge):
    chat.script.extend([[("save_lead", {"name": "Ada Lovelace", "email": "ada@example.test",
                                        "notes": "wants a table for 4 on Friday"})],
                        "Done, Ada: a table for 4 on Friday."])
    rows, leads = await run_ai(settings, chat.url, bridge,
                               [wa_message("T1", text="I'm Ada Lovelace, ada@example.test, table for 4 Friday?")])
    assert leads == [("Ada Lovelace", "+15551230000", "ada@example.test", "wants a table for 4 on Friday")]
    assert [s["text"] for s in bridge.sent] == ["Done, Ada: a table for 4 on Friday."]
    first, second = chat.requests
    assert {t["function"]["name"] for t in first["tools"]} == {"lookup_caller", "save_lead", "take_message"}
    tool_message = second["messages"][-1]
    assert tool_message["role"] == "tool" and '"saved": true' in tool_message["content"]
    assert rows[-1][2]["total_tokens"] == 2 * 62


async def test_a_retried_overload_then_the_answer(settings, chat, bridge):
    chat.script.extend([503, 429, "Sorry for the wait, how can I help?"])
    await run_ai(settings, chat.url, bridge, [wa_message("O1", text="hello?")])
    assert len(chat.requests) == 3 and [s["text"] for s in bridge.sent] == ["Sorry for the wait, how can I help?"]


async def test_service_down_sends_the_fallback_once_and_redelivery_sends_nothing(settings, bridge):
    message = wa_message("D1", text="anyone there?")
    rows, _ = await run_ai(settings, "http://127.0.0.1:1", bridge, [message], [message], retries=1)
    assert [s["text"] for s in bridge.sent] == [FALLBACK]
    assert [r[:2] for r in rows] == [("in", "anyone there?"), ("out", FALLBACK)]

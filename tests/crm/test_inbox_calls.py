"""The WhatsApp inbox (conversation, unread, reply through the bridge), a lead's page with its thread and
calls, and the calls page with duration, frames and end reason."""

from __future__ import annotations

import time
import uuid

import pytest
from playwright.sync_api import expect
from sqlalchemy import update

from appliance.calls import store as calls
from appliance.models import Call
from tests.crm.conftest import Bench, Tenant

pytestmark = pytest.mark.slow  # the real appliance as child processes, and Chromium


def seed_conversation(bench: Bench, tenant: Tenant, phone: str, texts: list[str]) -> None:
    messages = [{"key": {"id": uuid.uuid4().hex.upper(), "remoteJid": f"{phone}@s.whatsapp.net", "fromMe": False},
                 "messageTimestamp": int(time.time()) - 60 + i, "pushName": "Grace Hopper",
                 "message": {"conversation": text}} for i, text in enumerate(texts)]
    answer = tenant.api.post("/webhook/whatsapp/incoming", headers={"X-Internal-Secret": "test-internal-secret"},
                             json={"tenantId": tenant.business_id, "payload": {"messages": messages}})
    assert answer.status_code == 200, answer.text
    deadline = time.monotonic() + 20  # the worker stores them
    while time.monotonic() < deadline:
        found = tenant.api.get(f"/api/whatsapp/conversations/{phone}@s.whatsapp.net/messages").json()
        if len(found.get("messages", [])) == len(texts):  # 404 until the first is stored
            return
        time.sleep(0.05)
    raise AssertionError("the worker did not store the messages")


def seed_call(bench: Bench, tenant: Tenant, phone: str, frames: tuple[int, int, int], reason: str) -> str:
    sid = "CA" + uuid.uuid4().hex

    async def seed(services):
        def write(session):
            calls.record_incoming(session, tenant.business_id, sid, phone, "+15550009999")
            calls.stream_started(session, sid, "MZ" + uuid.uuid4().hex)

        def end(session):
            calls.stream_ended(session, sid, *frames, reason)
            session.execute(update(Call).where(Call.call_sid == sid).values(  # what the voice agent leaves
                transcript=[{"role": "caller", "text": "Is the plumber free tomorrow?", "at": 1.5},
                            {"role": "agent", "text": "Yes, from nine.", "at": 3.25}],
                tool_calls=[{"name": "save_lead", "arguments": {"name": "Grace"}, "output": {"lead_id": 1}}],
                usage={"input_tokens": 120, "output_tokens": 40}))

        await services.db.run(write)
        await services.db.run(end)

    bench.seed(seed)
    return sid


def test_inbox_lead_thread_and_calls(page, bench, tenant):
    phone = "1555" + str(uuid.uuid4().int)[:7]
    seed_conversation(bench, tenant, phone, ["Hi, do you fix boilers?", "Mine is leaking"])
    seed_call(bench, tenant, f"+{phone}", (1500, 1480, 3), "caller hung up")
    seed_call(bench, tenant, "+15550000001", (10, 9, 0), "stream closed")  # another caller's

    p = page.page
    p.goto("/inbox")
    conversation = p.locator(f"#conversations [data-jid='{phone}@s.whatsapp.net']")
    conversation.wait_for()
    assert "2 unread" in conversation.inner_text() and "Grace Hopper" in conversation.inner_text()
    conversation.click()
    p.locator("#thread .msg", has_text="Mine is leaking").wait_for()
    expect(conversation).not_to_contain_text("unread")  # opened: read
    p.get_by_label("Message").fill("We can come tomorrow at 9")
    p.get_by_role("button", name="Send").click()
    p.locator("#thread .msg.out", has_text="tomorrow at 9").wait_for()
    assert bench.side.bridge.sent[-1]["text"] == "We can come tomorrow at 9"
    assert bench.side.bridge.sent[-1]["jid"] == f"{phone}@s.whatsapp.net"
    page.shoot("inbox")

    # The lead the conversation created: its thread and only its calls.
    leads = tenant.api.get("/api/leads", params={"q": phone}).json()["leads"]
    assert len(leads) == 1
    p.goto(f"/leads/{leads[0]['id']}")
    p.locator("#thread .msg", has_text="Hi, do you fix boilers?").wait_for()
    p.locator("#lead-calls tr[data-call]").first.wait_for()
    lead_calls = p.locator("#lead-calls").inner_text()
    assert "caller hung up" in lead_calls and "1500 / 1480" in lead_calls and "stream closed" not in lead_calls

    p.goto("/calls")
    p.locator("#calls-rows tr[data-call]").first.wait_for()
    row = p.locator("#calls-rows tr", has_text=f"+{phone}")
    cells = row.locator("td").all_inner_texts()
    assert cells[2] == "completed" and cells[5] == "1500 / 1480" and cells[6] == "3" and cells[7] == "caller hung up"
    assert cells[4].endswith("s")  # a duration, from stream start to end
    page.shoot("calls")

    # A call's own dialog: its numbers, and its transcript and tools where the agent recorded them.
    row.get_by_role("button", name=f"+{phone}").click()
    dialog = p.locator("#call-dialog")
    dialog.get_by_text("1500 in / 1480 out / 3 dropped").wait_for()
    assert "caller hung up" in dialog.inner_text()
    dialog.locator("#transcript", has_text="Yes, from nine.").wait_for()
    assert "save_lead" in dialog.locator("#tool-calls").inner_text()
    assert "input_tokens 120" in dialog.locator("#call-usage").inner_text()
    p.keyboard.press("Escape")
    dialog.wait_for(state="hidden")

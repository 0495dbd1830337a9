"""A whole call through the media role (real Hypercorn socket, Twilio-signed webhook) with the ``realtime``
agent against the GA fake: greets, converses, is interrupted, creates a lead by tool, leaves a transcript
that ``GET /api/calls/<id>`` returns, linked to the caller's lead."""

from __future__ import annotations

import base64
import json
from functools import partial

import trio
from pydantic import SecretStr
from sqlalchemy import select
from trio_websocket import serve_websocket

from appliance.media.serve import serve_media
from appliance.media.simulator import media_message, open_twilio_socket, start_message, stop_message
from appliance.models import Business, Lead
from tests.conftest import bearer, make_tenant
from tests.fakes.realtime import FakeRealtime, Turn
from tests.media_fakes import FRAME
from tests.test_media import AUTH_TOKEN, place_call


async def test_a_call_through_the_media_role_with_the_realtime_agent(settings, services, client, nursery):
    fake = FakeRealtime([
        Turn("Hello Dana, thanks for calling Acme. How can I help?", chunks=4, chunk_ms=100),
        Turn("Got it, I've saved that for you.", chunks=1,
             calls=[("save_lead", {"email": "dana@example.test", "notes": "kitchen quote"})]),
        Turn("Anything else?", chunks=1),
    ])
    server = await nursery.start(partial(serve_websocket, fake.handler, "127.0.0.1", 0, ssl_context=None))
    settings = settings.model_copy(update={
        "twilio_auth_token": SecretStr(AUTH_TOKEN), "voice_agent": "realtime", "shutdown_grace": 0.5,
        "realtime_url": f"ws://127.0.0.1:{server.port}/v1/realtime?model=gpt-realtime",
        "realtime_api_key": SecretStr("sk-test")})
    handle = await nursery.start(serve_media, settings, trio.Event())
    base = "http://127.0.0.1:" + handle.status().rsplit(":", 1)[1]
    business_id, _, token = await make_tenant(services)

    def prepare(session) -> int:
        session.get(Business, business_id).agent_greeting = "Hello, thanks for calling Acme."
        lead = Lead(business_id=business_id, phone="+15550001111", name="Dana", source="whatsapp")
        session.add(lead)
        session.flush()
        return lead.id

    lead_id = await services.db.run(prepare)
    stream_token = await place_call(base, business_id, "CAagent")
    async with open_twilio_socket(base.replace("http://", "ws://") + "/ws/twilio-media") as ws:
        await ws.send_message(start_message("CAagent", "MZagent", stream_token))
        with trio.fail_after(10):
            greeting = [json.loads(await ws.get_message()) for _ in range(8)]
        assert [m["event"] for m in greeting] == ["media", "mark"] * 4
        assert base64.b64decode(greeting[0]["media"]["payload"]) == bytes([0]) * 800
        first_mark = greeting[1]["mark"]["name"]
        await ws.send_message(json.dumps({"event": "mark", "streamSid": "MZagent", "mark": {"name": first_mark}}))
        for i in range(10):
            await ws.send_message(media_message("MZagent", FRAME, i))
        with trio.fail_after(10):
            await fake.until(lambda: fake.appended == 10)
        await fake.caller_speaks("Hi, I'd like a quote for my kitchen, my email is dana@example.test")
        with trio.fail_after(10):
            after = [json.loads(await ws.get_message())]
            while len([m for m in after if m["event"] == "mark"]) < 2:
                after.append(json.loads(await ws.get_message()))
        assert after[0] == {"event": "clear", "streamSid": "MZagent"}
        with trio.fail_after(10):
            await fake.until(lambda: len(fake.of_type("response.create")) == 2)
        await ws.send_message(stop_message("MZagent"))
        with trio.fail_after(10):
            while json.loads(await ws.get_message()) != {"event": "mark", "streamSid": "MZagent",
                                                         "mark": {"name": "end"}}:
                pass
    (truncate,) = fake.of_type("conversation.item.truncate")
    assert truncate.audio_end_ms == 100  # Twilio had played one 100 ms delta of the greeting
    assert "Hello, thanks for calling Acme." in fake.of_type("response.create")[0].response.instructions
    assert "Dana" in fake.received[0].session.instructions  # the caller's lead was known

    async def detail() -> dict:
        calls = (await (await client.get("/api/calls", headers=bearer(token))).get_json())["calls"]
        found = await client.get(f"/api/calls/{calls[0]['id']}", headers=bearer(token))
        return (await found.get_json())["call"]

    with trio.fail_after(10):
        call = await detail()
        while not call["transcript"] or call["end_reason"] is None:
            await trio.sleep(0.05)
            call = await detail()
    assert call["lead_id"] == lead_id and call["end_reason"] == "caller hung up"
    assert [t["role"] for t in call["transcript"]][:2] == ["agent", "caller"]
    assert call["transcript"][0].get("interrupted") is True
    assert call["tool_calls"][0]["name"] == "save_lead" and call["tool_calls"][0]["output"]["saved"] is True
    assert call["usage"]["total_tokens"] >= 2 * 160
    email = await services.db.run(lambda s: s.scalar(select(Lead.email).where(Lead.id == lead_id)))
    assert email == "dana@example.test"
    other = await make_tenant(services)
    assert (await client.get(f"/api/calls/{call['id']}", headers=bearer(other[2]))).status_code == 404

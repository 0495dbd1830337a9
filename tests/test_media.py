"""The media role on a real Hypercorn socket: Twilio-signed webhooks, a whole call, drain, realtime bridge."""

from __future__ import annotations

import json
import re

import httpx
import pytest
import trio
from pydantic import SecretStr
from trio_websocket import ConnectionClosed
from twilio.request_validator import RequestValidator

from appliance.media.serve import serve_media
from appliance.media.simulator import media_message, open_twilio_socket, start_message, stop_message
from appliance.media.twilio import compute_signature, signature_valid
from tests.conftest import bearer, make_tenant
from tests.media_fakes import FRAME

AUTH_TOKEN = "12345678901234567890123456789012"


@pytest.mark.parametrize("params", [
    {},
    {"CallSid": "CA123", "From": "+15551234567", "To": "+15557654321", "Caller": "+15551234567"},
    {"Digits": "1234#", "Body": "ünïcödé & spaces=yes"},
])
def test_signatures_agree_with_the_twilio_package(params):
    url = "https://voice.example.com/webhook/twilio/voice?business=7"
    ours = compute_signature(AUTH_TOKEN, url, list(params.items()))
    assert ours == RequestValidator(AUTH_TOKEN).compute_signature(url, params)
    assert RequestValidator(AUTH_TOKEN).validate(url, params, ours)
    assert not signature_valid("another-token", url, list(params.items()), ours)
    assert signature_valid(AUTH_TOKEN, url.replace(".com/", ".com:443/"), list(params.items()), ours)


@pytest.fixture
async def media(settings, nursery):
    settings = settings.model_copy(update={"twilio_auth_token": SecretStr(AUTH_TOKEN), "shutdown_grace": 0.5})
    stop = trio.Event()
    handle = await nursery.start(serve_media, settings, stop)
    port = int(handle.status().rsplit(":", 1)[1])
    return settings, stop, f"http://127.0.0.1:{port}"


def signed(url: str, form: dict[str, str], token: str = AUTH_TOKEN) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, form)}


async def place_call(base: str, business_id: int, call_sid: str) -> str:
    """The voice webhook as Twilio calls it; returns the stream token from the TwiML."""
    url = f"{base}/webhook/twilio/voice?business={business_id}"
    form = {"CallSid": call_sid, "From": "+15550001111", "To": "+15550002222", "CallStatus": "ringing"}
    async with httpx.AsyncClient() as http:
        response = await http.post(url, data=form, headers=signed(url, form))
    assert response.status_code == 200, response.text
    host = base.removeprefix("http://")
    assert f'<Stream url="ws://{host}/ws/twilio-media">' in response.text
    return re.search(r'<Parameter name="token" value="([^"]+)"/>', response.text).group(1)


async def test_voice_webhook_needs_twilios_signature(media, services):
    _, _, base = media
    business_id, _, _ = await make_tenant(services)
    url = f"{base}/webhook/twilio/voice?business={business_id}"
    form = {"CallSid": "CAforged", "From": "+15550001111"}
    async with httpx.AsyncClient() as http:
        assert (await http.post(url, data=form)).status_code == 403
        forged = await http.post(url, data=form, headers=signed(url, form, token="not-the-token"))
        assert forged.status_code == 403 and "X-Twilio-Signature" in forged.json()["error"]
        tampered = await http.post(url, data=form | {"From": "+1999"}, headers=signed(url, form))
        assert tampered.status_code == 403
    await place_call(base, business_id, "CAsigned")


async def test_status_callback_moves_the_call_row(media, services, client):
    _, _, base = media
    business_id, _, token = await make_tenant(services)
    await place_call(base, business_id, "CAstatus")
    url = f"{base}/webhook/twilio/status"
    form = {"CallSid": "CAstatus", "CallStatus": "completed", "CallDuration": "42"}
    async with httpx.AsyncClient() as http:
        assert (await http.post(url, data=form, headers=signed(url, form))).status_code == 204
    body = await (await client.get("/api/calls", headers=bearer(token))).get_json()
    calls = [(c["call_sid"], c["status"], c["duration_seconds"]) for c in body["calls"]]
    assert calls == [("CAstatus", "completed", 42.0)]


async def test_a_whole_call_echoes_and_is_recorded_then_listed(media, services, client):
    _, _, base = media
    business_id, _, token = await make_tenant(services)
    other_business, _, other_token = await make_tenant(services)
    stream_token = await place_call(base, business_id, "CAwhole")
    ws_url = base.replace("http://", "ws://") + "/ws/twilio-media"
    async with open_twilio_socket(ws_url) as ws:
        await ws.send_message(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await ws.send_message(start_message("CAwhole", "MZwhole", stream_token))
        for i in range(50):
            await ws.send_message(media_message("MZwhole", FRAME, i))
        with trio.fail_after(10):
            echoed = [json.loads(await ws.get_message()) for _ in range(50)]
        assert {m["event"] for m in echoed} == {"media"} and echoed[0]["media"]["payload"] == FRAME
        await ws.send_message(stop_message("MZwhole"))
        with trio.fail_after(10):
            assert json.loads(await ws.get_message()) == {"event": "mark", "streamSid": "MZwhole",
                                                          "mark": {"name": "end"}}
            with pytest.raises(ConnectionClosed) as closed:
                await ws.get_message()
        assert closed.value.reason.code == 1000
    body = await (await client.get("/api/calls", headers=bearer(token))).get_json()
    (call,) = body["calls"]
    assert (call["call_sid"], call["frames_in"], call["frames_out"], call["frames_dropped"]) == ("CAwhole", 50, 50, 0)
    assert call["end_reason"] == "caller hung up" and call["status"] == "completed"
    assert (await (await client.get("/api/calls", headers=bearer(other_token))).get_json())["calls"] == []
    assert other_business != business_id


async def test_shutdown_ends_live_calls_after_the_grace_and_refuses_new_ones(media, services):
    settings, stop, base = media
    business_id, _, _ = await make_tenant(services)
    stream_token = await place_call(base, business_id, "CAdrain")
    ws_url = base.replace("http://", "ws://") + "/ws/twilio-media"
    async with open_twilio_socket(ws_url) as ws:
        await ws.send_message(start_message("CAdrain", "MZd", stream_token))
        await ws.send_message(media_message("MZd", FRAME))
        with trio.fail_after(5):
            assert json.loads(await ws.get_message())["event"] == "media"  # the call is live
        stop.set()
        async with httpx.AsyncClient() as http:  # new calls are refused while the live one drains
            with trio.fail_after(5):
                while (await http.get(base + "/health")).status_code != 503:
                    await trio.sleep(0.01)
        started = trio.current_time()
        with trio.fail_after(5):
            assert json.loads(await ws.get_message()) == {"event": "mark", "streamSid": "MZd", "mark": {"name": "end"}}
            with pytest.raises(ConnectionClosed) as closed:
                await ws.get_message()
        assert closed.value.reason.code == 1000 and closed.value.reason.reason == "shutdown"
        assert trio.current_time() - started <= settings.shutdown_grace + 1

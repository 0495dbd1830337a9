"""GET|PATCH /api/settings: the business's own settings, validated field by field, scoped to its tenant."""

from __future__ import annotations

from tests.conftest import bearer, make_tenant


async def test_settings_read_change_and_stay_with_their_business(services, client):
    business_a, _, token_a = await make_tenant(services)
    _, _, token_b = await make_tenant(services)

    got = await client.get("/api/settings", headers=bearer(token_a))
    assert got.status_code == 200
    settings = (await got.get_json())["settings"]
    assert settings["business_id"] == business_a
    assert settings["timezone"] == "UTC" and settings["auto_reply_mode"] == "off"

    patch = {"timezone": "Asia/Jerusalem", "auto_reply_mode": "fixed", "auto_reply_text": "Thanks!",
             "voice_agent": "realtime", "agent_greeting": "Hello from Acme", "agent_tools": ["lookup_caller"],
             "transfer_number": "+972 50-123-4567"}
    changed = await client.patch("/api/settings", json=patch, headers=bearer(token_a))
    assert changed.status_code == 200
    body = (await changed.get_json())["settings"]
    assert body["timezone"] == "Asia/Jerusalem" and body["transfer_number"] == "+972501234567"
    reread = (await (await client.get("/api/settings", headers=bearer(token_a))).get_json())["settings"]
    assert reread == body

    other = (await (await client.get("/api/settings", headers=bearer(token_b))).get_json())["settings"]
    assert other["timezone"] == "UTC" and other["auto_reply_mode"] == "off"


async def test_bad_settings_are_422_naming_the_field_and_change_nothing(services, client):
    _, _, token = await make_tenant(services)
    for body, field in (({"timezone": "Mars/Olympus"}, "timezone"), ({"auto_reply_mode": "hook"}, "auto_reply_mode"),
                        ({"transfer_number": "call me"}, "transfer_number"), ({"colour": "red"}, "colour")):
        response = await client.patch("/api/settings", json=body, headers=bearer(token))
        assert response.status_code == 422, body
        error = await response.get_json()
        assert error["success"] is False and field in error["error"]
    settings = (await (await client.get("/api/settings", headers=bearer(token))).get_json())["settings"]
    assert settings["timezone"] == "UTC" and settings["auto_reply_mode"] == "off"
    assert (await client.patch("/api/settings", json=[1], headers=bearer(token))).status_code == 400
    assert (await client.get("/api/settings")).status_code == 401

"""Every Baileys fixture (tests/fixtures/baileys, built by the real Baileys package) through the real webhook
and worker: the rows stored, the lead, the conversation, and that only real messages get the auto-reply."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import select

from appliance.models import Lead, WhatsAppIdentity, WhatsAppMessage
from tests.conftest import bearer, make_tenant
from tests.helpers import wait_until
from tests.test_whatsapp import SECRET, drained, set_reply, wa  # noqa: F401 - fixtures

OUT = Path(__file__).parent / "fixtures" / "baileys" / "out"
FIXTURES = json.loads((OUT / "messages.json").read_text())["fixtures"]
UPDATES = json.loads((OUT / "updates.json").read_text())
EVENT_NAMES = {f["name"] for f in FIXTURES if "event" in f["expect"]} | {"edit_target", "original_after_events"}
DANA, YOSSI, NOA = "+972541234567", "+972547654321", "+972529998877"
URL = "/webhook/whatsapp/incoming"


@pytest.fixture
def wa_settings(settings, bridge):  # the fake bridge, and a key to sign media links with
    return settings.model_copy(update={"baileys_url": bridge.url,
                                       "encryption_key": SecretStr(Fernet.generate_key().decode())})


def fixture(name: str, form: str = "live", generation: str = "7") -> dict[str, Any]:
    return next(f["message"] for f in FIXTURES if (f["name"], f["form"], f["generation"]) == (name, form, generation))


async def post(client, tenant: int, *messages: dict, updates: list | None = None, **extra: Any) -> None:
    payload: dict[str, Any] = {"messages": list(messages), **extra}
    if updates is not None:
        payload["updates"] = updates
    response = await client.post(URL, json={"tenantId": tenant, "payload": payload}, headers=SECRET)
    assert response.status_code == 200, await response.get_json()


async def rows(services, tenant: int) -> dict[str, WhatsAppMessage]:
    """The inbound messages by provider id (replies are checked at the bridge)."""

    def q(session) -> dict[str, WhatsAppMessage]:
        found = session.scalars(select(WhatsAppMessage).where(WhatsAppMessage.business_id == tenant,
                                                              WhatsAppMessage.direction == "in")).all()
        for row in found:
            session.expunge(row)
        return {row.provider_message_id: row for row in found}

    return await services.db.run(q)


async def leads(services, tenant: int) -> dict[str, int]:
    def q(session) -> dict[str, int]:
        return {lead.phone: lead.id for lead in session.scalars(select(Lead).where(Lead.business_id == tenant))}

    return await services.db.run(q)


@pytest.mark.parametrize(("form", "generation"), [("live", "7"), ("object", "7"), ("webMessageInfo", "7"),
                                                  ("live", "6.7")])
async def test_every_message_type_is_stored_as_a_crm_user_expects(wa, bridge, form, generation):  # noqa: F811
    services, client, queue = wa
    tenant, _, token = await make_tenant(services)
    await set_reply(services, tenant, "fixed", "Thanks, we will answer soon")
    chosen = [f for f in FIXTURES if (f["form"], f["generation"]) == (form, generation)
              and f["name"] not in EVENT_NAMES and not f["expect"].get("group")]
    for start in range(0, len(chosen), 8):  # as a bridge posts them: a few at a time
        await post(client, tenant, *[f["message"] for f in chosen[start:start + 8]])
    await wait_until(lambda: drained(queue), timeout=60)
    stored = await rows(services, tenant)
    replied = {s["jid"] for s in bridge.sent if s["tenantId"] == tenant}
    expected_replies = 0
    for f in chosen:
        expect, key = f["expect"], f["message"]["key"]
        row = stored.get(key["id"])
        if expect.get("ignored") or expect.get("own"):
            assert row is None, f["name"]  # technical messages add nothing; own messages are not stored by default
            continue
        assert row is not None, f["name"]
        if expect.get("placeholder"):
            assert row.placeholder and row.body is None, f["name"]
            continue
        assert (row.kind, row.placeholder, row.direction) == (expect["kind"], False, "in"), f["name"]
        if expect["body"]:
            assert expect["body"] in row.body, f["name"]
        assert row.body, f["name"]  # media without caption still shows a typed placeholder
        expected_replies += expect["kind"] != "call"
    out = [s for s in bridge.sent if s["tenantId"] == tenant]
    assert len(out) == expected_replies  # one reply per real message, none for anything else
    assert replied <= {"972541234567@s.whatsapp.net", "972547654321@s.whatsapp.net", "987654321098765@lid",
                       "123456789012345@lid"}  # a LID with no known phone is answered at the LID
    assert DANA in await leads(services, tenant)
    body = await (await client.get("/api/whatsapp/conversations", headers=bearer(token))).get_json()
    jids = {c["jid"] for c in body["conversations"]}
    assert "972541234567@s.whatsapp.net" in jids
    if form != "webMessageInfo":  # WebMessageInfo.toObject drops remoteJidAlt: nothing tells the LID's phone
        assert "123456789012345@lid" not in jids  # Dana's LID messages joined her phone's conversation
    if generation == "7":
        document = stored[fixture("document_with_caption", form, generation)["key"]["id"]]
        assert document.media["file_name"] == "Invoice 1042.pdf" and document.media["size"] == 201733


async def test_reactions_edits_and_deletes_change_their_message_and_never_get_a_reply(wa, bridge):  # noqa: F811
    services, client, queue = wa
    tenant, _, token = await make_tenant(services)
    await set_reply(services, tenant, "fixed", "Thanks")
    target = fixture("edit_target")
    target_id = target["key"]["id"]

    async def step(*messages: dict, updates: list | None = None) -> WhatsAppMessage:
        await post(client, tenant, *messages, updates=updates)
        await wait_until(lambda: drained(queue), timeout=30)
        return (await rows(services, tenant))[target_id]

    row = await step(target)
    assert row.body == "I need 3 chairs" and len(bridge.sent) == 1
    row = await step(fixture("reaction"))
    assert row.meta["reactions"] == {DANA: "👍"}
    row = await step(fixture("reaction_removed", generation="6.7"))
    assert row.meta["reactions"] == {}
    row = await step(fixture("edit", form="object"))
    assert (row.body, row.meta["history"][0]["body"]) == ("I need 4 chairs", "I need 3 chairs")
    # The same edit again, as messages.update carries it: nothing changes.
    edit_update = next(e for e in UPDATES["protocolEvents"] if e["name"] == "edit")["data"][0]
    row = await step(updates=[edit_update])
    assert row.body == "I need 4 chairs" and len(row.meta["history"]) == 1
    row = await step(fixture("edit_wrapped"))
    assert row.body == "I need 5 chairs" and [h["body"] for h in row.meta["history"]] == [
        "I need 3 chairs", "I need 4 chairs"]
    row = await step(fixture("delete", form="webMessageInfo"))
    assert row.deleted_at is not None
    assert len(await rows(services, tenant)) == 1 and len(bridge.sent) == 1  # no rows added, no replies
    thread = await (await client.get("/api/whatsapp/conversations/972541234567@s.whatsapp.net/messages",
                                     headers=bearer(token))).get_json()
    (shown,) = [m for m in thread["messages"] if m["direction"] == "in"]
    assert (shown["body"], shown["deleted"], shown["edited"], shown["history"]) == ("message deleted", True, True, [])


async def test_events_before_their_message_apply_when_it_arrives(wa, bridge):  # noqa: F811
    services, client, queue = wa
    tenant, _, _ = await make_tenant(services)
    await set_reply(services, tenant, "fixed", "Thanks")
    await post(client, tenant, fixture("edit_before_original"), fixture("reaction_before_original"))
    await wait_until(lambda: drained(queue), timeout=30)
    assert await rows(services, tenant) == {} and bridge.sent == []
    await post(client, tenant, fixture("original_after_events"))
    await wait_until(lambda: drained(queue), timeout=30)
    (row,) = (await rows(services, tenant)).values()
    assert (row.body, row.meta["history"][0]["body"]) == ("Corrected text", "Original text")
    assert row.meta["reactions"] == {NOA: "❤️"}
    assert len(bridge.sent) == 1  # the original is a real message: one reply


async def test_updates_as_baileys_emits_them_apply_to_their_message(wa, bridge):  # noqa: F811
    services, client, queue = wa
    tenant, _, _ = await make_tenant(services)
    await set_reply(services, tenant, "fixed", "Thanks")
    target = fixture("edit_target")
    emitted = {e["name"]: e["data"][0] for e in UPDATES["protocolEvents"]}
    await post(client, tenant, target)
    await wait_until(lambda: drained(queue), timeout=30)
    await post(client, tenant, updates=[emitted["reaction"], emitted["edit"]])  # messages.reaction, messages.update
    await wait_until(lambda: drained(queue), timeout=30)
    row = (await rows(services, tenant))[target["key"]["id"]]
    assert (row.body, row.meta["reactions"]) == ("I need 4 chairs", {DANA: "👍"})
    await post(client, tenant, updates=[emitted["delete"], emitted["delete"]])
    await wait_until(lambda: drained(queue), timeout=30)
    assert (await rows(services, tenant))[target["key"]["id"]].deleted_at is not None
    assert len(bridge.sent) == 1


async def test_placeholder_never_blocks_the_real_message_and_is_filled_in_once(wa, bridge):  # noqa: F811
    services, client, queue = wa
    tenant, _, _ = await make_tenant(services)
    await set_reply(services, tenant, "fixed", "Thanks")
    steps = {s["step"]: s for s in UPDATES["placeholderSequence"]}
    stub, real = steps["placeholder"]["message"], steps["real"]["message"]
    await post(client, tenant, stub, updates=[steps["placeholder_update"]["update"]])
    await wait_until(lambda: drained(queue), timeout=30)
    (row,) = (await rows(services, tenant)).values()
    assert row.placeholder and bridge.sent == []
    for message in (real, steps["real_object_form"]["message"], real, stub):  # redeliveries of both
        await post(client, tenant, message)
        await wait_until(lambda: drained(queue), timeout=30)
    (row,) = (await rows(services, tenant)).values()
    assert (row.placeholder, row.body, row.kind) == (False, "The text that failed to decrypt first", "text")
    assert len(bridge.sent) == 1
    missed = steps["missed_call_stub"]["message"]
    await post(client, tenant, missed)
    await wait_until(lambda: drained(queue), timeout=30)
    assert (await rows(services, tenant))[missed["key"]["id"]].body == "[missed voice call]"
    assert len(bridge.sent) == 1  # a call notice is shown, not answered


async def test_a_lid_conversation_merges_into_the_phone_once_the_phone_is_learnt(wa, bridge):  # noqa: F811
    services, client, queue = wa
    tenant, _, token = await make_tenant(services)
    lid_only = fixture("lid_only")
    await post(client, tenant, lid_only)
    await wait_until(lambda: drained(queue), timeout=30)
    row = (await rows(services, tenant))[lid_only["key"]["id"]]
    assert (row.jid, row.lead_id) == ("987654321098765@lid", None)
    # A later message from the same person's phone, naming the LID beside it (Baileys 7 remoteJidAlt).
    await post(client, tenant, fixture("pn_with_lid"))
    await wait_until(lambda: drained(queue), timeout=30)
    people = await leads(services, tenant)
    stored = await rows(services, tenant)
    assert {r.jid for r in stored.values()} == {"972547654321@s.whatsapp.net"}
    assert {r.lead_id for r in stored.values()} == {people[YOSSI]}
    conversations = await (await client.get("/api/whatsapp/conversations", headers=bearer(token))).get_json()
    assert [(c["jid"], c["unread"]) for c in conversations["conversations"]] == [("972547654321@s.whatsapp.net", 2)]
    by_lid = await (await client.get("/api/whatsapp/conversations/987654321098765@lid/messages",
                                     headers=bearer(token))).get_json()
    assert [m["body"] for m in by_lid["messages"]] == ["Writing from my phone number", "No phone on this one"]


async def test_lid_mapping_events_and_6_7_keys_teach_the_map(wa, bridge):  # noqa: F811
    services, client, queue = wa
    tenant, _, _ = await make_tenant(services)
    lid_only = fixture("lid_only")
    await post(client, tenant, lid_only, lidMappings=[{"lid": "987654321098765@lid",
                                                       "pn": "972547654321@s.whatsapp.net"}])
    await post(client, tenant, fixture("group_lid_participant", generation="6.7"))  # participantPn, in a group
    await wait_until(lambda: drained(queue), timeout=30)

    def mapped(session) -> dict[str, str]:
        found = session.scalars(select(WhatsAppIdentity).where(WhatsAppIdentity.business_id == tenant))
        return {i.lid: i.phone for i in found}

    assert await services.db.run(mapped) == {"987654321098765@lid": YOSSI, "123456789012345@lid": DANA}
    stored = await rows(services, tenant)
    assert stored[lid_only["key"]["id"]].jid == "972547654321@s.whatsapp.net"
    bad = await client.post(URL, json={"tenantId": tenant, "payload": {"lidMappings": [{"lid": "x", "pn": "y"}]}},
                            headers=SECRET)
    assert bad.status_code == 400 and "lidMappings" in (await bad.get_json())["error"]


async def test_inbound_media_is_fetched_through_the_bridge_into_data_dir(wa, bridge, wa_settings):  # noqa: F811
    services, client, queue = wa
    tenant, _, token = await make_tenant(services)
    image, voice = fixture("image_caption"), fixture("voice_note")
    bridge.media[(str(tenant), image["key"]["id"])] = ("image/jpeg", b"\xff\xd8\xff\xe0 a jpeg")
    await post(client, tenant, image, voice)  # the bridge has no file for the voice note: 404
    await wait_until(lambda: drained(queue), timeout=30)
    stored = await rows(services, tenant)
    path = stored[image["key"]["id"]].media["path"]
    assert path.startswith(f"{tenant}/whatsapp/") and path.endswith(".jpg")
    assert (wa_settings.data_dir / path).read_bytes() == b"\xff\xd8\xff\xe0 a jpeg"
    assert stored[voice["key"]["id"]].media["unavailable"] is True
    assert sorted(bridge.media_requests) == sorted(f"/media/{tenant}/{m['key']['id']}" for m in (image, voice))
    thread = await (await client.get("/api/whatsapp/conversations/972541234567@s.whatsapp.net/messages",
                                     headers=bearer(token))).get_json()
    shown = {m["provider_message_id"]: m for m in thread["messages"]}
    assert shown[image["key"]["id"]]["media"]["path"] == path
    assert shown[voice["key"]["id"]]["media"]["duration"] == 7 and shown[voice["key"]["id"]]["media"]["url"] is None
    url = shown[image["key"]["id"]]["media"]["url"]
    assert url.startswith("/api/files/")
    served = await client.get(url, headers=bearer(token))
    assert served.status_code == 200 and await served.get_data() == b"\xff\xd8\xff\xe0 a jpeg"
    _, _, other = await make_tenant(services)
    assert (await client.get(url, headers=bearer(other))).status_code == 403  # another business's file

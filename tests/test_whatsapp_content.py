"""The Baileys message parser over fixtures that the real Baileys package built (tests/fixtures/baileys)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appliance.whatsapp import content, incoming

OUT = Path(__file__).parent / "fixtures" / "baileys" / "out"
MESSAGES = json.loads((OUT / "messages.json").read_text())
UPDATES = json.loads((OUT / "updates.json").read_text())
WAPROTO = json.loads((OUT / "waproto.json").read_text())
FIXTURES = MESSAGES["fixtures"]
IDS = [f"{f['name']}-{f['form']}-{f['generation']}" for f in FIXTURES]


def test_fixtures_come_from_the_newest_baileys_7_release_candidate() -> None:
    assert MESSAGES["meta"]["baileys"] == "7.0.0-rc14"
    assert len({f["name"] for f in FIXTURES}) >= 60
    assert {f["form"] for f in FIXTURES} == {"live", "object", "webMessageInfo"}
    assert {f["generation"] for f in FIXTURES} == {"7", "6.7"}


def test_every_waproto_message_field_is_classified() -> None:
    """WAProto's Message fields are the list: each is read, a wrapper, an event, or technical."""
    fields = WAPROTO["messageFields"]
    wrappers = {name for name, kind in fields.items() if kind == "FutureProofMessage"} | {"deviceSentMessage"}
    assert content.WRAPPERS == wrappers
    classified = set(content.READERS) | content.WRAPPERS | content.EVENT_FIELDS | content.TECHNICAL
    assert set(fields) - classified == set()
    assert classified - set(fields) == set()
    assert not set(content.READERS) & (content.WRAPPERS | content.EVENT_FIELDS | content.TECHNICAL)


@pytest.mark.parametrize("fixture", FIXTURES, ids=IDS)
def test_fixture_parses_as_a_crm_user_expects(fixture: dict) -> None:
    expect = fixture["expect"]
    parsed = incoming.parse(fixture["message"])
    assert parsed.provider_id == fixture["message"]["key"]["id"]
    if "event" in expect:
        assert parsed.event is not None and parsed.content is None
        assert parsed.event.type == expect["event"]
        assert parsed.event.target_id == expect["target"]
        if "body" in expect:
            assert parsed.event.body == expect["body"]
        if "emoji" in expect:
            assert parsed.event.emoji == expect["emoji"]
    elif expect.get("placeholder"):
        assert parsed.placeholder and parsed.content is None
    elif expect.get("ignored"):
        assert parsed.ignored and parsed.content is None and parsed.event is None
    else:
        assert parsed.content is not None, parsed
        assert parsed.content.kind == expect["kind"]
        assert parsed.content.body == expect["body"]
        assert parsed.content.summary  # the inbox always has something to show
        if expect["body"]:
            assert expect["body"] in parsed.content.summary
        if "reply_to" in expect:
            assert parsed.content.reply_to == expect["reply_to"]
    assert parsed.from_me == bool(expect.get("own"))
    assert parsed.scope == ("group" if expect.get("group") else "direct")
    # WebMessageInfo.toObject keeps only WAProto's key fields (no remoteJidAlt): the LID alone is left.
    if "phone" in expect and fixture["form"] != "webMessageInfo":
        assert (parsed.sender.phone, parsed.sender.lid) == (expect["phone"], expect["lid"])


@pytest.mark.parametrize("fixture", FIXTURES, ids=IDS)
def test_reply_decision_agrees_with_baileys_is_real_message(fixture: dict) -> None:
    parsed = incoming.parse(fixture["message"])
    real = fixture["baileys"]["isRealMessage"] and parsed.scope == "direct" and not parsed.from_me
    # Baileys counts a placeholderMessage and a technical protocol message with content as "real";
    # neither has anything to answer.
    if parsed.placeholder or parsed.ignored:
        assert not incoming.deserves_reply(parsed)
    else:
        assert incoming.deserves_reply(parsed) == real


def _by(name: str, form: str = "live", generation: str = "7") -> dict:
    return next(f["message"] for f in FIXTURES if (f["name"], f["form"], f["generation"]) == (name, form, generation))


def test_media_metadata_in_every_wire_form() -> None:
    for form in ("live", "object", "webMessageInfo"):
        document = incoming.parse(_by("document_with_caption", form)).content
        assert document.media == content.Media(
            type="document", mimetype="application/pdf", size=201733, file_name="Invoice 1042.pdf"
        )
        voice = incoming.parse(_by("voice_note", form)).content
        assert (voice.kind, voice.media.duration, voice.media.size) == ("voice", 7, 17920)
        assert voice.summary == "[voice note 0:07]"
    deep = incoming.parse(_by("view_once_v2_extension_voice")).content
    assert deep.kind == "voice" and deep.details == {"view_once": True}
    note = incoming.parse(_by("ptv_round_video")).content
    assert (note.kind, note.media.duration, note.summary) == ("video_note", 9, "[video note 0:09]")
    assert incoming.parse(_by("image_no_caption")).content.summary == "[photo]"


def test_locations_contacts_and_polls_read_as_text() -> None:
    location = incoming.parse(_by("location")).content
    assert location.summary == "[location] Dizengoff Center, Dizengoff St 50, Tel Aviv (32.0853, 34.7818)"
    contacts = incoming.parse(_by("contacts_array")).content
    assert contacts.summary == "[contacts] Avi Cohen +972501112233, Rina Levi +972502223344"
    poll = incoming.parse(_by("poll")).content
    assert poll.summary == "[poll] Which day suits you?: Sunday / Monday"
    assert incoming.parse(_by("poll_v4")).content.details["options"] == ["A"]


def test_lid_identity_in_both_generations() -> None:
    for generation in ("7", "6.7"):
        parsed = incoming.parse(_by("lid_with_phone", generation=generation))
        assert parsed.chat_jid == "123456789012345@lid"
        assert (parsed.sender.lid, parsed.sender.phone) == ("123456789012345@lid", "+972541234567")
        assert parsed.sender.phone_jid == "972541234567@s.whatsapp.net"
    group = incoming.parse(_by("group_lid_participant", generation="6.7"))
    assert (group.scope, group.sender.lid, group.sender.phone) == (
        "group",
        "123456789012345@lid",
        "+972541234567",
    )
    alone = incoming.parse(_by("lid_only"))
    assert (alone.sender.lid, alone.sender.phone) == ("987654321098765@lid", None)
    pn = incoming.parse(_by("pn_with_lid"))
    assert (pn.sender.jid, pn.sender.lid, pn.sender.phone) == (
        "972547654321@s.whatsapp.net",
        "987654321098765@lid",
        "+972547654321",
    )


def test_jids_with_devices_and_hosted_servers_normalise() -> None:
    assert incoming.normalize_jid("972541234567:12@s.whatsapp.net") == "972541234567@s.whatsapp.net"
    assert incoming.normalize_jid("123456789012345:3@hosted.lid") == "123456789012345@lid"
    assert incoming.normalize_jid("") is None and incoming.normalize_jid(None) is None


def test_placeholder_then_real_message_with_the_same_id() -> None:
    steps = {s["step"]: s for s in UPDATES["placeholderSequence"]}
    stub = incoming.parse(steps["placeholder"]["message"])
    real = incoming.parse(steps["real"]["message"])
    assert stub.placeholder and not incoming.deserves_reply(stub)
    assert real.provider_id == stub.provider_id and real.content.body == "The text that failed to decrypt first"
    assert incoming.deserves_reply(real)
    assert incoming.update_events(steps["placeholder_update"]["update"]) == []
    missed = incoming.parse(steps["missed_call_stub"]["message"])
    assert missed.content.summary == "[missed voice call]" and not incoming.deserves_reply(missed)


def test_messages_update_events_from_baileys_process_message() -> None:
    events = {e["name"]: e for e in UPDATES["protocolEvents"]}
    edit = incoming.update_events(events["edit"]["data"][0])
    assert [(e.type, e.body) for e in edit] == [("edit", "I need 4 chairs")]
    delete = incoming.update_events(events["delete"]["data"][0])
    assert [(e.type, e.target_id) for e in delete] == [("delete", events["delete"]["data"][0]["key"]["id"])]
    reaction = incoming.update_events(events["reaction"]["data"][0])
    assert [(e.type, e.emoji) for e in reaction] == [("reaction", "👍")]
    statuses = [incoming.update_events(s) for s in UPDATES["statuses"]]
    assert statuses == [[], [], []]  # statuses are not events on content


def test_long_objects_and_enum_names() -> None:
    assert (
        content.as_int({"low": 355216689, "high": 418, "unsigned": False}) == (418 << 32) + 355216689 == 1795651546417
    )
    assert content.as_int({"low": -1, "high": -1, "unsigned": False}) == -1
    assert content.as_int("1795651546417") == 1795651546417
    assert (
        content.as_enum("MESSAGE_EDIT", incoming.PROTOCOL_NAMES) == 14
        and content.as_enum(0, incoming.PROTOCOL_NAMES) == 0
    )
    assert (
        content.timestamp({"low": 1764118740, "high": 0, "unsigned": True}).isoformat() == "2025-11-26T00:59:00+00:00"
    )


def test_a_key_without_id_is_refused() -> None:
    with pytest.raises(ValueError, match="key.id"):
        incoming.parse({"key": {"remoteJid": "1@s.whatsapp.net"}})


def test_events_name_their_actor_and_survive_json() -> None:
    edit = incoming.parse(_by("edit", generation="6.7")).event
    assert edit.actor.phone == "+972541234567" and not edit.by_me
    assert incoming.event_from_json(json.loads(json.dumps(incoming.event_to_json(edit)))) == edit
    events = {e["name"]: e for e in UPDATES["protocolEvents"]}
    (reaction,) = incoming.update_events(events["reaction"]["data"][0])
    assert (reaction.actor.lid, reaction.actor.phone) == ("123456789012345@lid", "+972541234567")
    (update_edit,) = incoming.update_events(events["edit"]["data"][0])
    assert update_edit.content.kind == "text" and update_edit.actor.phone == "+972541234567"

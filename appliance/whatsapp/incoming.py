"""One Baileys message or update as the CRM sees it: who, which conversation, and whether it is a message,
an event on another message, a placeholder or nothing a person reads. Pure: no I/O.

Input is one message as a bridge posts it from ``messages.upsert`` (or one ``messages.update`` /
``messages.reaction`` item), keys of both Baileys generations: 7.x ``remoteJidAlt``/``participantAlt``,
6.7.x ``senderPn``/``senderLid``/``participantPn``/``participantLid``. ``parse`` gives an ``Incoming`` with
exactly one of ``content`` (see ``content``), ``event`` (edit, delete, reaction, poll vote),
``placeholder`` (Baileys could not decrypt it yet; the real message follows with the same id) or ``ignored``
(a technical message, with the reason). ``deserves_reply`` is the one decision "does this get an auto-reply".
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass, replace
from typing import Any

from appliance.whatsapp.content import (
    EVENT_FIELDS,
    Content,
    Media,
    as_enum,
    content_key,
    content_of,
    text_of,
    timestamp,
    unwrap,
)

NO_REPLY_KINDS = frozenset({"call"})  # a call notice is shown, not answered (Baileys: not a real message)
STUB_REVOKE, STUB_CIPHERTEXT = 1, 2
MISSED_CALL_STUBS = {40: "voice", 41: "video", 45: "voice", 46: "video"}
STUB_NAMES = {
    "REVOKE": 1,
    "CIPHERTEXT": 2,
    "CALL_MISSED_VOICE": 40,
    "CALL_MISSED_VIDEO": 41,
    "CALL_MISSED_GROUP_VOICE": 45,
    "CALL_MISSED_GROUP_VIDEO": 46,
}
PROTOCOL_REVOKE, PROTOCOL_EDIT = 0, 14
PROTOCOL_NAMES = {"REVOKE": 0, "MESSAGE_EDIT": 14}
_JID = re.compile(r"^(?P<user>[^@:]+)(?::\d+)?@(?P<server>[\w.]+)$")


@dataclass(frozen=True)
class Sender:
    jid: str  # as the key names the sender (LID or phone JID, device suffix removed)
    lid: str | None  # "<digits>@lid"
    phone: str | None  # "+<digits>"

    @property
    def phone_jid(self) -> str | None:
        return self.phone[1:] + "@s.whatsapp.net" if self.phone else None


@dataclass(frozen=True)
class Event:
    type: str  # edit, delete, reaction, poll_vote
    target_id: str
    target_from_me: bool | None = None
    body: str | None = None  # the new text of an edit
    emoji: str | None = None  # a reaction; "" takes it back
    content: Content | None = None  # the full edited content
    by_me: bool = False  # the business did it (from its own phone)
    actor: Sender | None = None  # who did it
    at: dt.datetime | None = None


def event_to_json(event: Event) -> dict[str, Any]:
    data = asdict(event)
    data["at"] = event.at.isoformat() if event.at else None
    return data


def event_from_json(data: dict[str, Any]) -> Event:
    content = data.get("content")
    if content:
        media = content.get("media")
        content = Content(**{**content, "media": Media(**media) if media else None})
    actor = Sender(**data["actor"]) if data.get("actor") else None
    at = dt.datetime.fromisoformat(data["at"]) if data.get("at") else None
    return Event(**{**data, "content": content, "actor": actor, "at": at})


@dataclass(frozen=True)
class Incoming:
    provider_id: str
    chat_jid: str  # remoteJid, normalised
    scope: str  # direct, group, status, broadcast, newsletter
    from_me: bool
    sender: Sender | None  # the other party of a direct chat (also when from_me), a group's participant
    push_name: str | None
    sent_at: dt.datetime | None
    content: Content | None = None
    event: Event | None = None
    placeholder: bool = False
    ignored: str | None = None  # why it carries nothing a person reads


def is_placeholder(raw: Any) -> bool:
    """A decryption stub: no content, ``messageStubType`` CIPHERTEXT (or a placeholderMessage)."""
    if not isinstance(raw, dict):
        return False
    inner, _ = unwrap(raw.get("message"))
    key = content_key(inner)
    if key == "placeholderMessage":
        return True
    return key is None and as_enum(raw.get("messageStubType"), STUB_NAMES) == STUB_CIPHERTEXT


def deserves_reply(message: Incoming) -> bool:
    """Is this a real message from a customer in a direct chat, the kind an auto-reply answers?

    Not edits, deletes, reactions or votes (events), not decryption placeholders, not technical messages,
    not our own messages, groups, status posts, broadcasts or channels (Baileys' ``isRealMessage`` leaves
    the same events out of the message stream).
    """
    return (
        message.content is not None
        and message.content.kind not in NO_REPLY_KINDS
        and message.scope == "direct"
        and not message.from_me
    )


def normalize_jid(jid: Any) -> str | None:
    """Drop the device (``:7``) and map hosted servers to their plain ones; None for anything else."""
    match = _JID.match(jid.strip()) if isinstance(jid, str) else None
    if not match:
        return None
    server = {"hosted": "s.whatsapp.net", "hosted.lid": "lid", "c.us": "s.whatsapp.net"}.get(
        match["server"], match["server"]
    )
    return f"{match['user']}@{server}"


def identity(*jids: Any) -> Sender | None:
    """Join every JID known for one person: the first is how the key names them."""
    normal = [j for j in (normalize_jid(jid) for jid in jids) if j]
    if not normal:
        return None
    lid = next((j for j in normal if j.endswith("@lid")), None)
    pn = next((j for j in normal if j.endswith("@s.whatsapp.net") and j.split("@")[0].isdigit()), None)
    return Sender(jid=normal[0], lid=lid, phone="+" + pn.split("@")[0] if pn else None)


def scope_of(jid: str) -> str:
    if jid.endswith("@g.us"):
        return "group"
    if jid == "status@broadcast":
        return "status"
    if jid.endswith("@broadcast"):
        return "broadcast"
    if jid.endswith("@newsletter"):
        return "newsletter"
    return "direct"


# -- events -------------------------------------------------------------------------------------------------
def event_of(message: Any) -> Event | str | None:
    """The event a message carries, or a reason string for an event we do not apply, or None."""
    inner, _ = unwrap(message)
    key = content_key(inner)
    body = inner.get(key) if key else None
    if key not in EVENT_FIELDS or not isinstance(body, dict):
        return None
    if key == "reactionMessage":
        target = body.get("key") or {}
        return Event(
            "reaction",
            str(target.get("id") or ""),
            bool(target.get("fromMe")),
            emoji=body.get("text") if isinstance(body.get("text"), str) else "",
        )
    if key == "pollUpdateMessage":
        target = body.get("pollCreationMessageKey") or {}
        return Event("poll_vote", str(target.get("id") or ""), bool(target.get("fromMe")))
    if key == "protocolMessage":
        kind = as_enum(body.get("type"), PROTOCOL_NAMES)
        target = body.get("key") or {}
        if kind == PROTOCOL_REVOKE:
            return Event("delete", str(target.get("id") or ""), bool(target.get("fromMe")))
        if kind == PROTOCOL_EDIT:
            edited = content_of(body.get("editedMessage"))
            return Event(
                "edit",
                str(target.get("id") or ""),
                bool(target.get("fromMe")),
                body=edited.summary if edited else None,
                content=edited,
            )
        return f"protocol message {body.get('type')}"
    return f"{key} (not applied)"


def key_identity(key: dict[str, Any]) -> Sender | None:
    """The other party of a direct chat, or the participant of a group, from a message key."""
    chat = normalize_jid(key.get("remoteJid"))
    if chat and scope_of(chat) == "direct":
        return identity(chat, key.get("remoteJidAlt"), key.get("senderPn"), key.get("senderLid"))
    return identity(
        key.get("participant"), key.get("participantAlt"), key.get("participantPn"), key.get("participantLid")
    ) or (identity(chat) if chat else None)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def update_events(raw: dict[str, Any]) -> list[Event]:
    """Events in one ``messages.update`` item (or a ``messages.reaction`` item posted among updates)."""
    key = _dict(raw.get("key"))
    target, from_me = str(key.get("id") or ""), bool(key.get("fromMe"))
    reaction = raw.get("reaction")
    if isinstance(reaction, dict):  # messages.reaction: {key: the target, reaction: {text, key: the reactor's}}
        reactor = _dict(reaction.get("key"))
        text = reaction.get("text")
        emoji = text if isinstance(text, str) else ""
        at = timestamp(reaction.get("senderTimestampMs"))
        return [
            Event(
                "reaction",
                target,
                from_me,
                emoji=emoji,
                by_me=bool(reactor.get("fromMe")),
                actor=key_identity(reactor),
                at=at,
            )
        ]
    update = _dict(raw.get("update"))
    actor, at = key_identity(key), timestamp(update.get("messageTimestamp"))
    message = update.get("message")
    if "message" in update and message is None and as_enum(update.get("messageStubType"), STUB_NAMES) == STUB_REVOKE:
        return [Event("delete", target, from_me, by_me=from_me, actor=actor, at=at)]
    edited = _dict(message).get("editedMessage")
    if isinstance(edited, dict):
        content = content_of(edited.get("message"))
        return [
            Event(
                "edit",
                target,
                from_me,
                body=content.summary if content else None,
                content=content,
                by_me=from_me,
                actor=actor,
                at=at,
            )
        ]
    return []


# -- the whole message --------------------------------------------------------------------------------------
def parse(raw: dict[str, Any]) -> Incoming:
    """One WAMessage from ``messages.upsert``; raises ValueError when it has no usable key."""
    key = raw.get("key")
    if not isinstance(key, dict) or not text_of(key.get("id")) or not normalize_jid(key.get("remoteJid")):
        raise ValueError("key.id and key.remoteJid are required")
    chat = normalize_jid(key["remoteJid"]) or ""
    scope = scope_of(chat)
    from_me = bool(key.get("fromMe"))
    sender = key_identity(key)
    sent_at = timestamp(raw.get("messageTimestamp"))
    common: dict[str, Any] = {
        "provider_id": key["id"],
        "chat_jid": chat,
        "scope": scope,
        "from_me": from_me,
        "sender": sender,
        "push_name": text_of(raw.get("pushName")),
        "sent_at": sent_at,
    }
    message = raw.get("message") if isinstance(raw.get("message"), dict) else None
    stub = as_enum(raw.get("messageStubType"), STUB_NAMES)
    event = event_of(message)
    if isinstance(event, Event):
        return Incoming(**common, event=replace(event, by_me=from_me, actor=sender, at=sent_at))
    if isinstance(event, str):
        return Incoming(**common, ignored=event)
    content = content_of(message)
    if content is not None:
        return Incoming(**common, content=content)
    inner, _ = unwrap(message)
    if stub == STUB_CIPHERTEXT or "placeholderMessage" in inner:
        return Incoming(**common, placeholder=True)
    if stub in MISSED_CALL_STUBS:
        return Incoming(**common, content=Content("call", None, f"[missed {MISSED_CALL_STUBS[stub]} call]"))
    return Incoming(**common, ignored=f"no readable content ({content_key(inner) or 'empty'})")

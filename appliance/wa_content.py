"""What a Baileys WAMessage means to a CRM user: pure parsing, no I/O and no appliance imports.

Input is one message as a bridge posts it from ``messages.upsert`` (or one ``messages.update`` item),
in any of the JSON forms a bridge produces: the live object through ``JSON.stringify`` (protobuf
``toJSON``: int64 as strings, enums as names, bytes as base64), ``toObject`` output (Long objects
``{"low","high","unsigned"}``, numeric enums, ``{"type":"Buffer"}`` bytes), keys of both Baileys
generations (7.x ``remoteJidAlt``/``participantAlt``, 6.7.x ``senderPn``/``participantPn``/...).

Output is one ``Incoming``: exactly one of ``content`` (a message a person wrote), ``event`` (an edit,
delete, reaction or poll vote that changes another message), ``placeholder`` (Baileys could not decrypt it
yet; the real message follows with the same id) or ``ignored`` (a technical message, with the reason).
The message types are WAProto's ``Message`` fields (tests/fixtures/baileys/out/waproto.json); every
field is classified below, and a test keeps the tables equal to that list.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

# WAProto Message fields of type FutureProofMessage ({"message": Message}), plus deviceSentMessage.
WRAPPERS = frozenset(
    {
        "viewOnceMessage",
        "ephemeralMessage",
        "documentWithCaptionMessage",
        "viewOnceMessageV2",
        "editedMessage",
        "viewOnceMessageV2Extension",
        "groupMentionedMessage",
        "botInvokeMessage",
        "lottieStickerMessage",
        "eventCoverImage",
        "statusMentionMessage",
        "pollCreationOptionImageMessage",
        "associatedChildMessage",
        "groupStatusMentionMessage",
        "pollCreationMessageV4",
        "statusAddYours",
        "groupStatusMessage",
        "limitSharingMessage",
        "botTaskMessage",
        "questionMessage",
        "groupStatusMessageV2",
        "botForwardedMessage",
        "questionReplyMessage",
        "deviceSentMessage",
    }
)
# Fields that change another message (or would, were they not end-to-end encrypted again).
EVENT_FIELDS = frozenset(
    {
        "protocolMessage",
        "reactionMessage",
        "pollUpdateMessage",
        "encReactionMessage",
        "encEventResponseMessage",
        "encCommentMessage",
        "keepInChatMessage",
        "pinInChatMessage",
    }
)
# Fields no person reads: key distribution, sync, AI/bot internals, metadata beside the content.
TECHNICAL = frozenset(
    {
        "senderKeyDistributionMessage",
        "fastRatchetKeySenderKeyDistributionMessage",
        "messageContextInfo",
        "chat",
        "stickerSyncRmrMessage",
        "messageHistoryBundle",
        "messageHistoryNotice",
        "secretEncryptedMessage",
        "richResponseMessage",
        "statusNotificationMessage",
        "bcallMessage",
        "scheduledCallEditMessage",
        "highlyStructuredMessage",
        "statusStickerInteractionMessage",
        "newsletterFollowerInviteMessageV2",
        "paymentInviteMessage",
    }
)
MEDIA = {  # field -> kind; captions are the body
    "imageMessage": "image",
    "videoMessage": "video",
    "ptvMessage": "video_note",
    "audioMessage": "audio",
    "documentMessage": "document",
    "stickerMessage": "sticker",
}
POLLS = ("pollCreationMessage", "pollCreationMessageV2", "pollCreationMessageV3", "pollCreationMessageV5")
PLACEHOLDER_TEXT = {
    "image": "[photo]",
    "video": "[video]",
    "video_note": "[video note]",
    "audio": "[audio]",
    "voice": "[voice note]",
    "document": "[document]",
    "sticker": "[sticker]",
}
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


# -- the result ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Media:
    type: str
    mimetype: str | None = None
    size: int | None = None
    file_name: str | None = None
    duration: int | None = None  # seconds
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class Content:
    kind: str  # text, image, video, video_note, voice, audio, document, sticker, location, contact, poll, ...
    body: str | None  # what the sender wrote (a caption for media), None when nothing
    summary: str  # what the inbox shows: the body, or a typed placeholder such as "[voice note 0:07]"
    media: Media | None = None
    reply_to: str | None = None  # the provider id of the quoted message
    details: dict[str, Any] = field(default_factory=dict)


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
    sender: Sender
    push_name: str | None
    sent_at: dt.datetime | None
    content: Content | None = None
    event: Event | None = None
    placeholder: bool = False
    ignored: str | None = None  # why it carries nothing a person reads


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


# -- wire-form helpers --------------------------------------------------------------------------------------
def as_int(value: Any) -> int | None:
    """int64/uint64 in any wire form: a number, a decimal string, or a protobuf Long object."""
    if isinstance(value, dict) and "low" in value:
        number = (int(value.get("high", 0)) << 32) | (int(value.get("low", 0)) & 0xFFFFFFFF)
        if not value.get("unsigned") and number >= 1 << 63:
            number -= 1 << 64
        return number
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return None


def as_enum(value: Any, names: dict[str, int]) -> int | None:
    """An enum as a number (toObject) or its name (toJSON)."""
    if isinstance(value, str) and not value.isdigit():
        return names.get(value)
    return as_int(value)


def timestamp(value: Any) -> dt.datetime | None:
    seconds = as_int(value)
    if seconds is None or seconds <= 0:
        return None
    if seconds > 10**11:  # milliseconds
        seconds //= 1000
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


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


# -- content ------------------------------------------------------------------------------------------------
def unwrap(message: Any) -> tuple[dict[str, Any], list[str]]:
    """The innermost content under any depth of wrappers, and the wrappers passed on the way."""
    wrappers: list[str] = []
    current = message if isinstance(message, dict) else {}
    for _ in range(16):
        name = next((k for k in current if k in WRAPPERS and isinstance(current[k], dict)), None)
        if name is None or not isinstance(current[name].get("message"), dict):
            break
        wrappers.append(name)
        current = current[name]["message"]
    return current, wrappers


def _content_key(message: dict[str, Any]) -> str | None:
    return next((k for k, v in message.items() if v is not None and k not in TECHNICAL), None)


def _duration(seconds: int | None) -> str:
    return f" {seconds // 60}:{seconds % 60:02d}" if seconds else ""


def _media(key: str, body: dict[str, Any]) -> Content:
    kind = MEDIA[key]
    if kind == "audio" and body.get("ptt"):
        kind = "voice"
    media = Media(
        type=kind,
        mimetype=_text(body.get("mimetype")),
        size=as_int(body.get("fileLength")),
        file_name=_text(body.get("fileName")),
        duration=as_int(body.get("seconds")),
        width=as_int(body.get("width")),
        height=as_int(body.get("height")),
    )
    caption = _text(body.get("caption"))
    label = PLACEHOLDER_TEXT[kind][:-1]
    if media.file_name:
        label += f": {media.file_name}"
    summary = caption or f"{label}{_duration(media.duration)}]"
    return Content(
        kind,
        caption,
        summary,
        media=media,
        reply_to=_reply_to(body),
        details={"view_once": True} if body.get("viewOnce") else {},
    )


def _reply_to(body: Any) -> str | None:
    context = body.get("contextInfo") if isinstance(body, dict) else None
    return _text(context.get("stanzaId")) if isinstance(context, dict) else None


def _vcard_phone(vcard: Any) -> str | None:
    match = re.search(r"waid=(\d+)", vcard) if isinstance(vcard, str) else None
    return "+" + match.group(1) if match else None


def _contact_line(contact: dict[str, Any]) -> str:
    name = _text(contact.get("displayName")) or ""
    phone = _vcard_phone(contact.get("vcard"))
    return " ".join(part for part in (name, phone) if part) or "contact"


def _place(loc: dict[str, Any]) -> str:
    lat, lng = loc.get("degreesLatitude"), loc.get("degreesLongitude")
    words = ", ".join(p for p in (_text(loc.get("name")), _text(loc.get("address"))) if p)
    where = f"({lat}, {lng})" if lat is not None and lng is not None else ""
    return " ".join(p for p in (words, where) if p)


def _poll(body: dict[str, Any]) -> Content:
    name = _text(body.get("name"))
    options = [o.get("optionName") for o in body.get("options") or [] if isinstance(o, dict)]
    summary = f"[poll] {name or ''}" + (": " + " / ".join(str(o) for o in options) if options else "")
    return Content("poll", name, summary.strip(), details={"options": options})


def _simple(kind: str, body: str | None, label: str, **details: Any) -> Content:
    return Content(kind, body, body or label, details={k: v for k, v in details.items() if v is not None})


def _field(body: Any, *path: str) -> Any:
    for name in path:
        body = body.get(name) if isinstance(body, dict) else None
    return body


def _labelled(label: str, name: Any) -> str:
    return f"[{label}] {name}" if _text(name) else f"[{label}]"


def _text_reader(text_field: str) -> Any:
    def read(body: dict[str, Any]) -> Content | None:
        text = _text(body.get(text_field))
        return Content("text", text, text, reply_to=_reply_to(body)) if text else None

    return read


def _location(body: dict[str, Any]) -> Content:
    return _simple(
        "location",
        _text(body.get("comment")),
        _labelled("location", _place(body)),
        latitude=body.get("degreesLatitude"),
        longitude=body.get("degreesLongitude"),
        name=_text(body.get("name")),
        address=_text(body.get("address")),
    )


def _live_location(body: dict[str, Any]) -> Content:
    return _simple(
        "live_location",
        _text(body.get("caption")),
        _labelled("live location", _place(body)),
        latitude=body.get("degreesLatitude"),
        longitude=body.get("degreesLongitude"),
    )


def _contacts(body: dict[str, Any]) -> Content:
    people = [c for c in body.get("contacts") or [] if isinstance(c, dict)]
    return _simple(
        "contacts",
        None,
        "[contacts] " + ", ".join(_contact_line(c) for c in people),
        phones=[_vcard_phone(c.get("vcard")) for c in people],
    )


def _template(body: dict[str, Any]) -> Content:
    template = next(
        (
            body[k]
            for k in ("hydratedTemplate", "hydratedFourRowTemplate", "fourRowTemplate")
            if isinstance(body.get(k), dict)
        ),
        {},
    )
    text = _text(template.get("hydratedContentText")) or _text(_field(template, "content", "text"))
    return _simple("template", text, "[template]")


def _poll_result(body: dict[str, Any]) -> Content:
    votes = {
        v.get("optionName"): as_int(v.get("optionVoteCount")) or 0
        for v in body.get("pollVotes") or []
        if isinstance(v, dict)
    }
    return _simple("poll_result", _text(body.get("name")), "[poll results]", votes=votes)


def _event(body: dict[str, Any]) -> Content:
    start = timestamp(body.get("startTime"))
    location = body.get("location")
    return _simple(
        "event",
        _text(body.get("name")),
        "[event]",
        description=_text(body.get("description")),
        starts_at=start.isoformat() if start else None,
        canceled=bool(body.get("isCanceled")),
        location=_place(location) if isinstance(location, dict) else None,
    )


def _order(body: dict[str, Any]) -> Content:
    return _simple(
        "order",
        _text(body.get("message")),
        _labelled("order", body.get("orderTitle")),
        items=body.get("itemCount"),
        total1000=as_int(body.get("totalAmount1000")),
        currency=_text(body.get("totalCurrencyCode")),
    )


def _payment(kind: str, label: str) -> Any:
    def read(body: dict[str, Any]) -> Content:
        note = content_of(body.get("noteMessage"))
        return _simple(
            kind,
            note.body if note else None,
            label,
            currency=_text(body.get("currencyCodeIso4217")),
            amount1000=as_int(body.get("amount1000")),
        )

    return read


def _scheduled_call(body: dict[str, Any]) -> Content:
    when = timestamp(body.get("scheduledTimestampMs"))
    return _simple(
        "scheduled_call", _text(body.get("title")), "[scheduled call]", at=when.isoformat() if when else None
    )


def _call_log(body: dict[str, Any]) -> Content:
    video = "video" if body.get("isVideo") else "voice"
    if as_enum(body.get("callOutcome"), {"CONNECTED": 0, "MISSED": 1}) == 1:
        return _simple("call", None, f"[missed {video} call]")
    return _simple("call", None, f"[{video} call{_duration(as_int(body.get('durationSecs')))}]")


def _album(body: dict[str, Any]) -> Content:
    images, videos = as_int(body.get("expectedImageCount")) or 0, as_int(body.get("expectedVideoCount")) or 0
    return _simple("album", None, f"[album: {images} photos, {videos} videos]")


def _comment(body: dict[str, Any]) -> Content | None:
    inner = content_of(body.get("message"))
    if inner is None:
        return None
    return Content(
        inner.kind,
        inner.body,
        inner.summary,
        inner.media,
        reply_to=_field(body, "targetMessageKey", "id"),
        details=inner.details,
    )


def _reply(kind: str, text_path: tuple[str, ...], label: str, **detail_paths: tuple[str, ...]) -> Any:
    def read(body: dict[str, Any]) -> Content:
        details = {name: _text(_field(body, *path)) for name, path in detail_paths.items()}
        return _simple(kind, _text(_field(body, *text_path)), label, **details)

    return read


READERS: dict[str, Any] = {
    "conversation": None,  # a bare string, read in content_of
    "extendedTextMessage": _text_reader("text"),
    **{key: (lambda body, key=key: _media(key, body)) for key in MEDIA},
    "locationMessage": _location,
    "liveLocationMessage": _live_location,
    "contactMessage": lambda b: _simple(
        "contact", None, f"[contact] {_contact_line(b)}", phone=_vcard_phone(b.get("vcard"))
    ),
    "contactsArrayMessage": _contacts,
    "buttonsResponseMessage": _reply(
        "button_reply", ("selectedDisplayText",), "[button reply]", selected=("selectedButtonId",)
    ),
    "templateButtonReplyMessage": _reply(
        "button_reply", ("selectedDisplayText",), "[button reply]", selected=("selectedId",)
    ),
    "listResponseMessage": _reply(
        "list_reply",
        ("title",),
        "[list reply]",
        selected=("singleSelectReply", "selectedRowId"),
        description=("description",),
    ),
    "interactiveResponseMessage": _reply(
        "flow_reply",
        ("body", "text"),
        "[form reply]",
        flow=("nativeFlowResponseMessage", "name"),
        params=("nativeFlowResponseMessage", "paramsJson"),
    ),
    "buttonsMessage": lambda b: _simple(
        "buttons", _text(b.get("contentText")) or _text(b.get("text")), "[buttons]"
    ),
    "listMessage": lambda b: _simple("list", _text(b.get("title")) or _text(b.get("description")), "[list]"),
    "templateMessage": _template,
    "interactiveMessage": lambda b: _simple(
        "interactive",
        _text(_field(b, "body", "text")) or _text(_field(b, "header", "title")),
        "[interactive message]",
    ),
    **{key: _poll for key in POLLS},
    "pollResultSnapshotMessage": _poll_result,
    "pollResultSnapshotMessageV3": _poll_result,
    "eventMessage": _event,
    "groupInviteMessage": lambda b: _simple(
        "group_invite",
        _text(b.get("caption")),
        _labelled("group invite", b.get("groupName")),
        group=_text(b.get("groupName")),
    ),
    "newsletterAdminInviteMessage": lambda b: _simple(
        "channel_invite", _text(b.get("caption")), _labelled("channel invite", b.get("newsletterName"))
    ),
    "productMessage": lambda b: _simple(
        "product",
        _text(b.get("body")),
        _labelled("product", _field(b, "product", "title")),
        product=_text(_field(b, "product", "title")),
    ),
    "orderMessage": _order,
    "invoiceMessage": lambda b: _simple("invoice", _text(b.get("note")), "[invoice]"),
    "requestPaymentMessage": _payment("payment_request", "[payment request]"),
    "sendPaymentMessage": _payment("payment", "[payment]"),
    "declinePaymentRequestMessage": lambda b: _simple("payment", None, "[payment request declined]"),
    "cancelPaymentRequestMessage": lambda b: _simple("payment", None, "[payment request cancelled]"),
    "requestPhoneNumberMessage": lambda b: _simple("phone_request", None, "[asks for your phone number]"),
    "scheduledCallCreationMessage": _scheduled_call,
    "callLogMesssage": _call_log,  # sic: WAProto's spelling
    "call": lambda b: _simple("call", None, "[call]"),
    "albumMessage": _album,
    "stickerPackMessage": lambda b: _simple(
        "sticker_pack", _text(b.get("caption")), _labelled("sticker pack", b.get("name"))
    ),
    "commentMessage": _comment,
    "questionResponseMessage": _text_reader("text"),
    "statusQuestionAnswerMessage": _text_reader("text"),
    "statusQuotedMessage": _text_reader("text"),
    "placeholderMessage": lambda b: None,  # a placeholder; see parse()
}


def content_of(message: Any) -> Content | None:
    """The content a person reads, from a message's (wrapped) proto.Message; None when it has none."""
    inner, _ = unwrap(message)
    key = _content_key(inner)
    if key == "conversation":
        text = _text(inner[key])
        return Content("text", text, text) if text else None
    reader = READERS.get(key) if key else None
    body = inner.get(key) if key else None
    return reader(body) if reader and isinstance(body, dict) else None


# -- events -------------------------------------------------------------------------------------------------
def event_of(message: Any) -> Event | str | None:
    """The event a message carries, or a reason string for an event we do not apply, or None."""
    inner, _ = unwrap(message)
    key = _content_key(inner)
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


def update_events(raw: dict[str, Any]) -> list[Event]:
    """Events in one ``messages.update`` item (or a ``messages.reaction`` item posted among updates)."""
    key = raw.get("key") if isinstance(raw.get("key"), dict) else {}
    target, from_me = str(key.get("id") or ""), bool(key.get("fromMe"))
    reaction = raw.get("reaction")
    if isinstance(
        reaction, dict
    ):  # messages.reaction: {key: the target, reaction: {text, key: the reactor's}}
        reactor = reaction.get("key") if isinstance(reaction.get("key"), dict) else {}
        text = reaction.get("text")
        return [
            Event(
                "reaction",
                target,
                from_me,
                emoji=text if isinstance(text, str) else "",
                by_me=bool(reactor.get("fromMe")),
                actor=key_identity(reactor),
                at=timestamp(reaction.get("senderTimestampMs")),
            )
        ]
    update = raw.get("update") if isinstance(raw.get("update"), dict) else {}
    common = {
        "target_from_me": from_me,
        "by_me": from_me,
        "actor": key_identity(key),
        "at": timestamp(update.get("messageTimestamp")),
    }
    message = update.get("message")
    if (
        "message" in update
        and message is None
        and as_enum(update.get("messageStubType"), STUB_NAMES) == STUB_REVOKE
    ):
        return [Event("delete", target, **common)]
    edited = message.get("editedMessage") if isinstance(message, dict) else None
    if isinstance(edited, dict):
        content = content_of(edited.get("message"))
        return [Event("edit", target, body=content.summary if content else None, content=content, **common)]
    return []


# -- the whole message --------------------------------------------------------------------------------------
def parse(raw: dict[str, Any]) -> Incoming:
    """One WAMessage from ``messages.upsert``; raises ValueError when it has no usable key."""
    key = raw.get("key")
    if not isinstance(key, dict) or not _text(key.get("id")) or not normalize_jid(key.get("remoteJid")):
        raise ValueError("key.id and key.remoteJid are required")
    chat = normalize_jid(key["remoteJid"])
    scope = scope_of(chat)
    from_me = bool(key.get("fromMe"))
    sender = key_identity(key)
    common = {
        "provider_id": key["id"],
        "chat_jid": chat,
        "scope": scope,
        "from_me": from_me,
        "sender": sender,
        "push_name": _text(raw.get("pushName")),
        "sent_at": timestamp(raw.get("messageTimestamp")),
    }
    message = raw.get("message") if isinstance(raw.get("message"), dict) else None
    stub = as_enum(raw.get("messageStubType"), STUB_NAMES)
    event = event_of(message)
    if isinstance(event, Event):
        return Incoming(**common, event=replace(event, by_me=from_me, actor=sender, at=common["sent_at"]))
    if isinstance(event, str):
        return Incoming(**common, ignored=event)
    content = content_of(message)
    if content is not None:
        return Incoming(**common, content=content)
    inner, _ = unwrap(message)
    if stub == STUB_CIPHERTEXT or "placeholderMessage" in inner:
        return Incoming(**common, placeholder=True)
    if stub in MISSED_CALL_STUBS:
        return Incoming(**common, content=_simple("call", None, f"[missed {MISSED_CALL_STUBS[stub]} call]"))
    return Incoming(**common, ignored=f"no readable content ({_content_key(inner) or 'empty'})")

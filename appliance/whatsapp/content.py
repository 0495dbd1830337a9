"""What a Baileys message says: the content a person reads, from any WAProto ``Message``. Pure: no I/O.

Input is a ``proto.Message`` as JSON in any form a bridge produces: the live object through
``JSON.stringify`` (protobuf ``toJSON``: int64 as strings, enums as names, bytes as base64) or ``toObject``
output (Long objects ``{"low","high","unsigned"}``, numeric enums, ``{"type":"Buffer"}`` bytes). Wrappers
(ephemeral, view-once v1/v2/v2Extension, documentWithCaption, edited, deviceSent, ...) are opened at any
depth; captions are the body; media get a typed placeholder and their metadata.

The message types are WAProto's ``Message`` fields (tests/fixtures/baileys/out/waproto.json, from the
Baileys release the fixtures name): each is read here (``READERS``), a wrapper (``WRAPPERS``), an event
that changes another message (``EVENT_FIELDS``, read in ``incoming``) or technical (``TECHNICAL``); a test
keeps the four equal to that list.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

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


def text_of(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


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


def content_key(message: dict[str, Any]) -> str | None:
    return next((k for k, v in message.items() if v is not None and k not in TECHNICAL), None)


def _duration(seconds: int | None) -> str:
    return f" {seconds // 60}:{seconds % 60:02d}" if seconds else ""


def _media(key: str, body: dict[str, Any]) -> Content:
    kind = MEDIA[key]
    if kind == "audio" and body.get("ptt"):
        kind = "voice"
    media = Media(
        type=kind,
        mimetype=text_of(body.get("mimetype")),
        size=as_int(body.get("fileLength")),
        file_name=text_of(body.get("fileName")),
        duration=as_int(body.get("seconds")),
        width=as_int(body.get("width")),
        height=as_int(body.get("height")),
    )
    caption = text_of(body.get("caption"))
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
    return text_of(context.get("stanzaId")) if isinstance(context, dict) else None


def _vcard_phone(vcard: Any) -> str | None:
    match = re.search(r"waid=(\d+)", vcard) if isinstance(vcard, str) else None
    return "+" + match.group(1) if match else None


def _contact_line(contact: dict[str, Any]) -> str:
    name = text_of(contact.get("displayName")) or ""
    phone = _vcard_phone(contact.get("vcard"))
    return " ".join(part for part in (name, phone) if part) or "contact"


def _place(loc: dict[str, Any]) -> str:
    lat, lng = loc.get("degreesLatitude"), loc.get("degreesLongitude")
    words = ", ".join(p for p in (text_of(loc.get("name")), text_of(loc.get("address"))) if p)
    where = f"({lat}, {lng})" if lat is not None and lng is not None else ""
    return " ".join(p for p in (words, where) if p)


def _poll(body: dict[str, Any]) -> Content:
    name = text_of(body.get("name"))
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
    return f"[{label}] {name}" if text_of(name) else f"[{label}]"


def _text_reader(text_field: str) -> Any:
    def read(body: dict[str, Any]) -> Content | None:
        text = text_of(body.get(text_field))
        return Content("text", text, text, reply_to=_reply_to(body)) if text else None

    return read


def _where(kind: str, label: str, text_field: str) -> Any:
    """A location or a live location: the sender's words, else where it is; coordinates in details."""

    def read(body: dict[str, Any]) -> Content:
        return _simple(kind, text_of(body.get(text_field)), _labelled(label, _place(body)),
                       latitude=body.get("degreesLatitude"), longitude=body.get("degreesLongitude"),
                       name=text_of(body.get("name")), address=text_of(body.get("address")))

    return read


def _contacts(body: dict[str, Any]) -> Content:
    people = [c for c in body.get("contacts") or [] if isinstance(c, dict)]
    return _simple(
        "contacts",
        None,
        "[contacts] " + ", ".join(_contact_line(c) for c in people),
        phones=[_vcard_phone(c.get("vcard")) for c in people],
    )


def _template(body: dict[str, Any]) -> Content:
    names = ("hydratedTemplate", "hydratedFourRowTemplate", "fourRowTemplate")
    template: dict[str, Any] = next((body[k] for k in names if isinstance(body.get(k), dict)), {})
    text = text_of(template.get("hydratedContentText")) or text_of(_field(template, "content", "text"))
    return _simple("template", text, "[template]")


def _poll_result(body: dict[str, Any]) -> Content:
    votes = {
        v.get("optionName"): as_int(v.get("optionVoteCount")) or 0
        for v in body.get("pollVotes") or []
        if isinstance(v, dict)
    }
    return _simple("poll_result", text_of(body.get("name")), "[poll results]", votes=votes)


def _event(body: dict[str, Any]) -> Content:
    start = timestamp(body.get("startTime"))
    location = body.get("location")
    return _simple(
        "event",
        text_of(body.get("name")),
        "[event]",
        description=text_of(body.get("description")),
        starts_at=start.isoformat() if start else None,
        canceled=bool(body.get("isCanceled")),
        location=_place(location) if isinstance(location, dict) else None,
    )


def _order(body: dict[str, Any]) -> Content:
    return _simple(
        "order",
        text_of(body.get("message")),
        _labelled("order", body.get("orderTitle")),
        items=body.get("itemCount"),
        total1000=as_int(body.get("totalAmount1000")),
        currency=text_of(body.get("totalCurrencyCode")),
    )


def _payment(kind: str, label: str) -> Any:
    def read(body: dict[str, Any]) -> Content:
        note = content_of(body.get("noteMessage"))
        return _simple(
            kind,
            note.body if note else None,
            label,
            currency=text_of(body.get("currencyCodeIso4217")),
            amount1000=as_int(body.get("amount1000")),
        )

    return read


def _scheduled_call(body: dict[str, Any]) -> Content:
    when = timestamp(body.get("scheduledTimestampMs"))
    return _simple(
        "scheduled_call", text_of(body.get("title")), "[scheduled call]", at=when.isoformat() if when else None
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
        details = {name: text_of(_field(body, *path)) for name, path in detail_paths.items()}
        return _simple(kind, text_of(_field(body, *text_path)), label, **details)

    return read


READERS: dict[str, Any] = {
    "conversation": None,  # a bare string, read in content_of
    "extendedTextMessage": _text_reader("text"),
    **{key: (lambda body, key=key: _media(key, body)) for key in MEDIA},
    "locationMessage": _where("location", "location", "comment"),
    "liveLocationMessage": _where("live_location", "live location", "caption"),
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
        "buttons", text_of(b.get("contentText")) or text_of(b.get("text")), "[buttons]"
    ),
    "listMessage": lambda b: _simple("list", text_of(b.get("title")) or text_of(b.get("description")), "[list]"),
    "templateMessage": _template,
    "interactiveMessage": lambda b: _simple(
        "interactive",
        text_of(_field(b, "body", "text")) or text_of(_field(b, "header", "title")),
        "[interactive message]",
    ),
    **{key: _poll for key in POLLS},
    "pollResultSnapshotMessage": _poll_result,
    "pollResultSnapshotMessageV3": _poll_result,
    "eventMessage": _event,
    "groupInviteMessage": lambda b: _simple(
        "group_invite",
        text_of(b.get("caption")),
        _labelled("group invite", b.get("groupName")),
        group=text_of(b.get("groupName")),
    ),
    "newsletterAdminInviteMessage": lambda b: _simple(
        "channel_invite", text_of(b.get("caption")), _labelled("channel invite", b.get("newsletterName"))
    ),
    "productMessage": lambda b: _simple(
        "product",
        text_of(b.get("body")),
        _labelled("product", _field(b, "product", "title")),
        product=text_of(_field(b, "product", "title")),
    ),
    "orderMessage": _order,
    "invoiceMessage": lambda b: _simple("invoice", text_of(b.get("note")), "[invoice]"),
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
        "sticker_pack", text_of(b.get("caption")), _labelled("sticker pack", b.get("name"))
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
    key = content_key(inner)
    if key == "conversation":
        text = text_of(inner[key])
        return Content("text", text, text) if text else None
    reader = READERS.get(key) if key else None
    body = inner.get(key) if key else None
    return reader(body) if reader and isinstance(body, dict) else None

"""A Gmail message (``format=full``) as the parts extraction needs: headers, bodies, attachments."""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass, field
from email.utils import getaddresses
from typing import Any


@dataclass
class Attachment:
    filename: str
    mime_type: str
    size: int
    attachment_id: str | None = None
    data: bytes | None = None
    content_id: str | None = None  # an inline part's Content-ID, which the HTML body calls cid:<id>

    @property
    def is_pdf(self) -> bool:
        return self.mime_type == "application/pdf" or self.filename.lower().endswith(".pdf")

    @property
    def is_kept(self) -> bool:
        """PDFs and images are stored with a receipt."""
        return self.is_pdf or self.mime_type.startswith("image/")


@dataclass
class Message:
    id: str
    received_at: dt.datetime
    subject: str = ""
    sender: str = ""
    sender_name: str = ""
    sender_domain: str = ""
    html: str | None = None
    text: str | None = None
    attachments: list[Attachment] = field(default_factory=list)


def decode_data(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def _charset(part: dict[str, Any]) -> str:
    for header in part.get("headers") or []:
        if header.get("name", "").lower() == "content-type" and "charset=" in header.get("value", ""):
            return header["value"].split("charset=", 1)[1].split(";")[0].strip().strip('"') or "utf-8"
    return "utf-8"


def _header(part: dict[str, Any], name: str) -> str | None:
    for header in part.get("headers") or []:
        if header.get("name", "").lower() == name:
            return str(header.get("value", "")).strip().strip("<>")[:300] or None
    return None


def _text(part: dict[str, Any]) -> str:
    raw = decode_data(part.get("body", {}).get("data", ""))
    try:
        return raw.decode(_charset(part), errors="replace")
    except LookupError:
        return raw.decode("utf-8", errors="replace")


def _walk(part: dict[str, Any], message: Message) -> None:
    mime = (part.get("mimeType") or "").lower()
    body = part.get("body") or {}
    if part.get("filename"):
        message.attachments.append(Attachment(
            filename=part["filename"], mime_type=mime or "application/octet-stream",
            size=int(body.get("size") or 0),
            attachment_id=body.get("attachmentId"),
            data=decode_data(body["data"]) if body.get("data") else None,
            content_id=_header(part, "content-id"),
        ))
    elif mime == "text/html" and message.html is None and body.get("data"):
        message.html = _text(part)
    elif mime == "text/plain" and message.text is None and body.get("data"):
        message.text = _text(part)
    for child in part.get("parts") or []:
        _walk(child, message)


def parse(raw: dict[str, Any]) -> Message:
    payload = raw.get("payload") or {}
    headers = {h["name"].lower(): h["value"] for h in payload.get("headers") or [] if "name" in h}
    received = dt.datetime.fromtimestamp(int(raw.get("internalDate") or 0) / 1000, dt.UTC)
    message = Message(id=raw["id"], received_at=received, subject=headers.get("subject", "").strip())
    addresses = getaddresses([headers.get("from", "")])
    if addresses and addresses[0][1]:
        name, address = addresses[0]
        message.sender, message.sender_name = address, name.strip().strip('"')
        message.sender_domain = address.rpartition("@")[2].lower()
    _walk(payload, message)
    return message

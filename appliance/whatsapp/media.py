"""Inbound WhatsApp media, fetched through the bridge into ``DATA_DIR``.

The bridge must answer ``GET {BAILEYS_URL}/media/<tenant>/<message id>`` with the decrypted file
(Baileys' ``downloadMediaMessage`` on the message it received with that id) and its ``Content-Type``, and
404 when it no longer holds the message. The file lands in ``DATA_DIR/<business>/whatsapp/`` under its
SHA-256 (``files.store_blob``: the same bytes are kept once) and the message's ``media.path`` names it; the
inbox serves it through a signed, expiring URL (``files.file_url``, ``GET /api/files/<token>``). A 404 marks
the media unavailable; connection errors, timeouts and 5xx fail the job, which retries with backoff.
"""

from __future__ import annotations

import logging
import mimetypes
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import trio
from sqlalchemy import select
from sqlalchemy.orm import Session

from appliance.files import store_blob
from appliance.models import WhatsAppMessage
from appliance.whatsapp.bridge import new_client

log = logging.getLogger(__name__)
FETCHED = frozenset({"image", "video", "video_note", "voice", "audio", "document", "sticker"})
MAX_BYTES = 100 * 1024 * 1024  # WhatsApp's own limit for media other than documents
TIMEOUT = httpx.Timeout(60.0, connect=5.0)


class MediaFetchError(Exception):
    """The bridge did not hand the file over (retried)."""


def _target(session: Session, business_id: int, message_id: int) -> tuple[str, dict[str, Any]] | None:
    row = session.scalar(select(WhatsAppMessage).where(WhatsAppMessage.business_id == business_id,
                                                      WhatsAppMessage.id == message_id))
    if row is None or not row.media or not row.provider_message_id:
        return None
    return row.provider_message_id, dict(row.media)


def _record(session: Session, business_id: int, message_id: int, changes: dict[str, Any]) -> None:
    row = session.scalar(select(WhatsAppMessage).where(WhatsAppMessage.business_id == business_id,
                                                      WhatsAppMessage.id == message_id).with_for_update())
    if row is not None:
        row.media = {**(row.media or {}), **changes}


def _suffix(media: dict[str, Any], content_type: str | None) -> str:
    name = media.get("file_name") or ""
    suffix = Path(name).suffix.lower() if name else ""
    if not suffix:
        mime = (media.get("mimetype") or content_type or "").split(";")[0].strip()
        suffix = mimetypes.guess_extension(mime) or ""
    return suffix if suffix[1:].isalnum() and len(suffix) <= 10 else ""


async def download(base_url: str, business_id: int, provider_id: str) -> tuple[bytes, str | None] | None:
    """The file and its content type; None when the bridge no longer has it (404)."""
    url = f"{base_url.rstrip('/')}/media/{business_id}/{quote(provider_id, safe='')}"
    try:
        async with new_client() as client, client.stream("GET", url, timeout=TIMEOUT) as response:
            if response.status_code == 404:
                return None
            if response.status_code >= 300:
                raise MediaFetchError(f"bridge answered {response.status_code} for {url}")
            data = bytearray()
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) > MAX_BYTES:
                    raise MediaFetchError(f"media over {MAX_BYTES} bytes refused")
            return bytes(data), response.headers.get("content-type")
    except httpx.TransportError as exc:
        raise MediaFetchError(f"bridge unreachable: {type(exc).__name__}: {exc}") from exc


async def fetch(services: Any, business_id: int, message_id: int) -> dict[str, Any]:
    target = await services.db.run(_target, business_id, message_id)
    if target is None:
        return {"fetched": False, "reason": "no such media message"}
    provider_id, media = target
    if media.get("path"):
        return {"fetched": False, "reason": "already fetched", "path": media["path"]}
    got = await download(services.settings.require("baileys_url"), business_id, provider_id)
    if got is None:
        await services.db.run(_record, business_id, message_id, {"unavailable": True})
        return {"fetched": False, "reason": "the bridge no longer has it"}
    data, content_type = got
    relpath, _ = await trio.to_thread.run_sync(store_blob, services.settings.data_dir, business_id, "whatsapp",
                                               data, _suffix(media, content_type))
    changes: dict[str, Any] = {"path": relpath, "size": len(data)}
    if not media.get("mimetype") and content_type:
        changes["mimetype"] = content_type
    await services.db.run(_record, business_id, message_id, changes)
    return {"fetched": True, "path": relpath, "size": len(data)}

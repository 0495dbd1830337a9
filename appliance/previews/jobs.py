"""Preview jobs (declared in ``appliance/jobs/catalog.py``, on the low queue):

- ``previews.render_email {business_id, receipt_id}``: the email body to PNG (``receipts.preview_path``) and
  its top as a list thumbnail (``receipts.thumbnail_path``);
- ``previews.pdf_thumbnail {business_id, attachment_id}``: a PDF's first page (``thumbnail_path``);
- ``previews.screenshot {business_id, html_path, width, max_height}``: any stored HTML page to PNG, for
  other features; the result's path is in the job's result.

Files go under ``DATA_DIR/<business>/previews/``. A job that finds its result already made does nothing.
A failure that belongs to the input (refused, too slow, crashed its renderer) is recorded on the row and
ends the job; an unavailable browser raises, so the job is retried later.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import trio

from appliance.files.storage import absolute_path, store_blob, store_file
from appliance.jobs.registry import JobArgumentsError, JobContext
from appliance.previews import images, store
from appliance.previews.document import InlinePart, text_document
from appliance.previews.errors import DocumentError, PreviewError, RendererUnavailableError
from appliance.previews.pool import shared
from appliance.services import Services

log = logging.getLogger(__name__)
KIND = "previews"
MAX_PAGE_BYTES = 2 * 1024 * 1024


async def render_email(ctx: JobContext, business_id: int, receipt_id: int) -> dict[str, Any]:
    services: Services = ctx.services
    data_dir = services.settings.data_dir
    source = await services.db.run(store.email_source, business_id, receipt_id)
    if source is None:
        return {"status": "missing"}
    if source.preview_error is not None:
        return {"status": "failed", "error": source.preview_error}
    if source.preview_path and await _exists(data_dir, business_id, source.preview_path):
        return {"status": "exists", "preview_path": source.preview_path}
    if not source.html and not source.text:
        return {"status": "empty"}
    page = source.html or text_document(source.text or "")
    inline = await trio.to_thread.run_sync(_inline_parts, data_dir, business_id, source.inline)
    previews = await shared(services)
    try:
        rendered = await previews.render_html(page, inline=inline)
    except RendererUnavailableError:
        raise
    except PreviewError as exc:
        await services.db.run(store.save_email_preview, business_id, receipt_id, None, None, str(exc))
        log.warning("receipt %s of business %s: no preview: %s", receipt_id, business_id, exc)
        return {"status": "failed", "error": str(exc)}
    preview, thumbnail = await trio.to_thread.run_sync(_store_email, data_dir, business_id, rendered.png)
    await services.db.run(store.save_email_preview, business_id, receipt_id, preview, thumbnail, None)
    return {"status": "done", "preview_path": preview, "thumbnail_path": thumbnail,
            "truncated": rendered.truncated}


async def pdf_thumbnail(ctx: JobContext, business_id: int, attachment_id: int) -> dict[str, Any]:
    services: Services = ctx.services
    data_dir = services.settings.data_dir
    source = await services.db.run(store.pdf_source, business_id, attachment_id)
    if source is None or not source.storage_path:
        return {"status": "missing"}
    if source.preview_error is not None:
        return {"status": "failed", "error": source.preview_error}
    if source.thumbnail_path and await _exists(data_dir, business_id, source.thumbnail_path):
        return {"status": "exists", "thumbnail_path": source.thumbnail_path}
    pdf_path = await trio.to_thread.run_sync(absolute_path, data_dir, business_id, source.storage_path)
    previews = await shared(services)
    try:
        if pdf_path is None:
            raise DocumentError(f"the stored PDF {source.storage_path} is missing")
        made = await previews.pdf_thumbnail(pdf_path)
    except RendererUnavailableError:
        raise
    except PreviewError as exc:
        await services.db.run(store.save_thumbnail, business_id, attachment_id, None, str(exc))
        log.warning("attachment %s of business %s: no thumbnail: %s", attachment_id, business_id, exc)
        return {"status": "failed", "error": str(exc)}
    relpath, _ = await trio.to_thread.run_sync(store_blob, data_dir, business_id, KIND, made.png, ".png")
    await services.db.run(store.save_thumbnail, business_id, attachment_id, relpath, None)
    return {"status": "done", "thumbnail_path": relpath, "width": made.width, "height": made.height}


async def screenshot(ctx: JobContext, business_id: int, html_path: str, width: int = 800,
                     max_height: int = 8000) -> dict[str, Any]:
    """A PNG of the stored page ``html_path`` (relative to DATA_DIR, inside the business's folder), under the
    same rules as an email (nothing fetched, deadline). Named by its input, so a re-run finds it made."""
    services: Services = ctx.services
    data_dir = services.settings.data_dir
    try:
        page = await trio.to_thread.run_sync(_read_page, data_dir, business_id, html_path)
    except DocumentError as exc:  # nothing to retry: the arguments name no page of this business
        raise JobArgumentsError(str(exc)) from None
    key = hashlib.sha256(f"{width}x{max_height}\n".encode() + page).hexdigest()
    relpath = f"{business_id}/{KIND}/pages/{key}.png"
    if await _exists(data_dir, business_id, relpath):
        return {"status": "exists", "path": relpath}
    previews = await shared(services)
    rendered = await previews.render_html(page.decode("utf-8", "replace"), width=width, max_height=max_height)
    await trio.to_thread.run_sync(store_file, data_dir, relpath, rendered.png)
    return {"status": "done", "path": relpath, "width": rendered.width, "height": rendered.height,
            "truncated": rendered.truncated}


async def _exists(data_dir: Path, business_id: int, relpath: str) -> bool:
    return await trio.to_thread.run_sync(absolute_path, data_dir, business_id, relpath) is not None


def _read_page(data_dir: Path, business_id: int, relpath: str) -> bytes:
    path = absolute_path(data_dir, business_id, relpath)
    if path is None:
        raise DocumentError(f"html_path {relpath!r} is not a file of business {business_id}")
    if path.stat().st_size > MAX_PAGE_BYTES:
        raise DocumentError(f"html_path {relpath!r} is over {MAX_PAGE_BYTES} bytes")
    return path.read_bytes()


def _inline_parts(data_dir: Path, business_id: int, parts: list[store.InlineFile]) -> dict[str, InlinePart]:
    found = {}
    for part in parts:
        path = absolute_path(data_dir, business_id, part.storage_path)
        if path is not None:
            found[part.content_id] = InlinePart(part.content_type, path.read_bytes())
    return found


def _store_email(data_dir: Path, business_id: int, png: bytes) -> tuple[str, str]:
    preview, _ = store_blob(data_dir, business_id, KIND, png, ".png")
    thumbnail, _ = store_blob(data_dir, business_id, KIND, images.email_thumbnail(png), ".png")
    return preview, thumbnail

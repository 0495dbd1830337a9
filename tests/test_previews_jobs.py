"""Preview jobs through the real worker, real Chromium and PDFium, real PostgreSQL and Redis: a saved receipt
gets its previews through the receipts hook, served by signed URLs; hostile files fail on their row while the
worker goes on; re-runs replace nothing; ``appliance previews rebuild`` redoes them; ``previews.screenshot``."""

from __future__ import annotations

import datetime as dt
import io
import os
from decimal import Decimal

import pytest
import trio
from cryptography.fernet import Fernet
from PIL import Image
from pydantic import SecretStr
from sqlalchemy import select

from appliance.files.storage import store_blob
from appliance.jobs.queue import JobQueue
from appliance.jobs.worker import Worker
from appliance.models import Receipt, ReceiptAttachment
from appliance.previews.cli import rebuild_command
from appliance.receipts import store as receipts_store
from appliance.receipts.hooks import receipts_saved
from tests import pdf_samples
from tests.conftest import bearer, make_tenant
from tests.helpers import wait_until
from tests.test_previews import Tracker, colours, hostile_email, red_png

pytestmark = pytest.mark.slow


@pytest.fixture
def settings(settings):  # conftest's, with file signing and a short render deadline
    return settings.model_copy(update={"encryption_key": SecretStr(Fernet.generate_key().decode()),
                                       "preview_render_deadline": 5.0, "preview_pdf_deadline": 5.0})


async def add_receipt(services, business_id: int, n: int, html: str | None, attachments: list[dict]) -> int:
    [receipt_id] = await services.db.run(receipts_store.insert_receipts, business_id, None, [{
        "gmail_message_id": f"m{business_id}-{n}", "vendor": "Shop", "subject": f"Receipt {n}",
        "amount": Decimal("42.00"), "currency": "USD", "status": "new", "source": "body",
        "received_at": dt.datetime(2025, 3, 1, 10, tzinfo=dt.UTC), "body_html": html,
        "body_text": None if html else "Thank you!\nTotal: 42.00 USD", "attachments": attachments}])
    return receipt_id


def stored(services, business_id: int, data: bytes, filename: str, mime: str, cid: str | None = None) -> dict:
    relpath, digest = store_blob(services.settings.data_dir, business_id, "attachments", data)
    return {"filename": filename, "mime_type": mime, "size_bytes": len(data), "storage_path": relpath,
            "sha256": digest, "content_id": cid}


async def drain(queue: JobQueue, expected: int) -> None:
    async def done() -> bool:
        return (await queue.stats())["totals"].get("finished", 0) >= expected

    await wait_until(done, timeout=120, step=0.1)


def png_size(path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


async def test_receipt_previews_through_the_worker_signed_and_idempotent(services, client, nursery):
    business_id, _, token = await make_tenant(services)
    _, _, other = await make_tenant(services)
    data_dir = services.settings.data_dir
    tracker = Tracker()
    await nursery.start(tracker.serve)
    good_pdf = stored(services, business_id, pdf_samples.invoice(), "invoice.pdf", "application/pdf")
    bad_pdf = stored(services, business_id, pdf_samples.invoice()[:400], "broken.pdf", "application/pdf")
    logo = stored(services, business_id, red_png(), "logo.png", "image/png", cid="logo@shop.example")
    email_id = await add_receipt(services, business_id, 1, hostile_email(tracker.port), [good_pdf, bad_pdf, logo])
    text_id = await add_receipt(services, business_id, 2, None, [])
    bomb_id = await add_receipt(services, business_id, 3, "<div>" * 150_000 + "x", [])

    queue = JobQueue(services.redis, services.keys)
    assert await receipts_saved(services, business_id, [email_id, text_id, bomb_id]) == 5
    worker = Worker(services, concurrency=4, lease=30, grace=5)
    await nursery.start(worker.run, trio.Event())
    await drain(queue, 5)

    receipts = {r.id: r for r in await services.db.run(lambda s: list(s.scalars(select(Receipt))))}
    attachments = {a.filename: a for a in await services.db.run(lambda s: list(s.scalars(select(ReceiptAttachment))))}
    email, text, bomb = receipts[email_id], receipts[text_id], receipts[bomb_id]
    assert png_size(data_dir / email.preview_path)[0] == 800
    shown = colours((data_dir / email.preview_path).read_bytes())
    assert shown.get((220, 0, 0), 0) >= 120 * 60 * 0.9  # the cid: logo, from its stored part
    assert max(png_size(data_dir / email.thumbnail_path)) == 400
    assert text.preview_path and len(colours((data_dir / text.preview_path).read_bytes())) > 5
    # Playwright's own timeout (half the deadline) or, failing that, the killed render process.
    assert bomb.preview_path is None and ("Timeout 2500ms" in bomb.preview_error
                                          or "took longer than 5s" in bomb.preview_error)
    assert png_size(data_dir / attachments["invoice.pdf"].thumbnail_path) == (283, 400)
    assert attachments["broken.pdf"].thumbnail_path is None
    assert "PDF cannot be opened" in attachments["broken.pdf"].preview_error
    assert str(business_id) == email.preview_path.split("/")[0] and "/previews/" in email.preview_path
    assert tracker.connections == 0

    # Served through signed URLs: the owner gets the PNGs, another tenant or a tampered link gets 403.
    detail = (await (await client.get(f"/api/receipts/{email_id}", headers=bearer(token))).get_json())["receipt"]
    pdf_row = next(a for a in detail["attachments"] if a["filename"] == "invoice.pdf")
    broken_row = next(a for a in detail["attachments"] if a["filename"] == "broken.pdf")
    assert broken_row["thumbnail_url"] is None and "PDF cannot be opened" in broken_row["preview_error"]
    assert detail["preview_error"] is None and pdf_row["preview_error"] is None
    for url in (detail["preview_url"], detail["thumbnail_url"], pdf_row["thumbnail_url"]):
        response = await client.get(url, headers=bearer(token))
        assert response.status_code == 200 and response.headers["Content-Type"] == "image/png"
        assert (await response.get_data())[:8] == b"\x89PNG\r\n\x1a\n"
        assert (await client.get(url, headers=bearer(other))).status_code == 403
        tampered = url[:-4] + ("AAAA" if not url.endswith("AAAA") else "BBBB")
        assert (await client.get(tampered, headers=bearer(token))).status_code == 403

    # A re-run replaces nothing: same paths, files untouched, failures kept.
    before = {p: os.stat(data_dir / p).st_mtime_ns for p in (email.preview_path, email.thumbnail_path)}
    assert await receipts_saved(services, business_id, [email_id, text_id, bomb_id]) == 5
    await drain(queue, 10)
    again = {r.id: r for r in await services.db.run(lambda s: list(s.scalars(select(Receipt))))}
    assert (again[email_id].preview_path, again[email_id].thumbnail_path) == (email.preview_path,
                                                                               email.thumbnail_path)
    assert {p: os.stat(data_dir / p).st_mtime_ns for p in before} == before
    assert again[bomb_id].preview_error == bomb.preview_error

    # ``appliance previews rebuild`` forgets them all and renders them again.
    assert await rebuild_command(services.settings, business_id) == 0
    await drain(queue, 15)
    rebuilt = {r.id: r for r in await services.db.run(lambda s: list(s.scalars(select(Receipt))))}
    assert rebuilt[email_id].preview_path and rebuilt[text_id].preview_path
    assert rebuilt[bomb_id].preview_path is None and rebuilt[bomb_id].preview_error


async def test_screenshot_job_renders_a_stored_page_once(services, nursery):
    business_id, _, _ = await make_tenant(services)
    other_id, _, _ = await make_tenant(services)
    data_dir = services.settings.data_dir
    page = data_dir / str(business_id) / "pages" / "report.html"
    page.parent.mkdir(parents=True)
    page.write_text("<h1 style='color:#0a4'>Monthly report</h1><p>42 receipts, 1,234.00 EUR</p>")
    queue = JobQueue(services.redis, services.keys)
    await nursery.start(Worker(services, concurrency=2, lease=30, grace=5).run, trio.Event())
    args = {"business_id": business_id, "html_path": f"{business_id}/pages/report.html", "width": 640}
    first = await queue.enqueue("previews.screenshot", args)
    await drain(queue, 1)
    result = (await queue.get(first))["result"]
    assert result["status"] == "done" and result["path"].startswith(f"{business_id}/previews/pages/")
    with Image.open(io.BytesIO((data_dir / result["path"]).read_bytes())) as image:
        assert image.width == 640
    second = await queue.enqueue("previews.screenshot", args)
    await drain(queue, 2)
    assert (await queue.get(second))["result"] == {"status": "exists", "path": result["path"]}
    stolen = await queue.enqueue("previews.screenshot", {**args, "business_id": other_id})
    with trio.fail_after(60):
        while (await queue.get(stolen))["status"] != "dead":
            await trio.sleep(0.1)
    assert "is not a file of business" in (await queue.get(stolen))["error"]

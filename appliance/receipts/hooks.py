"""What happens after receipts are saved: the previews issue's jobs are enqueued, by name, if declared.

``previews.render_email`` gets ``{"business_id", "receipt_id"}`` for each new receipt (its HTML body is in
``receipts.body_html``, or plain text in ``body_text``; the result goes to ``receipts.preview_path`` and
``thumbnail_path``), and ``previews.pdf_thumbnail`` gets ``{"business_id", "attachment_id"}`` for each PDF
attachment stored with it (file at ``DATA_DIR/<storage_path>``; result to
``receipt_attachments.thumbnail_path``). While those jobs are not declared, or with
``RECEIPTS_PREVIEWS=false``, this is a no-op.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from appliance.jobs.catalog import JOBS
from appliance.jobs.queue import JobQueue
from appliance.models import ReceiptAttachment
from appliance.redis import REDIS_DOWN
from appliance.services import Services

log = logging.getLogger(__name__)
RENDER_EMAIL = "previews.render_email"
PDF_THUMBNAIL = "previews.pdf_thumbnail"


def declared(name: str) -> bool:
    return JOBS.get(name) is not None


def pdf_attachments(session: Session, business_id: int, receipt_ids: list[int]) -> list[int]:
    return list(session.scalars(select(ReceiptAttachment.id).where(
        ReceiptAttachment.business_id == business_id, ReceiptAttachment.receipt_id.in_(receipt_ids),
        ReceiptAttachment.mime_type == "application/pdf", ReceiptAttachment.storage_path.is_not(None),
    ).order_by(ReceiptAttachment.id)))


async def receipts_saved(services: Services, business_id: int, receipt_ids: list[int]) -> int:
    """Enqueue the preview jobs for freshly saved receipts; returns how many jobs were enqueued.

    A preview is a nicety: if Redis is down now, the receipts stay saved and the failure is logged."""
    if not services.settings.receipts_previews:
        return 0
    queue = JobQueue(services.redis, services.keys)
    jobs: list[tuple[str, dict[str, int]]] = []
    if declared(RENDER_EMAIL):
        jobs += [(RENDER_EMAIL, {"business_id": business_id, "receipt_id": rid}) for rid in receipt_ids]
    if declared(PDF_THUMBNAIL):
        attachment_ids = await services.db.run(pdf_attachments, business_id, receipt_ids)
        jobs += [(PDF_THUMBNAIL, {"business_id": business_id, "attachment_id": a}) for a in attachment_ids]
    try:
        for name, args in jobs:
            await queue.enqueue(name, args)
    except REDIS_DOWN as exc:
        log.warning("preview jobs for receipts %s not enqueued (redis down: %s)", receipt_ids, exc)
        return 0
    return len(jobs)

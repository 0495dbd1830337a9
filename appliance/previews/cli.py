"""``appliance previews rebuild --business ID``: forget a business's previews and render them all again."""

from __future__ import annotations

from appliance.jobs.queue import JobQueue
from appliance.previews.store import forget_previews
from appliance.receipts.hooks import PDF_THUMBNAIL, RENDER_EMAIL
from appliance.services import open_services
from appliance.settings import Settings


async def rebuild_command(settings: Settings, business_id: int) -> int:
    async with open_services(settings) as services:
        receipts, pdfs = await services.db.run(forget_previews, business_id)
        queue = JobQueue(services.redis, services.keys)
        for receipt_id in receipts:
            await queue.enqueue(RENDER_EMAIL, {"business_id": business_id, "receipt_id": receipt_id})
        for attachment_id in pdfs:
            await queue.enqueue(PDF_THUMBNAIL, {"business_id": business_id, "attachment_id": attachment_id})
    print(f"business {business_id}: {len(receipts)} email previews and {len(pdfs)} PDF thumbnails queued")
    return 0

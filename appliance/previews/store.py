"""Database functions of previews (each takes a session and filters by business).

A preview is written once: the ``save_*`` functions fill a row's path or error only while both are empty,
so a job that runs twice, or two that race, replace nothing that exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from appliance.models import Receipt, ReceiptAttachment


@dataclass(frozen=True)
class InlineFile:
    content_id: str
    content_type: str
    storage_path: str


@dataclass(frozen=True)
class EmailSource:
    html: str | None
    text: str | None
    preview_path: str | None
    preview_error: str | None
    inline: list[InlineFile]


@dataclass(frozen=True)
class PdfSource:
    storage_path: str | None
    thumbnail_path: str | None
    preview_error: str | None


def email_source(session: Session, business_id: int, receipt_id: int) -> EmailSource | None:
    receipt = session.scalar(select(Receipt).where(Receipt.business_id == business_id, Receipt.id == receipt_id))
    if receipt is None:
        return None
    parts = session.execute(select(ReceiptAttachment.content_id, ReceiptAttachment.mime_type,
                                   ReceiptAttachment.storage_path).where(
        ReceiptAttachment.business_id == business_id, ReceiptAttachment.receipt_id == receipt_id,
        ReceiptAttachment.content_id.is_not(None), ReceiptAttachment.storage_path.is_not(None),
        ReceiptAttachment.mime_type.like("image/%"),
    ))
    inline = [InlineFile(str(cid), str(mime), str(path)) for cid, mime, path in parts]
    return EmailSource(receipt.body_html, receipt.body_text, receipt.preview_path, receipt.preview_error, inline)


def save_email_preview(session: Session, business_id: int, receipt_id: int, preview_path: str | None,
                       thumbnail_path: str | None, error: str | None) -> bool:
    """Record a render (paths) or its failure (error); False when the receipt already had either."""
    result = session.execute(update(Receipt).where(
        Receipt.business_id == business_id, Receipt.id == receipt_id,
        Receipt.preview_path.is_(None), Receipt.preview_error.is_(None),
    ).values(preview_path=preview_path, thumbnail_path=thumbnail_path, preview_error=error))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def pdf_source(session: Session, business_id: int, attachment_id: int) -> PdfSource | None:
    row = session.execute(select(ReceiptAttachment.storage_path, ReceiptAttachment.thumbnail_path,
                                 ReceiptAttachment.preview_error).where(
        ReceiptAttachment.business_id == business_id, ReceiptAttachment.id == attachment_id)).first()
    return PdfSource(*row) if row is not None else None


def save_thumbnail(session: Session, business_id: int, attachment_id: int, thumbnail_path: str | None,
                   error: str | None) -> bool:
    result = session.execute(update(ReceiptAttachment).where(
        ReceiptAttachment.business_id == business_id, ReceiptAttachment.id == attachment_id,
        ReceiptAttachment.thumbnail_path.is_(None), ReceiptAttachment.preview_error.is_(None),
    ).values(thumbnail_path=thumbnail_path, preview_error=error))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def forget_previews(session: Session, business_id: int) -> tuple[list[int], list[int]]:
    """Clear every preview, thumbnail and failure of a business (files stay: they are content-addressed
    and may be shared); returns (receipt ids, PDF attachment ids) to render again."""
    receipts = list(session.scalars(update(Receipt).where(Receipt.business_id == business_id).values(
        preview_path=None, thumbnail_path=None, preview_error=None).returning(Receipt.id)))
    pdfs = list(session.scalars(update(ReceiptAttachment).where(
        ReceiptAttachment.business_id == business_id, ReceiptAttachment.mime_type == "application/pdf",
    ).values(thumbnail_path=None, preview_error=None).returning(ReceiptAttachment.id)))
    return sorted(receipts), sorted(pdfs)

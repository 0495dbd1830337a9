"""Receipts and the Gmail connection in the database. Every query filters by ``business_id``."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import DateTime, cast, func, literal, or_, select
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.orm import Session

from appliance.files.signing import file_url
from appliance.models import Business, GmailConnection, Receipt, ReceiptAttachment
from appliance.receipts.money import iso_currency
from appliance.settings import Settings

ReceiptStatus = Literal["new", "approved", "rejected"]
STATUSES: tuple[str, ...] = ReceiptStatus.__args__  # type: ignore[attr-defined]


# -- the business's zone ---------------------------------------------------------------------------------
def business_zone(session: Session, business_id: int) -> ZoneInfo:
    """The business's IANA ``timezone`` (UTC when unset or unknown)."""
    name = session.scalar(select(Business.timezone).where(Business.id == business_id))
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def day_bounds(zone: ZoneInfo, first: dt.date | None, last: dt.date | None
               ) -> tuple[dt.datetime | None, dt.datetime | None]:
    """[start of ``first``, start of the day after ``last``) in ``zone``: both days inclusive."""
    start = dt.datetime.combine(first, dt.time(), zone) if first else None
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), zone) if last else None
    return start, end


# -- connection ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Connection:
    email: str | None
    encrypted_refresh_token: str
    status: str
    history_id: str | None


def save_connection(session: Session, business_id: int, email: str | None, encrypted_refresh_token: str,
                    scopes: str | None) -> None:
    row = session.scalar(select(GmailConnection).where(GmailConnection.business_id == business_id))
    if row is None:
        row = GmailConnection(business_id=business_id)
        session.add(row)
    elif row.email != email:
        row.history_id = None  # another mailbox: its history ids mean nothing here
    row.email, row.scopes, row.status = email, scopes, "ok"
    row.encrypted_refresh_token = encrypted_refresh_token


def load_connection(session: Session, business_id: int) -> Connection | None:
    row = session.scalar(select(GmailConnection).where(GmailConnection.business_id == business_id))
    if row is None:
        return None
    return Connection(row.email, row.encrypted_refresh_token, row.status, row.history_id)


def connection_status(session: Session, business_id: int) -> dict[str, Any]:
    row = load_connection(session, business_id)
    if row is None:
        return {"connected": False, "email": None, "status": None}
    return {"connected": True, "email": row.email, "status": row.status}


def delete_connection(session: Session, business_id: int) -> bool:
    row = session.scalar(select(GmailConnection).where(GmailConnection.business_id == business_id))
    if row is None:
        return False
    session.delete(row)
    return True


def set_connection(session: Session, business_id: int, **values: Any) -> None:
    row = session.scalar(select(GmailConnection).where(GmailConnection.business_id == business_id))
    if row is not None:
        for name, value in values.items():
            setattr(row, name, value)


# -- receipts --------------------------------------------------------------------------------------------
class ReceiptPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    status: ReceiptStatus | None = None
    vendor: str | None = Field(default=None, min_length=1, max_length=200)
    amount: Decimal | None = Field(default=None, ge=0, max_digits=12, decimal_places=2)
    currency: str | None = None

    @field_validator("currency")
    @classmethod
    def _iso(cls, value: str | None) -> str | None:
        if value is not None and iso_currency(value) is None:
            raise ValueError("must be an ISO 4217 currency code such as ILS, USD or EUR")
        return value.upper() if value else value


def _amount(value: Decimal | None) -> str | None:
    return f"{value:.2f}" if value is not None else None


def receipt_dict(settings: Settings, receipt: Receipt,
                 attachments: list[ReceiptAttachment] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": receipt.id, "vendor": receipt.vendor, "subject": receipt.subject,
        "amount": _amount(receipt.amount), "currency": receipt.currency,
        "received_at": receipt.received_at.isoformat(), "status": receipt.status,
        "gmail_message_id": receipt.gmail_message_id, "sender": receipt.sender, "source": receipt.source,
        "created_at": receipt.created_at.isoformat(), "updated_at": receipt.updated_at.isoformat(),
        "preview_url": file_url(settings, receipt.business_id, receipt.preview_path),
        "thumbnail_url": file_url(settings, receipt.business_id, receipt.thumbnail_path),
        "preview_error": receipt.preview_error,  # why there is no preview (a failed render), else null
    }
    if attachments is not None:
        out["attachments"] = [{
            "id": a.id, "filename": a.filename, "content_type": a.mime_type, "size": a.size_bytes,
            "url": file_url(settings, receipt.business_id, a.storage_path),
            "thumbnail_url": file_url(settings, receipt.business_id, a.thumbnail_path),
            "preview_error": a.preview_error,
        } for a in attachments]
    return out


@dataclass(frozen=True)
class ReceiptFilter:
    business_id: int
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    status: str | None = None
    q: str | None = None

    def apply(self, query: Any) -> Any:
        query = query.where(Receipt.business_id == self.business_id)
        if self.start is not None:
            query = query.where(Receipt.received_at >= self.start)
        if self.end is not None:
            query = query.where(Receipt.received_at < self.end)
        if self.status:
            query = query.where(Receipt.status == self.status)
        if self.q:
            like = "%" + self.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            query = query.where(or_(Receipt.vendor.ilike(like), Receipt.subject.ilike(like)))
        return query


def list_receipts(session: Session, settings: Settings, where: ReceiptFilter, page: int, per_page: int
                  ) -> tuple[list[dict[str, Any]], int]:
    total = session.scalar(where.apply(select(func.count()).select_from(Receipt))) or 0
    newest_first = (Receipt.received_at.desc(), Receipt.id.desc())
    rows = session.scalars(where.apply(select(Receipt)).order_by(*newest_first)
                           .offset((page - 1) * per_page).limit(per_page))
    return [receipt_dict(settings, r) for r in rows], total


def _owned(session: Session, business_id: int, receipt_id: int) -> Receipt | None:
    return session.scalar(select(Receipt).where(Receipt.id == receipt_id, Receipt.business_id == business_id))


def _attachments(session: Session, business_id: int, receipt_id: int) -> list[ReceiptAttachment]:
    return list(session.scalars(select(ReceiptAttachment).where(
        ReceiptAttachment.business_id == business_id, ReceiptAttachment.receipt_id == receipt_id,
    ).order_by(ReceiptAttachment.id)))


def get_receipt(session: Session, settings: Settings, business_id: int,
                receipt_id: int) -> dict[str, Any] | None:
    receipt = _owned(session, business_id, receipt_id)
    if receipt is None:
        return None
    return receipt_dict(settings, receipt, _attachments(session, business_id, receipt_id))


def update_receipt(session: Session, settings: Settings, business_id: int, receipt_id: int,
                   patch: ReceiptPatch) -> dict[str, Any] | None:
    receipt = _owned(session, business_id, receipt_id)
    if receipt is None:
        return None
    for name, value in patch.model_dump(exclude_unset=True).items():
        if value is None and name == "status":
            continue
        setattr(receipt, name, value)
    session.flush()
    session.refresh(receipt)
    return receipt_dict(settings, receipt, _attachments(session, business_id, receipt_id))


def month_starts(zone: ZoneInfo, first: dt.datetime, last: dt.datetime) -> list[dt.datetime]:
    """The start of every month in ``zone`` from ``first``'s month to the month after ``last``'s."""
    day = first.astimezone(zone).date().replace(day=1)
    end = last.astimezone(zone).date()
    starts = []
    while True:
        starts.append(dt.datetime.combine(day, dt.time(), zone))
        if day > end:
            return starts
        day = (day + dt.timedelta(days=32)).replace(day=1)


def receipt_stats(session: Session, zone: ZoneInfo, where: ReceiptFilter) -> dict[str, Any]:
    """Counts by status, totals by currency and by month (in the business's zone).

    One hash aggregation at the finest grain (status, currency, month), rolled up here: months are
    ``width_bucket`` over the zone's month starts, so no row is converted to the zone one by one (about
    4x faster on 100,000 receipts than GROUPING SETS over a per-row ``to_char(timezone(...))``)."""
    first, last = session.execute(where.apply(select(func.min(Receipt.received_at),
                                                     func.max(Receipt.received_at)))).one()
    by_status = {status: 0 for status in STATUSES}
    if first is None:
        return {"by_status": by_status, "totals": [], "by_month": []}
    starts = month_starts(zone, first, last)
    bucket = func.width_bucket(Receipt.received_at, cast(literal(starts), ARRAY(DateTime(timezone=True))))
    query = where.apply(select(Receipt.status, Receipt.currency, bucket, func.count(),
                               func.coalesce(func.sum(Receipt.amount), 0)))
    totals: dict[str | None, list[Any]] = {}
    months: dict[tuple[str, str | None], list[Any]] = {}
    grouped = query.group_by(Receipt.status, Receipt.currency, bucket)
    for status, currency, index, count, amount in session.execute(grouped):
        by_status[status] = by_status.get(status, 0) + count
        month = starts[index - 1].strftime("%Y-%m")
        for entry in (totals.setdefault(currency, [Decimal(0), 0]),
                      months.setdefault((month, currency), [Decimal(0), 0])):
            entry[0] += amount
            entry[1] += count
    return {
        "by_status": by_status,
        "totals": sorted(({"currency": c, "amount": f"{a:.2f}", "count": n} for c, (a, n) in totals.items()),
                         key=lambda t: (-t["count"], t["currency"] or "")),
        "by_month": [{"month": m, "currency": c, "amount": f"{a:.2f}", "count": n}
                     for (m, c), (a, n) in sorted(months.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))],
    }


# -- saving what a sync found ----------------------------------------------------------------------------
def insert_receipts(session: Session, business_id: int, run_id: int | None,
                    found: list[dict[str, Any]]) -> list[int]:
    """Insert-or-skip on (business_id, gmail_message_id), in one statement; attachments only for the
    receipts new here. Each item: the Receipt columns plus ``attachments`` (ReceiptAttachment column dicts).
    Returns the ids of the receipts inserted."""
    if not found:
        return []
    rows = [{**{k: v for k, v in item.items() if k != "attachments"}, "business_id": business_id,
             "sync_run_id": run_id} for item in found]
    inserted = dict(session.execute(
        insert(Receipt).values(rows).on_conflict_do_nothing(index_elements=["business_id", "gmail_message_id"])
        .returning(Receipt.gmail_message_id, Receipt.id)).all())
    attachments = [{**attachment, "business_id": business_id, "receipt_id": inserted[item["gmail_message_id"]]}
                   for item in found if item["gmail_message_id"] in inserted
                   for attachment in item.get("attachments") or []]
    if attachments:
        session.execute(insert(ReceiptAttachment).values(attachments))
    return [inserted[item["gmail_message_id"]] for item in found if item["gmail_message_id"] in inserted]

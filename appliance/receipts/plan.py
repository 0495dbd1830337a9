"""What a sync request asks for, checked (422 naming the field), and the Gmail search it becomes.

Gmail reads ``after:``/``before:`` dates in its own zone, so the query is widened by a day each side and
the sync keeps exactly the messages whose date falls within the business-zone bounds in ``start_ms`` and
``end_ms``."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

from appliance.receipts.store import day_bounds

DEFAULT_MONTHS_BACK = 36


class SyncRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Literal["incremental", "full"] = "incremental"
    from_date: dt.date | None = None
    to_date: dt.date | None = None
    months_back: int | None = Field(default=None, ge=1, le=240)
    max_messages: int | None = Field(default=None, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _ordered(self) -> SyncRequest:
        if self.from_date and self.to_date and self.from_date > self.to_date:
            raise ValueError("from_date must not be after to_date")
        return self


def months_before(day: dt.date, months: int) -> dt.date:
    month_index = day.year * 12 + day.month - 1 - months
    year, month = divmod(month_index, 12)
    return dt.date(year, month + 1, min(day.day, 28))


def window(zone: ZoneInfo, first: dt.date | None, last: dt.date | None, months_back: int | None,
           today: dt.date) -> dict[str, Any]:
    """``{"query", "start_ms", "end_ms"}`` for a scan: explicit days, else ``months_back`` (default 36)."""
    if first is None and last is None:
        first = months_before(today, months_back or DEFAULT_MONTHS_BACK)
    start, end = day_bounds(zone, first, last)
    terms = []
    if start is not None:
        terms.append("after:" + (start.date() - dt.timedelta(days=1)).strftime("%Y/%m/%d"))
    if end is not None:
        terms.append("before:" + (end.date() + dt.timedelta(days=1)).strftime("%Y/%m/%d"))
    return {"query": " ".join(terms), "start_ms": _ms(start), "end_ms": _ms(end)}


def window_since(moment: dt.datetime) -> dict[str, Any]:
    """A bounded scan from a day before ``moment`` (history expired: rescan since the last good sync)."""
    start = moment - dt.timedelta(days=1)
    return {"query": "after:" + (start.date() - dt.timedelta(days=1)).strftime("%Y/%m/%d"),
            "start_ms": _ms(start), "end_ms": None}


def _ms(moment: dt.datetime | None) -> int | None:
    return int(moment.timestamp() * 1000) if moment else None


def plan_params(request: SyncRequest, zone: ZoneInfo, today: dt.date) -> dict[str, Any]:
    """The run's stored ``params``: what was asked plus the scan window it means."""
    params: dict[str, Any] = request.model_dump(mode="json")
    params["window"] = window(zone, request.from_date, request.to_date, request.months_back, today)
    return params

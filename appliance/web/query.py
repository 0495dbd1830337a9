"""Query-string parsing that names the bad parameter (400) instead of silently ignoring it."""

from __future__ import annotations

import datetime as dt

from quart import request

from appliance.web.errors import ApiError


def int_param(name: str, default: int, *, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise ApiError(400, f"{name} must be between {low} and {high}, got {value}")
    return value


def page_params(per_page: int = 25) -> tuple[int, int]:
    """``page`` (from 1) and ``per_page`` (1 to 200) of a paged list, each a 400 naming it when bad."""
    return int_param("page", 1, low=1, high=1_000_000), int_param("per_page", per_page, low=1, high=200)


def date_param(*names: str) -> dt.date | None:
    """The first of ``names`` present (``from_date`` or ``fromDate``), as a date in YYYY-MM-DD."""
    for name in names:
        raw = request.args.get(name)
        if raw:
            try:
                return dt.date.fromisoformat(raw)
            except ValueError:
                raise ApiError(400, f"{name} must be a date in YYYY-MM-DD format, got {raw!r}") from None
    return None

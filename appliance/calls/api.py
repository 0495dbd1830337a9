"""Calls on record for the caller's business, newest first (``?phone=`` for one number's calls)."""

from __future__ import annotations

from functools import partial

from quart import Blueprint, request

from appliance.calls import store as calls
from appliance.leads.store import normalize_phone
from appliance.web.auth import require_auth
from appliance.web.context import principal, services
from appliance.web.errors import ApiError
from appliance.web.query import page_params

bp = Blueprint("calls", __name__)


@bp.get("/api/calls")
@require_auth
async def list_calls():
    page, per_page = page_params()
    phone = request.args.get("phone") or None
    if phone is not None:
        try:
            phone = normalize_phone(phone)
        except ValueError as exc:
            raise ApiError(400, f"phone {exc}") from None
    rows, total = await services().db.run(partial(
        calls.list_calls, business_id=principal().business_id, page=page, per_page=per_page, phone=phone))
    return {"success": True, "calls": rows, "total": total, "page": page, "per_page": per_page}


@bp.get("/api/calls/<int:call_id>")
@require_auth
async def get_call(call_id: int):
    found = await services().db.run(calls.get_call, principal().business_id, call_id)
    if found is None:
        raise ApiError(404, "call not found")
    return {"success": True, "call": found}

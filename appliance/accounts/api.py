"""The business's settings over HTTP: ``GET|PATCH /api/settings``, scoped to the caller's business."""

from __future__ import annotations

from quart import Blueprint

from appliance.accounts import business
from appliance.web.auth import require_auth
from appliance.web.body import json_object
from appliance.web.context import principal, services
from appliance.web.errors import ApiError

bp = Blueprint("accounts", __name__)


@bp.get("/api/settings")
@require_auth
async def get_settings():
    found = await services().db.run(business.get_settings, principal().business_id)
    if found is None:
        raise ApiError(404, "business not found")
    return {"success": True, "settings": found}


@bp.patch("/api/settings")
@require_auth
async def patch_settings():
    patch = business.SettingsPatch.model_validate(await json_object())  # 422 naming the field
    updated = await services().db.run(business.update_settings, principal().business_id, patch)
    if updated is None:
        raise ApiError(404, "business not found")
    return {"success": True, "settings": updated}

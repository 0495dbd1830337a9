"""Leads CRUD, scoped to the caller's business: another tenant's lead is a 404 and stays untouched."""

from __future__ import annotations

from functools import partial

from quart import Blueprint, request

from appliance.leads import store as leads
from appliance.web.auth import require_auth
from appliance.web.body import json_body
from appliance.web.context import principal, services
from appliance.web.errors import ApiError
from appliance.web.query import page_params

bp = Blueprint("leads", __name__)


def _not_found(lead_id: int) -> ApiError:
    return ApiError(404, f"lead {lead_id} not found")


@bp.get("/api/leads")
@require_auth
async def list_leads():
    page, per_page = page_params()
    status = request.args.get("status") or None
    if status is not None and status not in leads.LeadStatus.__args__:
        raise ApiError(400, f"status must be one of {', '.join(leads.LeadStatus.__args__)}")
    rows, total = await services().db.run(partial(
        leads.list_leads, business_id=principal().business_id, q=request.args.get("q"), status=status,
        page=page, per_page=per_page,
    ))
    return {"success": True, "leads": rows, "total": total, "page": page, "per_page": per_page}


@bp.post("/api/leads")
@require_auth
@json_body(leads.LeadCreate)
async def create_lead(body: leads.LeadCreate):
    lead = await services().db.run(leads.create_lead, principal().business_id, body)
    return {"success": True, "lead": lead}, 201


@bp.get("/api/leads/<int:lead_id>")
@require_auth
async def get_lead(lead_id: int):
    lead = await services().db.run(leads.get_lead, principal().business_id, lead_id)
    if lead is None:
        raise _not_found(lead_id)
    return {"success": True, "lead": lead}


@bp.patch("/api/leads/<int:lead_id>")
@require_auth
@json_body(leads.LeadPatch)
async def patch_lead(lead_id: int, body: leads.LeadPatch):
    lead = await services().db.run(leads.update_lead, principal().business_id, lead_id, body)
    if lead is None:
        raise _not_found(lead_id)
    return {"success": True, "lead": lead}


@bp.delete("/api/leads/<int:lead_id>")
@require_auth
async def delete_lead(lead_id: int):
    if not await services().db.run(leads.delete_lead, principal().business_id, lead_id):
        raise _not_found(lead_id)
    return {"success": True}

"""Receipts and Gmail API (DESIGN.md "Receipts (Gmail)"): connect a mailbox, start and watch syncs, list,
read, correct and total receipts. Every query is scoped to the caller's business. Jobs are enqueued by
name; this module does not import Google's client (the OAuth callback loads it only to read the profile).
"""

from __future__ import annotations

import logging
from functools import partial

from quart import Blueprint, redirect, request

from appliance.receipts import GmailError, OAuthError, oauth, runs, store, tokens
from appliance.receipts.plan import SyncRequest
from appliance.receipts.start import NotConnectedError, SyncBusyError, start_sync
from appliance.settings import SettingMissingError
from appliance.web.auth import require_auth
from appliance.web.body import json_object
from appliance.web.context import job_queue, principal, services
from appliance.web.errors import ApiError, error_response
from appliance.web.query import date_param, page_params

log = logging.getLogger(__name__)
bp = Blueprint("receipts", __name__)
AFTER_CONNECT = "/#settings"


@bp.errorhandler(SettingMissingError)
async def _not_configured(exc: SettingMissingError):
    log.warning("%s %s -> 503 %s", request.method, request.path, exc)
    return error_response(503, str(exc))


# -- connecting a mailbox --------------------------------------------------------------------------------
@bp.get("/api/gmail/oauth/start")
@require_auth
async def oauth_start():
    settings = services().settings
    who = principal()
    state = oauth.make_state(settings, who.user_id, who.business_id)
    return redirect(oauth.consent_url(settings, state), 302)


@bp.get("/api/gmail/oauth/callback")
async def oauth_callback():
    svc = services()
    try:
        if request.args.get("error"):
            raise OAuthError(f"Google answered error={request.args['error']}")
        claims = oauth.read_state(svc.settings, request.args.get("state"))
        grant = await oauth.exchange_code(svc.settings, request.args.get("code"))
        email = await _profile_email(grant.refresh_token, claims.business_id)
    except OAuthError as exc:
        raise ApiError(400, str(exc)) from None
    except GmailError as exc:
        raise ApiError(400, f"reading the Gmail profile failed: {exc}") from None
    encrypted = tokens.encrypt(svc.settings, grant.refresh_token)
    await svc.db.run(store.save_connection, claims.business_id, email, encrypted, grant.scope)
    log.info("gmail connected for business %d (%s)", claims.business_id, email)
    return redirect(AFTER_CONNECT, 302)


async def _profile_email(refresh_token: str, business_id: int) -> str | None:
    from appliance.receipts.gmail import GmailClient  # Google's client: loaded only here, in the API role
    from appliance.receipts.quota import budget_for

    client = GmailClient(services().settings, refresh_token, budget_for(services(), business_id))
    return (await client.profile()).get("emailAddress")


@bp.get("/api/gmail/connection")
@require_auth
async def get_connection():
    return {"success": True, **await services().db.run(store.connection_status, principal().business_id)}


@bp.delete("/api/gmail/connection")
@require_auth
async def delete_connection():
    business_id = principal().business_id

    def forget(session) -> bool:
        active = runs.active_run_id(session, business_id)
        if active is not None:
            runs.finish(session, active, "failed", "the mailbox was disconnected")
        return store.delete_connection(session, business_id)

    if not await services().db.run(forget):
        raise ApiError(404, "no Gmail mailbox is connected")
    return {"success": True, "connected": False}


# -- syncing ---------------------------------------------------------------------------------------------
@bp.post("/api/receipts/sync")
@require_auth
async def post_sync():
    wanted = SyncRequest.model_validate(await json_object() if await request.get_data() else {})
    try:
        started = await start_sync(services(), job_queue(), principal().business_id, wanted)
    except NotConnectedError as exc:
        raise ApiError(412, str(exc)) from None
    except SyncBusyError as exc:
        raise ApiError(409, str(exc), run_id=exc.run_id) from None
    return {"success": True, "job_id": started.job_id, "run_id": started.run_id, "status": "queued"}, 202


@bp.get("/api/receipts/sync/status/<int:run_id>")
@require_auth
async def sync_status(run_id: int):
    run = await services().db.run(runs.get_run, principal().business_id, run_id)
    if run is None:
        raise ApiError(404, f"sync run {run_id} not found")
    return {"success": True, "run": run}


@bp.get("/api/receipts/sync/latest")
@require_auth
async def sync_latest():
    return {"success": True, "run": await services().db.run(runs.latest_run, principal().business_id)}


# -- reading ---------------------------------------------------------------------------------------------
async def _filter() -> tuple[store.ReceiptFilter, object]:
    first = date_param("from_date", "fromDate")
    last = date_param("to_date", "toDate")
    if first and last and first > last:
        raise ApiError(400, "from_date must not be after to_date (both YYYY-MM-DD, inclusive)")
    status = request.args.get("status") or None
    if status is not None and status not in store.STATUSES:
        raise ApiError(400, f"status must be one of {', '.join(store.STATUSES)}")
    business_id = principal().business_id
    zone = await services().db.run(store.business_zone, business_id)
    start, end = store.day_bounds(zone, first, last)
    q = (request.args.get("q") or "").strip() or None
    return store.ReceiptFilter(business_id, start, end, status, q), zone


@bp.get("/api/receipts")
@require_auth
async def list_receipts():
    page, per_page = page_params(50)
    where, _ = await _filter()
    svc = services()
    items, total = await svc.db.run(partial(store.list_receipts, settings=svc.settings, where=where,
                                            page=page, per_page=per_page))
    return {"success": True, "items": items, "total": total, "page": page, "per_page": per_page}


@bp.get("/api/receipts/stats")
@require_auth
async def receipt_stats():
    where, zone = await _filter()
    return {"success": True, **await services().db.run(store.receipt_stats, zone, where)}


@bp.get("/api/receipts/<int:receipt_id>")
@require_auth
async def get_receipt(receipt_id: int):
    svc = services()
    receipt = await svc.db.run(store.get_receipt, svc.settings, principal().business_id, receipt_id)
    if receipt is None:
        raise ApiError(404, f"receipt {receipt_id} not found")
    return {"success": True, "receipt": receipt}


@bp.patch("/api/receipts/<int:receipt_id>")
@require_auth
async def patch_receipt(receipt_id: int):
    patch = store.ReceiptPatch.model_validate(await json_object())
    svc = services()
    receipt = await svc.db.run(store.update_receipt, svc.settings, principal().business_id, receipt_id, patch)
    if receipt is None:
        raise ApiError(404, f"receipt {receipt_id} not found")
    return {"success": True, "receipt": receipt}

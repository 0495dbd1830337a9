"""WhatsApp over HTTP: the Baileys bridge's webhook (enqueue only) and the tenant's inbox.

The webhook does no work beyond checking and enqueueing: one ``whatsapp.process_message`` job per
message, unique by ``baileys:<tenant>:<key.id>`` for DEDUPE_SECONDS (a decryption placeholder by
``...:placeholder``, so it never keeps the real message with its id out), so a redelivery enqueues nothing;
one ``whatsapp.apply_status`` per status, one ``whatsapp.apply_update`` per edit/delete/reaction update, one
``whatsapp.learn_identity`` per LID mapping, all of one post in one script call. Redis down is a 503
(Baileys retries; what was enqueued before the failure dedupes on the retry). The route is answered in
front of Quart (``web/fast_route.py``: the burst's CPU went to Quart's per-request machinery).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

import trio
from pydantic import ValidationError
from quart import Blueprint, Quart, request

from appliance.files import file_url
from appliance.jobs.queue import JobQueue, NewJob
from appliance.jobs.registry import JobArgumentsError
from appliance.redis import claim_once
from appliance.services import Services
from appliance.settings import SettingMissingError, Settings
from appliance.web.auth import require_auth
from appliance.web.body import document_body
from appliance.web.context import job_queue, principal, services
from appliance.web.errors import ApiError, describe_validation
from appliance.web.fast_route import ReadBody, install_fast_route
from appliance.web.inputs import parse_json
from appliance.web.query import int_param, page_params
from appliance.web.security import security_headers
from appliance.whatsapp import identity, store, wire
from appliance.whatsapp.incoming import is_placeholder

bp = Blueprint("whatsapp", __name__)
WEBHOOK_PATH = "/webhook/whatsapp/incoming"
DEDUPE_SECONDS = 3 * 24 * 3600  # Baileys redelivers within minutes to hours
ENQUEUE_TIMEOUT = 3.0
TENANT_CACHE_SECONDS = 60.0
TENANT_CACHE_SIZE = 10_000


def _check_secret(settings: Settings, presented: str) -> None:
    try:
        accepted = settings.secrets("internal_secret")  # old and new while it is rotated
    except SettingMissingError as exc:
        raise ApiError(503, str(exc)) from None
    if not any([hmac.compare_digest(presented.encode(), secret.encode()) for secret in accepted]):
        raise ApiError(401, "X-Internal-Secret is missing or wrong")


async def _tenant_exists(svc: Services, business_id: int) -> bool:
    # business id -> when the fact expires; only positives are cached, and never more than TENANT_CACHE_SIZE.
    known: dict[int, float] = svc.local.setdefault("whatsapp.known_tenants", {})
    if known.get(business_id, 0) > time.monotonic():
        return True
    # One lookup per tenant at a time: a burst on a cold cache (the api restarted as the bridge reconnects)
    # waits for the first lookup instead of sending each of its posts to the database.
    lookups: dict[int, trio.Event] = svc.local.setdefault("whatsapp.tenant_lookups", {})
    if (running := lookups.get(business_id)) is not None:
        await running.wait()
        if known.get(business_id, 0) > time.monotonic():
            return True
    lookups[business_id] = done = trio.Event()
    try:
        if await svc.db.run(store.business_exists, business_id):
            if len(known) >= TENANT_CACHE_SIZE:
                known.clear()
            known[business_id] = time.monotonic() + TENANT_CACHE_SECONDS
            return True
        return False
    finally:
        if lookups.get(business_id) is done:
            del lookups[business_id]
        done.set()


def _update_jobs(tenant: int, update: wire.StatusUpdate, raw: dict[str, Any]) -> list[NewJob]:
    """A status moves a sent message forward; an edit, delete or reaction changes its message."""
    jobs = []
    status = update.update.get("status")
    name = wire.STATUS_NAMES.get(status) if isinstance(status, int) else status
    if name in wire.STATUS_RANK:
        jobs.append(NewJob("whatsapp.apply_status",
                           {"business_id": tenant, "provider_id": update.key.id, "status": name},
                           unique_key=f"baileys-status:{tenant}:{update.key.id}:{name}", once_for=DEDUPE_SECONDS))
    if update.reaction is not None or "message" in update.update:
        digest = hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()[:24]
        jobs.append(NewJob("whatsapp.apply_update", {"business_id": tenant, "update": raw},
                           unique_key=f"baileys-update:{tenant}:{update.key.id}:{digest}", once_for=DEDUPE_SECONDS))
    return jobs


async def accept_webhook(svc: Services, queue: JobQueue, headers: Mapping[str, str], read_body: ReadBody,
                         ) -> dict[str, Any]:
    """The webhook: check, then enqueue every job of the post in one script call. Served by the fast
    route in front of Quart (web/fast_route.py) and by the view below (a request it does not take)."""
    _check_secret(svc.settings, headers.get("x-internal-secret", ""))
    raw = await read_body()  # 413 above MAX_CONTENT_LENGTH, before any of it is parsed
    try:
        body = parse_json(raw)  # depth and NUL limits: web/inputs.py (400)
    except ValueError:
        raise ApiError(400, "body is not valid JSON") from None
    try:
        hook = wire.IncomingWebhook.model_validate(body)
    except ValidationError as exc:
        message, fields = describe_validation(exc)
        raise ApiError(400, message, fields=fields) from None
    tenant = hook.tenantId
    if not await _tenant_exists(svc, tenant):
        raise ApiError(404, f"tenantId: no business {tenant}")
    payload = body["payload"]
    jobs = []
    for parsed, raw_message in zip(hook.payload.messages, payload.get("messages") or [], strict=True):
        # A decryption placeholder and the real message share an id: each has its own key, so the
        # placeholder never keeps the real one out.
        kind = ":placeholder" if is_placeholder(raw_message) else ""
        jobs.append(NewJob("whatsapp.process_message", {"business_id": tenant, "message": raw_message},
                           unique_key=f"baileys:{tenant}:{parsed.key.id}{kind}", once_for=DEDUPE_SECONDS))
    for update, raw_update in zip(hook.payload.updates, payload.get("updates") or [], strict=True):
        jobs += _update_jobs(tenant, update, raw_update)
    for mapping in hook.payload.lidMappings:
        jobs.append(NewJob("whatsapp.learn_identity", {"business_id": tenant, "lid": mapping.lid, "pn": mapping.pn},
                           unique_key=f"baileys-lid:{tenant}:{mapping.lid}:{mapping.pn}", once_for=DEDUPE_SECONDS))
    try:
        with trio.fail_after(ENQUEUE_TIMEOUT):
            await queue.enqueue_many(jobs)
    except JobArgumentsError as exc:  # NaN or Infinity: the standard library's JSON takes them, jobs do not
        raise ApiError(400, f"payload: {exc}") from None
    except trio.TooSlowError:
        raise ApiError(503, f"redis did not answer within {ENQUEUE_TIMEOUT:g}s, try again shortly") from None
    return {"success": True, "messages": len(hook.payload.messages), "updates": len(hook.payload.updates),
            "lidMappings": len(hook.payload.lidMappings)}


def install_fast_webhook(app: Quart, svc: Services, queue: JobQueue) -> None:
    install_fast_route(app, WEBHOOK_PATH, functools.partial(accept_webhook, svc, queue),
                       security_headers(svc.settings.public_url))


@bp.post(WEBHOOK_PATH)
@document_body(wire.IncomingWebhook)  # validated in accept_webhook with 400, not 422: the bridge's contract
async def incoming():
    return await accept_webhook(services(), job_queue(), request.headers, request.get_data)


@bp.get("/api/whatsapp/conversations")
@require_auth
async def conversations():
    page, per_page = page_params()
    rows, total = await services().db.run(store.conversations, principal().business_id, page, per_page)
    return {"success": True, "conversations": rows, "total": total, "page": page, "per_page": per_page}


@bp.get("/api/whatsapp/conversations/<jid>/messages")
@require_auth
async def messages(jid: str):
    limit = int_param("limit", 50, low=1, high=500)
    before = request.args.get("before")
    if before is not None and not before.isdigit():
        raise ApiError(400, "before must be a message id")
    business_id = principal().business_id
    jid = await services().db.run(identity.conversation_jid, business_id, jid)
    settings = services().settings  # media links are signed with ENCRYPTION_KEY; without it they are left out
    files = functools.partial(file_url, settings, business_id) if settings.encryption_key else None
    rows = await services().db.run(store.messages, business_id, jid, int(before) if before else None, limit, files)
    if not rows and before is None:  # no such conversation in the caller's business
        raise ApiError(404, f"conversation {jid} not found")
    next_before = rows[-1]["id"] if len(rows) == limit else None
    return {"success": True, "messages": rows, "next_before": next_before}


@bp.post("/api/whatsapp/conversations/<jid>/read")
@require_auth
async def mark_read(jid: str):
    if not await services().db.run(store.messages, principal().business_id, jid, None, 1):
        raise ApiError(404, f"conversation {jid} not found")
    count = await services().db.run(store.mark_read, principal().business_id, jid)
    return {"success": True, "marked": count}


@bp.post("/api/whatsapp/send")
@require_auth
async def send():
    from appliance.whatsapp.bridge import deliver

    body = await request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    fields = wire.SendRequest.model_validate(body)  # 422 naming the field
    svc = services()
    key = request.headers.get("Idempotency-Key")
    if key:
        claim = svc.keys.idempotency(f"wa-send:{principal().business_id}:{key[:200]}")
        if not await claim_once(svc.redis, claim, "1", 24 * 3600):
            raise ApiError(409, "Idempotency-Key was already used for a send")
    try:
        message = await deliver(svc, principal().business_id, fields.jid, fields.text)
    except SettingMissingError as exc:
        raise ApiError(503, str(exc)) from None
    if message["status"] != "sent":
        raise ApiError(502, "the WhatsApp bridge did not take the message; it is stored as failed",
                       message=message)
    return {"success": True, "message": message}, 201

"""WhatsApp jobs: store an inbound message once, apply status updates, and auto-reply at most once."""

from __future__ import annotations

import logging
from typing import Any

from appliance.jobs.registry import JobContext
from appliance.redis import claim_once
from appliance.whatsapp import store, wire
from appliance.whatsapp.batching import inbound_batcher
from appliance.whatsapp.bridge import deliver

log = logging.getLogger(__name__)
REPLY_CLAIM_TTL = 30 * 24 * 3600


async def responder_hook(ctx: JobContext, business_id: int, parsed: wire.Parsed) -> str | None:
    """The reply a pluggable responder (a later AI issue) writes; none yet."""
    return None



async def process_message(ctx: JobContext, business_id: int, message: dict[str, Any]) -> dict[str, Any]:
    parsed = wire.parse(message)
    settings = ctx.services.settings
    if parsed.kind in ("group", "status") or (parsed.kind == "own" and not settings.whatsapp_store_own):
        return {"skipped": parsed.kind}
    stored_id = await inbound_batcher(ctx.services).store(business_id, parsed)
    if stored_id is None:
        return {"stored": False, "reason": "already stored"}
    result: dict[str, Any] = {"stored": True, "message_id": stored_id}
    if parsed.kind == "direct":
        result["reply"] = await auto_reply(ctx, business_id, parsed)
    return result



async def apply_status(ctx: JobContext, business_id: int, provider_id: str, status: str) -> dict[str, Any]:
    return {"applied": await ctx.services.db.run(store.apply_status, business_id, provider_id, status)}


async def auto_reply(ctx: JobContext, business_id: int, parsed: wire.Parsed) -> str:
    mode, fixed = await ctx.services.db.run(store.reply_policy, business_id)
    if mode == "off":
        return "off"
    body = fixed if mode == "fixed" else await responder_hook(ctx, business_id, parsed)
    if not body:
        return "nothing to say"
    # At most once per inbound message, whatever happens to this job afterwards: claim first, then send.
    claim = ctx.services.keys.idempotency(f"wa-reply:{business_id}:{parsed.provider_id}")
    if not await claim_once(ctx.services.redis, claim, ctx.job_id, REPLY_CLAIM_TTL):
        return "already replied"
    return (await deliver(ctx.services, business_id, parsed.jid, body))["status"]

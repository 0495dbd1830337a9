"""WhatsApp jobs: store an inbound message once, apply status updates, and auto-reply at most once."""

from __future__ import annotations

import logging
from typing import Any

from appliance.jobs.queue import JobQueue
from appliance.jobs.registry import JobContext
from appliance.redis import claim_once
from appliance.whatsapp import store, wire
from appliance.whatsapp.batching import inbound_batcher
from appliance.whatsapp.bridge import deliver

log = logging.getLogger(__name__)
REPLY_CLAIM_TTL = 30 * 24 * 3600


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
    if mode == "ai":  # the AI agent writes it (job "agent.whatsapp_reply"), then hands it to send_reply
        if not parsed.body:
            return "nothing to answer"
        args = {"business_id": business_id, "jid": parsed.jid, "provider_id": parsed.provider_id,
                "phone": parsed.phone, "name": parsed.push_name}
        await JobQueue(ctx.services.redis, ctx.services.keys).enqueue(
            "agent.whatsapp_reply", args, unique_key=f"wa-ai:{business_id}:{parsed.provider_id}")
        return "ai reply queued"
    return await send_once(ctx, business_id, parsed.jid, parsed.provider_id, fixed)


async def send_reply(ctx: JobContext, business_id: int, jid: str, provider_id: str, body: str,
                     usage: dict[str, int] | None = None) -> dict[str, Any]:
    """Send a reply written elsewhere (the AI agent's) to the inbound message ``provider_id``."""
    return {"reply": await send_once(ctx, business_id, jid, provider_id, body, usage)}


async def send_once(ctx: JobContext, business_id: int, jid: str, provider_id: str, body: str | None,
                    usage: dict[str, int] | None = None) -> str:
    if not body:
        return "nothing to say"
    # At most once per inbound message, whatever happens to this job afterwards: claim first, then send.
    claim = ctx.services.keys.idempotency(f"wa-reply:{business_id}:{provider_id}")
    if not await claim_once(ctx.services.redis, claim, ctx.job_id, REPLY_CLAIM_TTL):
        return "already replied"
    sent = await deliver(ctx.services, business_id, jid, body)
    if usage:
        await ctx.services.db.run(store.set_usage, business_id, sent["id"], usage)
    return str(sent["status"])

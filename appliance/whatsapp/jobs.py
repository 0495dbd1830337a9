"""WhatsApp jobs: store what Baileys sent once (messages, placeholders, edits, deletes, reactions), apply
``messages.update`` items and LID mappings, fetch inbound media, and auto-reply at most once to a real
message (``incoming.deserves_reply``)."""

from __future__ import annotations

import logging
from typing import Any

from appliance.jobs.queue import JobQueue
from appliance.jobs.registry import JobContext
from appliance.redis import claim_once
from appliance.whatsapp import events, identity, media, store
from appliance.whatsapp.batching import inbound_batcher
from appliance.whatsapp.bridge import deliver
from appliance.whatsapp.incoming import Incoming, deserves_reply, normalize_jid, parse, update_events

log = logging.getLogger(__name__)
REPLY_CLAIM_TTL = 30 * 24 * 3600


def _queue(ctx: JobContext) -> JobQueue:
    queue: JobQueue = ctx.services.local.setdefault("whatsapp.job_queue", JobQueue(ctx.services.redis,
                                                                                    ctx.services.keys))
    return queue


async def process_message(ctx: JobContext, business_id: int, message: dict[str, Any]) -> dict[str, Any]:
    try:
        incoming = parse(message)
    except ValueError as exc:
        log.warning("whatsapp message not stored: %s", exc)
        return {"skipped": f"invalid: {exc}"}
    skipped = None
    if incoming.scope != "direct":
        skipped = incoming.scope
    elif incoming.from_me and incoming.event is None and not ctx.services.settings.whatsapp_store_own:
        skipped = "own"
    if skipped:
        sender = incoming.sender  # what the key tells of who is who is kept even when the message is not
        if sender and sender.lid and sender.phone:
            await ctx.services.db.run(_learn, business_id, sender.lid, sender.phone)
        return {"skipped": skipped}
    stored = await inbound_batcher(ctx.services).store(business_id, incoming)
    result: dict[str, Any] = {"outcome": stored.outcome, "message_id": stored.message_id}
    if not stored.is_new or incoming.content is None:
        return result
    if incoming.content.media is not None and incoming.content.media.type in media.FETCHED:
        await _queue(ctx).enqueue("whatsapp.fetch_media", {"business_id": business_id, "message_id": stored.message_id},
                                  unique_key=f"wa-media:{business_id}:{stored.message_id}")
    if deserves_reply(incoming):
        result["reply"] = await auto_reply(ctx, business_id, incoming, stored.jid or incoming.chat_jid)
    return result


def _apply_update(session: Any, business_id: int, update: dict[str, Any]) -> list[str]:
    found = update_events(update)
    names = [(business_id, n) for e in found for n in (e.target_id, *identity.lock_names(e.actor))]
    identity.lock(session, names)
    for event in found:
        identity.resolve(session, business_id, event.actor, None, with_lead=False)
    return [events.apply_event(session, business_id, event) for event in found]


async def apply_update(ctx: JobContext, business_id: int, update: dict[str, Any]) -> dict[str, Any]:
    """One ``messages.update`` (edit, delete) or ``messages.reaction`` item."""
    return {"outcomes": await ctx.services.db.run(_apply_update, business_id, update)}


def _learn(session: Any, business_id: int, lid: str, phone: str) -> bool:
    identity.lock(session, [(business_id, lid), (business_id, phone)])
    return identity.learn(session, business_id, lid, phone)


async def learn_identity(ctx: JobContext, business_id: int, lid: str, pn: str) -> dict[str, Any]:
    """A ``lid-mapping.update`` event: this LID is this phone number."""
    lid_jid, pn_jid = normalize_jid(lid), normalize_jid(pn)
    if not lid_jid or not pn_jid or not lid_jid.endswith("@lid") or not pn_jid.endswith("@s.whatsapp.net"):
        return {"learnt": False, "reason": "not a LID and a phone JID"}
    phone = "+" + pn_jid.split("@")[0]
    return {"learnt": await ctx.services.db.run(_learn, business_id, lid_jid, phone)}


async def fetch_media(ctx: JobContext, business_id: int, message_id: int) -> dict[str, Any]:
    return await media.fetch(ctx.services, business_id, message_id)


async def apply_status(ctx: JobContext, business_id: int, provider_id: str, status: str) -> dict[str, Any]:
    return {"applied": await ctx.services.db.run(store.apply_status, business_id, provider_id, status)}


async def auto_reply(ctx: JobContext, business_id: int, message: Incoming, jid: str) -> str:
    mode, fixed = await ctx.services.db.run(store.reply_policy, business_id)
    if mode == "off":
        return "off"
    if mode == "ai":  # the AI agent writes it (job "agent.whatsapp_reply"), then hands it to send_reply
        sender = message.sender
        args = {"business_id": business_id, "jid": jid, "provider_id": message.provider_id,
                "phone": sender.phone if sender else None, "name": message.push_name}
        await _queue(ctx).enqueue("agent.whatsapp_reply", args,
                                  unique_key=f"wa-ai:{business_id}:{message.provider_id}")
        return "ai reply queued"
    return await send_once(ctx, business_id, jid, message.provider_id, fixed)


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

"""The agent's jobs: ``agent.whatsapp_reply`` writes the AI reply to one inbound WhatsApp message and hands
it to ``whatsapp.send_reply`` (by name), which sends it at most once and stores its token usage."""

from __future__ import annotations

import logging
from typing import Any

from appliance.agent import store
from appliance.agent.chat import answer, chat_client, conversation
from appliance.agent.config import WHATSAPP_FALLBACK, AgentConfig, Caller
from appliance.agent.tools import Toolbox
from appliance.jobs.queue import JobQueue
from appliance.jobs.registry import JobContext
from appliance.settings import SettingMissingError

log = logging.getLogger(__name__)
HISTORY = 20  # messages of the thread given as context


async def whatsapp_reply(ctx: JobContext, business_id: int, jid: str, provider_id: str, phone: str | None = None,
                         name: str | None = None) -> dict[str, Any]:
    services = ctx.services
    columns = await services.db.run(store.business_agent, business_id)
    if columns is None:
        return {"reply": "no such business"}
    config = AgentConfig.for_business(services.settings, columns)
    known = await services.db.run(store.lookup_caller, business_id, phone)
    caller = Caller(business_id, phone, known and known["lead_id"], (known and known["name"]) or name)
    toolbox = Toolbox(services.db, caller, config, "whatsapp")
    history = await services.db.run(store.recent_messages, business_id, jid, HISTORY)
    try:
        client = chat_client(services.settings)
    except SettingMissingError as exc:
        log.error("business %s: no AI reply: %s; sending the fallback text", business_id, exc)
        text, fallback, usage = WHATSAPP_FALLBACK, True, {}
    else:
        async with client:
            reply = await answer(client, services.settings.llm_model, toolbox,
                                 conversation(config, history, phone, caller.name))
        text, fallback, usage = reply.text, reply.fallback, reply.usage
    send = {"business_id": business_id, "jid": jid, "provider_id": provider_id, "body": text, "usage": usage}
    job_id = await JobQueue(services.redis, services.keys).enqueue("whatsapp.send_reply", send)
    return {"reply": "fallback" if fallback else "ai", "send_job": job_id, "usage": usage,
            "tool_calls": [call["name"] for call in toolbox.calls]}

"""The ``realtime`` voice agent's factory, as the media role's ``VOICE_AGENTS`` names it: builds one call's
agent from the business's settings, the caller's lead and the service settings, and saves the conversation
(transcript, tool calls, usage, lead) on the call's row when it ends."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import trio

from appliance.agent import store
from appliance.agent.config import AgentConfig, Caller
from appliance.agent.realtime import RealtimeAgent
from appliance.agent.record import Conversation
from appliance.agent.telephony import Telephony
from appliance.agent.tools import Toolbox

log = logging.getLogger(__name__)


def telephony(settings: Any) -> Telephony | None:
    """Twilio REST for transfers and the spoken fallback; None (and those off) without its credentials."""
    if not settings.twilio_account_sid or settings.twilio_auth_token is None:
        return None
    return Telephony(settings.twilio_account_sid, settings.secrets("twilio_auth_token")[0], settings.twilio_api_url)


async def realtime_agent(services: Any, call: Any) -> RealtimeAgent:
    settings = services.settings
    api_key = settings.require("realtime_api_key")
    try:
        with trio.fail_after(5):
            found = await services.db.run(store.call_context, call.call_sid)
        problem = "not on record"
    except Exception as exc:  # the caller still gets an agent: a database hiccup must not drop the call
        found, problem = None, f"{type(exc).__name__}: {exc}"
    if found is None:
        log.warning("call %s: business and caller unknown (%s); the agent answers with defaults, no tools",
                    call.call_sid, problem)
        config = replace(AgentConfig.for_business(settings, store.NO_AGENT_COLUMNS), tools=())
        caller = Caller(0, None, call_sid=call.call_sid)
    else:
        config = AgentConfig.for_business(settings, found["agent"])
        caller = Caller(found["business_id"], found["phone"], found["lead_id"], found["name"], call.call_sid)
    phone_line = telephony(settings)

    async def save(conversation: Conversation) -> None:
        try:
            await services.db.run(store.save_call_conversation, call.call_sid, conversation.as_dict())
        except Exception as exc:  # the call is over either way; say what was lost
            log.warning("call %s: transcript not saved: %s", call.call_sid, exc)

    return RealtimeAgent(settings.realtime_url, api_key, config, caller,
                         Toolbox(services.db, caller, config, "call", phone_line), telephony=phone_line,
                         transcribe_model=settings.realtime_transcribe_model, save=save)

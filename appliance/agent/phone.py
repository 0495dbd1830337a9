"""The ``realtime`` voice agent's factory, as the media role's ``VOICE_AGENTS`` names it: builds one call's
agent from the business's settings, the caller's lead and the service settings, and saves the conversation
(transcript, tool calls, usage, lead) on the call's row when it ends."""

from __future__ import annotations

import logging
from typing import Any

from appliance.agent import store
from appliance.agent.config import AgentConfig, Caller
from appliance.agent.realtime import RealtimeAgent
from appliance.agent.record import Conversation
from appliance.agent.telephony import Telephony
from appliance.agent.tools import Toolbox

log = logging.getLogger(__name__)


class UnknownCallError(LookupError):
    """The media stream names a call the voice webhook never recorded."""


def telephony(settings: Any) -> Telephony | None:
    """Twilio REST for transfers and the spoken fallback; None (and those off) without its credentials."""
    if not settings.twilio_account_sid or settings.twilio_auth_token is None:
        return None
    return Telephony(settings.twilio_account_sid, settings.twilio_auth_token.get_secret_value(),
                     settings.twilio_api_url)


async def realtime_agent(services: Any, call: Any) -> RealtimeAgent:
    settings = services.settings
    api_key = settings.require("realtime_api_key")
    found = await services.db.run(store.call_context, call.call_sid)
    if found is None:
        raise UnknownCallError(f"call {call.call_sid} is not on record")
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

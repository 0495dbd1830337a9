"""WhatsApp AI replies: the business's agent answering one message through any OpenAI-compatible chat
completions API, with the official ``openai`` package.

Its async client runs on httpx (``httpx2``) over anyio, so it runs natively under Trio (tested against a
local server, and when the service is unreachable). Timeouts and retries on connection errors, 429 and 5xx
(with backoff) are the client's own (``LLM_TIMEOUT``, ``LLM_MAX_RETRIES``); when the service is still down,
the reply is the fallback text, so the customer is never left without an answer.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import openai

from appliance.agent.config import WHATSAPP_FALLBACK, AgentConfig
from appliance.agent.record import add_usage
from appliance.agent.tools import Toolbox, chat_tools

log = logging.getLogger(__name__)
TOOL_ROUNDS = 3  # model turns that may call tools before it must answer
CHANNEL = (" You are answering a WhatsApp message: reply in the customer's language, in a few short sentences, "
           "as plain text.")


@dataclass
class Reply:
    text: str
    fallback: bool
    usage: dict[str, int] = field(default_factory=dict)


def chat_client(settings: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=settings.llm_base_url, api_key=settings.require("llm_api_key"),
                              timeout=settings.llm_timeout, max_retries=settings.llm_max_retries)


def conversation(config: AgentConfig, history: list[tuple[str, str]], phone: str | None,
                 name: str | None) -> list[dict[str, Any]]:
    who = f" The customer is {name}." if name else ""
    number = f" Their number is {phone}." if phone else ""
    messages: list[dict[str, Any]] = [{"role": "system", "content": config.instructions + CHANNEL + number + who}]
    messages += [{"role": "user" if direction == "in" else "assistant", "content": body}
                 for direction, body in history]
    return messages


async def answer(client: openai.AsyncOpenAI, model: str, toolbox: Toolbox, messages: list[Any]) -> Reply:
    """The model's reply to the last message; tools run as it asks (each recorded on the toolbox)."""
    usage: dict[str, int] = {}
    tools: list[Any] = chat_tools(toolbox.config)  # plain dicts of the documented shapes
    try:
        for round_ in range(TOOL_ROUNDS + 1):
            offer = tools if round_ < TOOL_ROUNDS else []
            completion = await client.chat.completions.create(model=model, messages=messages,
                                                              tools=offer or openai.omit)
            add_usage(usage, completion.usage.model_dump() if completion.usage else None)
            message = completion.choices[0].message
            calls = [c for c in message.tool_calls or [] if c.type == "function"]
            if not calls:
                text = (message.content or "").strip()
                return Reply(text or WHATSAPP_FALLBACK, fallback=not text, usage=usage)
            messages.append(message.model_dump(exclude_none=True))
            for call in calls:
                result = await toolbox.call(call.function.name, call.function.arguments)
                messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps(result.output)})
    except openai.APIError as exc:
        log.warning("business %s: the model service failed (%s: %s); sending the fallback text",
                    toolbox.caller.business_id, type(exc).__name__, exc)
        return Reply(WHATSAPP_FALLBACK, fallback=True, usage=usage)
    raise AssertionError("unreachable: the last round offers no tools")

"""Voice agents: what answers the caller. The media role knows an agent only by the ``Agent`` protocol
(``session.py``) and by name: the ``VOICE_AGENTS`` setting maps each name to a ``"module:function"`` factory,
resolved once when the role starts, so a feature (the AI phone agent, ``appliance/agent/``) plugs in without
this room importing it. ``echo`` returns the caller's audio (line checks, load tests).

The agent is chosen per call: the business's ``voice_agent`` column, else the ``VOICE_AGENT`` setting.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import import_module
from typing import Any

import trio

from appliance.media.session import Agent, CallInfo, CallSession

AgentFactory = Callable[[Any, CallInfo], Awaitable[Agent]]  # (the role's Services, the call) -> its agent


class AgentError(Exception):
    """No such voice agent, or its factory cannot be loaded."""


class EchoAgent:
    async def run(self, call: CallSession) -> None:
        call.listen(call.play)  # playing never waits: each frame goes back from the receive loop itself
        await trio.sleep_forever()


async def echo_agent(services: Any, call: CallInfo) -> EchoAgent:
    return EchoAgent()


def resolve_agents(targets: dict[str, str]) -> dict[str, AgentFactory]:
    """Import each ``"module:function"`` factory; a bad entry is one error naming it, at role start."""
    factories: dict[str, AgentFactory] = {}
    for name, target in targets.items():
        module, _, function = target.partition(":")
        try:
            factories[name] = getattr(import_module(module), function)
        except (ImportError, AttributeError) as exc:
            raise AgentError(f"VOICE_AGENTS: {name!r} -> {target!r} cannot be loaded: {exc}") from exc
    return factories


async def make_agent(factories: dict[str, AgentFactory], name: str, services: Any, call: CallInfo) -> Agent:
    factory = factories.get(name)
    if factory is None:
        raise AgentError(f"unknown voice agent {name!r} (choose {' or '.join(sorted(factories))})")
    return await factory(services, call)

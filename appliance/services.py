"""The handles a role needs (settings, database, Redis, key names), opened and closed as one lifetime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from appliance.db import Database
from appliance.keys import Keys
from appliance.redis import Redis, open_redis
from appliance.settings import Settings


@dataclass(frozen=True)
class Services:
    settings: Settings
    db: Database
    redis: Redis
    keys: Keys
    # Per-process state a feature keeps for the role's lifetime, under its own key (the WhatsApp batcher,
    # the webhook's tenant cache): handles on the role, not module globals.
    local: dict[str, Any] = field(default_factory=dict)


@asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    db = Database.from_settings(settings)
    try:
        async with open_redis(settings.redis_url) as redis:
            yield Services(settings, db, redis, Keys(settings.redis_prefix))
    finally:
        db.close()

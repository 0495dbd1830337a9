"""The handles a role needs (settings, database, Redis, key names), opened and closed as one lifetime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

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


@asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    db = Database(settings.database_url, settings.db_pool_size)
    try:
        async with open_redis(settings.redis_url) as redis:
            yield Services(settings, db, redis, Keys(settings.redis_prefix))
    finally:
        db.close()

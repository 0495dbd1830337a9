"""Request-time access to the role's Services and the caller's Principal."""

from __future__ import annotations

from quart import current_app, g

from appliance.accounts.store import Principal
from appliance.jobs.queue import JobQueue
from appliance.services import Services

EXTENSION = "appliance"
JOBS_EXTENSION = "appliance.jobs"


def services() -> Services:
    return current_app.extensions[EXTENSION]


def principal() -> Principal:
    return g.principal


def job_queue() -> JobQueue:
    """The role's one JobQueue (its Lua scripts registered once, not per request)."""
    return current_app.extensions[JOBS_EXTENSION]

"""Request-time access to the role's Services and the caller's Principal."""

from __future__ import annotations

from quart import current_app, g

from appliance.accounts import Principal
from appliance.services import Services

EXTENSION = "appliance"


def services() -> Services:
    return current_app.extensions[EXTENSION]


def principal() -> Principal:
    return g.principal

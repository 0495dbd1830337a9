"""Request bodies: a JSON object or a 400 that says so."""

from __future__ import annotations

from typing import Any

from quart import request

from appliance.web.errors import ApiError


async def json_object() -> dict[str, Any]:
    body = await request.get_json(force=True)
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    return body

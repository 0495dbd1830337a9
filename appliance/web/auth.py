"""Login, logout and the caller's identity: secure cookie sessions for browsers, Bearer tokens for scripts.

Login is limited per account and per client address (``accounts/login_limits.py``: 429 with Retry-After);
each login issues a new session id and revokes the one the browser presented, so a session id planted
before login is worthless; logout revokes the session it was sent with.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, g, jsonify, request

from appliance.accounts import store as accounts
from appliance.accounts.login_limits import LoginLimits
from appliance.web.body import json_body
from appliance.web.context import principal, services
from appliance.web.errors import ApiError

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)
COOKIE = "appliance_session"
# Marks views behind require_auth: the OpenAPI document (web/openapi.py) and the tenant-isolation test read it.
AUTH_ATTRIBUTE = "appliance_requires_auth"


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


def _presented_token() -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "Authorization header must be 'Bearer <token>'")
        return token.strip(), "bearer"
    cookie = request.cookies.get(COOKIE)
    return (cookie, "cookie") if cookie else None


def current_token() -> str:
    """The secret the authenticated caller presented (a session cookie or a Bearer token)."""
    presented = _presented_token()
    assert presented is not None, "current_token() outside require_auth"
    return presented[0]


def require_auth(view: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(view)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        presented = _presented_token()
        if presented is None:
            raise ApiError(401, "authentication required: log in or send 'Authorization: Bearer <token>'")
        token, via = presented
        found = await services().db.run(accounts.resolve_token, token)
        if found is None:
            raise ApiError(401, "session expired or token invalid")
        # A cross-site form can POST with the cookie but cannot send JSON without a CORS preflight.
        if via == "cookie" and request.method == "POST" and request.mimetype != "application/json":
            raise ApiError(403, "cookie-authenticated POST requests must send application/json")
        g.principal = found
        return await view(*args, **kwargs)

    setattr(wrapper, AUTH_ATTRIBUTE, True)
    return wrapper


@bp.post("/api/auth/login")
@json_body(LoginBody)
async def login(body: LoginBody):
    svc = services()
    limits = LoginLimits(svc.redis, svc.keys)
    address = request.remote_addr or "unknown"
    wait = await limits.retry_after(body.email, address)
    if wait:
        raise ApiError(429, f"too many failed logins; try again in {wait} s", headers={"Retry-After": str(wait)})
    previous = request.cookies.get(COOKIE)

    def login_in_db(session) -> str | None:
        user = accounts.authenticate(session, body.email, body.password)
        if user is None:
            return None
        if previous:
            accounts.revoke_token(session, previous)  # rotation: the pre-login session id dies here
        return accounts.issue_token(session, user, "session", svc.settings.session_ttl)

    token = await svc.db.run(login_in_db)
    if token is None:
        await limits.failed(body.email, address)
        raise ApiError(401, "email or password is wrong")
    await limits.succeeded(body.email)
    response = jsonify({"success": True, "email": body.email.strip().lower()})
    response.set_cookie(
        COOKIE, token, max_age=int(svc.settings.session_ttl), httponly=True,
        secure=svc.settings.session_cookie_secure, samesite="Lax", path="/",
    )
    return response


@bp.post("/api/auth/logout")
@require_auth
async def logout():
    presented = _presented_token()
    if presented and (presented[1] == "cookie" or principal().token_kind == "session"):
        await services().db.run(accounts.revoke_token, presented[0])  # API tokens: DELETE /api/tokens/<id>
    response = jsonify({"success": True})
    response.delete_cookie(COOKIE, path="/")
    return response


@bp.get("/api/auth/me")
@require_auth
async def me():
    who = principal()
    return {"success": True, "user_id": who.user_id, "business_id": who.business_id, "email": who.email}

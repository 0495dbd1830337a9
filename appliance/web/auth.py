"""Login, logout and the caller's identity: secure cookie sessions for browsers, Bearer tokens for scripts."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, g, jsonify, request

from appliance.accounts import store as accounts
from appliance.web.context import principal, services
from appliance.web.errors import ApiError

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)
COOKIE = "appliance_session"


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

    return wrapper


@bp.post("/api/auth/login")
async def login():
    body = LoginBody.model_validate(await request.get_json(force=True, silent=False) or {})
    svc = services()

    def login_in_db(session) -> str | None:
        user = accounts.authenticate(session, body.email, body.password)
        return accounts.issue_token(session, user, "session", svc.settings.session_ttl) if user else None

    token = await svc.db.run(login_in_db)
    if token is None:
        raise ApiError(401, "email or password is wrong")
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
    if presented and presented[1] == "cookie":
        await services().db.run(accounts.revoke_token, presented[0])
    response = jsonify({"success": True})
    response.delete_cookie(COOKIE, path="/")
    return response


@bp.get("/api/auth/me")
@require_auth
async def me():
    who = principal()
    return {"success": True, "user_id": who.user_id, "business_id": who.business_id, "email": who.email}

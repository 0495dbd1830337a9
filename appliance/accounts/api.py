"""The business's settings, users and API tokens over HTTP, scoped to the caller's business:
``GET|PATCH /api/settings``, ``GET|POST /api/users``, ``POST /api/auth/password`` (own password; revokes the
caller's other sessions), ``GET|POST /api/tokens``, ``DELETE /api/tokens/<id>`` (the caller's own)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from quart import Blueprint

from appliance.accounts import business, store
from appliance.web.auth import current_token, require_auth
from appliance.web.body import json_body
from appliance.web.context import principal, services
from appliance.web.errors import ApiError

bp = Blueprint("accounts", __name__)
PASSWORD_MIN = 10
EmailLike = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=320,
                                             pattern=r"^[^@\s]+@[^@\s]+$")]


@bp.get("/api/settings")
@require_auth
async def get_settings():
    found = await services().db.run(business.get_settings, principal().business_id)
    if found is None:
        raise ApiError(404, "business not found")
    return {"success": True, "settings": found}


@bp.patch("/api/settings")
@require_auth
@json_body(business.SettingsPatch)  # 422 naming the field
async def patch_settings(body: business.SettingsPatch):
    updated = await services().db.run(business.update_settings, principal().business_id, body)
    if updated is None:
        raise ApiError(404, "business not found")
    return {"success": True, "settings": updated}


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: EmailLike
    password: str = Field(min_length=PASSWORD_MIN, max_length=1024)


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=PASSWORD_MIN, max_length=1024)


@bp.get("/api/users")
@require_auth
async def list_users():
    return {"success": True, "users": await services().db.run(store.list_users, principal().business_id)}


@bp.post("/api/users")
@require_auth
@json_body(NewUser)
async def add_user(body: NewUser):
    business_id = principal().business_id

    def add(session) -> dict[str, object]:
        user = store.add_user(session, business_id, body.email, body.password)
        return {"id": user.id, "email": user.email}

    try:
        user = await services().db.run(add)
    except store.AccountError as exc:
        raise ApiError(409, str(exc)) from None
    return {"success": True, "user": user}, 201


@bp.post("/api/auth/password")
@require_auth
@json_body(PasswordChange)
async def change_password(body: PasswordChange):
    """Change the caller's own password; every other session of the caller is revoked."""
    who = principal()
    presented = current_token()
    changed = await services().db.run(store.change_password, who.user_id, body.current_password,
                                      body.new_password, presented)
    if not changed:
        raise ApiError(403, "current_password is wrong")
    return {"success": True}


@bp.get("/api/tokens")
@require_auth
async def list_tokens():
    who = principal()
    return {"success": True, "tokens": await services().db.run(store.list_tokens, who.business_id, who.user_id)}


@bp.post("/api/tokens")
@require_auth
async def create_token():
    """A new API token for the caller (``token`` is shown once, in this answer only)."""
    who = principal()
    try:
        token = await services().db.run(store.create_token, who.business_id, who.user_id)
    except store.AccountError as exc:
        raise ApiError(404, str(exc)) from None
    return {"success": True, "token": token}, 201


@bp.delete("/api/tokens/<int:token_id>")
@require_auth
async def delete_token(token_id: int):
    who = principal()
    if not await services().db.run(store.delete_token, who.business_id, who.user_id, token_id):
        raise ApiError(404, f"token {token_id} not found")
    return {"success": True}

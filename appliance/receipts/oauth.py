"""Connecting a mailbox: a signed ``state`` bound to user and business (10 minutes), the consent URL, and
the code exchange at ``GOOGLE_TOKEN_URI``. Runs on Trio (httpx); the profile read goes through ``gmail``."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
from itsdangerous import BadSignature, SignatureExpired

from appliance.files.signing import serializer
from appliance.receipts import OAuthError
from appliance.settings import Settings

SCOPE = "https://www.googleapis.com/auth/gmail.readonly"
STATE_SALT = "appliance.gmail-oauth-state"
STATE_TTL = 10 * 60
EXCHANGE_TIMEOUT = 20.0


@dataclass(frozen=True)
class StateClaims:
    user_id: int
    business_id: int


@dataclass(frozen=True)
class Grant:
    access_token: str
    refresh_token: str
    scope: str | None


def make_state(settings: Settings, user_id: int, business_id: int) -> str:
    return serializer(settings, STATE_SALT).dumps({"u": user_id, "b": business_id})


def read_state(settings: Settings, state: str | None) -> StateClaims:
    if not state:
        raise OAuthError("state is missing")
    try:
        claims = serializer(settings, STATE_SALT).loads(state, max_age=STATE_TTL)
    except SignatureExpired:
        raise OAuthError("state expired (older than 10 minutes); start connecting again") from None
    except BadSignature:
        raise OAuthError("state is not valid") from None
    return StateClaims(int(claims["u"]), int(claims["b"]))


def consent_url(settings: Settings, state: str) -> str:
    query = {
        "client_id": settings.require("google_client_id"),
        "redirect_uri": settings.require("google_redirect_uri"),
        "response_type": "code", "scope": SCOPE, "access_type": "offline", "prompt": "consent",
        "include_granted_scopes": "true", "state": state,
    }
    separator = "&" if "?" in settings.google_auth_uri else "?"
    return settings.google_auth_uri + separator + urlencode(query)


async def exchange_code(settings: Settings, code: str | None) -> Grant:
    """Trade the authorization code for tokens; OAuthError naming what Google said on failure."""
    if not code:
        raise OAuthError("code is missing")
    form = {
        "grant_type": "authorization_code", "code": code,
        "client_id": settings.require("google_client_id"),
        "client_secret": settings.require("google_client_secret"),
        "redirect_uri": settings.require("google_redirect_uri"),
    }
    try:
        async with httpx.AsyncClient(timeout=EXCHANGE_TIMEOUT) as client:
            response = await client.post(settings.google_token_uri, data=form)
    except httpx.HTTPError as exc:
        raise OAuthError(f"token endpoint unreachable: {exc}") from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or not isinstance(body, dict):
        error = body.get("error", f"HTTP {response.status_code}") if isinstance(body, dict) else "bad answer"
        raise OAuthError(f"Google refused the authorization code: {error}")
    if not body.get("refresh_token"):
        raise OAuthError("Google returned no refresh_token (consent with access_type=offline is needed)")
    return Grant(body.get("access_token", ""), body["refresh_token"], body.get("scope"))

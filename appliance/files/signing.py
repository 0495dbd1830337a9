"""Signed, expiring tokens: file URLs here, and any other short-lived signed value (the OAuth ``state``).

Signed with the ``ENCRYPTION_KEY`` keys (comma-separated, the first is the newest): a token signed with a
key that is still listed keeps verifying while the keys rotate. Each use has its own salt.
"""

from __future__ import annotations

from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from appliance.settings import SettingMissingError, Settings

FILE_URL_TTL = 15 * 60
FILES_SALT = "appliance.files"


class FileTokenError(Exception):
    pass


def encryption_keys(settings: Settings) -> list[str]:
    """The configured keys, newest first; one clear error naming ENCRYPTION_KEY when unset."""
    keys = [k.strip() for k in settings.require("encryption_key").split(",") if k.strip()]
    if not keys:
        raise SettingMissingError("ENCRYPTION_KEY holds no key; set one or more comma-separated Fernet keys")
    return keys


def serializer(settings: Settings, salt: str) -> URLSafeTimedSerializer:
    # itsdangerous signs with the last key and verifies with all of them.
    return URLSafeTimedSerializer(list(reversed(encryption_keys(settings))), salt=salt)


def file_url(settings: Settings, business_id: int, relpath: str | None) -> str | None:
    """The API path serving one business's file for the next 15 minutes (None when there is no file)."""
    if not relpath:
        return None
    return "/api/files/" + serializer(settings, FILES_SALT).dumps({"b": business_id, "p": relpath})


def read_token(settings: Settings, token: str, business_id: int, max_age: int = FILE_URL_TTL) -> str:
    """The file a token names if it is genuine, unexpired and the caller's business's; else FileTokenError."""
    try:
        claims: Any = serializer(settings, FILES_SALT).loads(token, max_age=max_age)
    except SignatureExpired:
        raise FileTokenError("file link expired; reload the page for a new one") from None
    except BadSignature:
        raise FileTokenError("file link is not valid") from None
    if not isinstance(claims, dict) or claims.get("b") != business_id or not isinstance(claims.get("p"), str):
        raise FileTokenError("file link belongs to another account")
    return claims["p"]

"""Refresh tokens at rest: Fernet under ``ENCRYPTION_KEY`` (comma-separated keys, the first encrypts and
all decrypt, so keys rotate without downtime), and the re-encryption behind ``appliance keys rotate``."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import select
from sqlalchemy.orm import Session

from appliance.files.signing import encryption_keys
from appliance.models import GmailConnection
from appliance.settings import SettingMissingError, Settings


def fernet(settings: Settings) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.encode()) for key in encryption_keys(settings)])
    except ValueError:
        raise SettingMissingError("ENCRYPTION_KEY must be Fernet keys (32 url-safe base64 bytes), "
                                  "comma-separated; make one with `appliance keys generate`") from None


def encrypt(settings: Settings, secret: str) -> str:
    return fernet(settings).encrypt(secret.encode()).decode()


def decrypt(settings: Settings, token: str) -> str:
    try:
        return fernet(settings).decrypt(token.encode()).decode()
    except InvalidToken:
        raise SettingMissingError("a stored token cannot be decrypted with any key in ENCRYPTION_KEY "
                                  "(was the key it was encrypted with removed?)") from None


def rotate_all(session: Session, settings: Settings) -> tuple[int, list[int]]:
    """Re-encrypt every stored refresh token with the first key.

    Returns (rows rewritten, business ids whose token no listed key can read: those must reconnect)."""
    keys = fernet(settings)
    count, unreadable = 0, []
    for conn in session.scalars(select(GmailConnection).with_for_update()):
        try:
            conn.encrypted_refresh_token = keys.rotate(conn.encrypted_refresh_token.encode()).decode()
            count += 1
        except InvalidToken:
            unreadable.append(conn.business_id)
    return count, unreadable

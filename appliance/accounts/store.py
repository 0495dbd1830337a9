"""Tenants, users and credentials. Functions take a SQLAlchemy Session; callers run them via Database.run.

Passwords are argon2id hashes with the parameters of RFC 9106's second recommended option (the
argon2-cffi defaults, stated here so a library upgrade cannot change them unseen): 3 passes over 64 MiB with
4 lanes, a 16-byte salt and a 32-byte hash; a hash made with other parameters is redone at the next login.
API tokens and browser sessions are one mechanism: a random 256-bit secret
given once to its holder and stored only as its SHA-256 (high-entropy secrets need no slow hash), so
logout and revocation are a row delete.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from appliance.models import ApiToken, Business, User

_hasher = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=4, hash_len=32, salt_len=16)
# Verified against when the email is unknown, so a login's timing does not reveal which emails exist.
_DUMMY_HASH = _hasher.hash("not-a-password")


class AccountError(Exception):
    """A tenant or user operation that cannot be done (duplicate email, unknown user)."""


@dataclass(frozen=True)
class Principal:
    user_id: int
    business_id: int
    email: str
    token_kind: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(session: Session, business: str, email: str, password: str | None) -> User:
    tenant = session.scalar(select(Business).where(Business.name == business))
    if tenant is None:
        tenant = Business(name=business)
        session.add(tenant)
        session.flush()
    return add_user(session, tenant.id, email, password)


def add_user(session: Session, business_id: int, email: str, password: str | None) -> User:
    email = email.strip().lower()
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise AccountError(f"a user with email {email} already exists")
    user = User(business_id=business_id, email=email, password_hash=_hasher.hash(password) if password else None)
    session.add(user)
    session.flush()
    return user


def list_users(session: Session, business_id: int) -> list[dict[str, object]]:
    rows = session.execute(select(User.id, User.email, User.created_at).where(User.business_id == business_id)
                           .order_by(User.id))
    return [{"id": r.id, "email": r.email, "created_at": r.created_at.isoformat()} for r in rows]


def authenticate(session: Session, email: str, password: str) -> User | None:
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    try:
        _hasher.verify(user.password_hash if user and user.password_hash else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.password_hash:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def change_password(session: Session, user_id: int, current: str, new: str, keep_token: str) -> bool:
    """Set a new password if ``current`` is right; every other session of the user is revoked (API tokens,
    managed on their own, stay). False if ``current`` is wrong."""
    user = session.get(User, user_id)
    if user is None or not user.password_hash:
        return False
    try:
        _hasher.verify(user.password_hash, current)
    except (VerificationError, InvalidHashError):
        return False
    user.password_hash = _hasher.hash(new)
    session.execute(delete(ApiToken).where(ApiToken.user_id == user_id, ApiToken.kind == "session",
                                           ApiToken.token_hash != hash_token(keep_token)))
    return True


def issue_token(session: Session, user: User, kind: str, ttl: float | None = None) -> str:
    token = secrets.token_urlsafe(32)
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=ttl) if ttl else None
    session.add(
        ApiToken(business_id=user.business_id, user_id=user.id, token_hash=hash_token(token), kind=kind,
                 expires_at=expires)
    )
    return token


def create_api_token(session: Session, email: str) -> str:
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise AccountError(f"no user with email {email}")
    return issue_token(session, user, "api")


def resolve_token(session: Session, token: str) -> Principal | None:
    now = dt.datetime.now(dt.UTC)
    row = session.execute(
        select(ApiToken.id, ApiToken.user_id, ApiToken.business_id, ApiToken.kind, ApiToken.expires_at,
               ApiToken.last_used_at, User.email)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == hash_token(token))
    ).one_or_none()
    if row is None or (row.expires_at is not None and row.expires_at <= now):
        return None
    if row.last_used_at is None or now - row.last_used_at > dt.timedelta(minutes=5):
        session.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))
    return Principal(row.user_id, row.business_id, row.email, row.kind)


def create_token(session: Session, business_id: int, user_id: int) -> dict[str, object]:
    """A new API token of the user; the secret is in the answer only, never stored."""
    user = session.scalar(select(User).where(User.id == user_id, User.business_id == business_id))
    if user is None:
        raise AccountError(f"no user {user_id}")
    token = issue_token(session, user, "api")
    session.flush()
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    assert row is not None
    return {**_token_row(row), "token": token}


def list_tokens(session: Session, business_id: int, user_id: int) -> list[dict[str, object]]:
    rows = session.scalars(select(ApiToken).where(ApiToken.business_id == business_id, ApiToken.user_id == user_id,
                                                  ApiToken.kind == "api").order_by(ApiToken.id))
    return [_token_row(row) for row in rows]


def delete_token(session: Session, business_id: int, user_id: int, token_id: int) -> bool:
    result = session.execute(delete(ApiToken).where(ApiToken.id == token_id, ApiToken.business_id == business_id,
                                                    ApiToken.user_id == user_id, ApiToken.kind == "api"))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _token_row(row: ApiToken) -> dict[str, object]:
    return {"id": row.id, "kind": row.kind, "created_at": row.created_at.isoformat() if row.created_at else None,
            "last_used_at": row.last_used_at.isoformat() if row.last_used_at else None}


def revoke_token(session: Session, token: str) -> None:
    session.execute(delete(ApiToken).where(ApiToken.token_hash == hash_token(token)))

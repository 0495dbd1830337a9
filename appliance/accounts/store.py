"""Tenants, users and credentials. Functions take a SQLAlchemy Session; callers run them via Database.run.

Passwords are argon2id hashes. API tokens and browser sessions are one mechanism: a random 256-bit secret
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

_hasher = PasswordHasher()
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
    email = email.strip().lower()
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise AccountError(f"a user with email {email} already exists")
    tenant = session.scalar(select(Business).where(Business.name == business))
    if tenant is None:
        tenant = Business(name=business)
        session.add(tenant)
        session.flush()
    user = User(business_id=tenant.id, email=email, password_hash=_hasher.hash(password) if password else None)
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, email: str, password: str) -> User | None:
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    try:
        _hasher.verify(user.password_hash if user and user.password_hash else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    return user if user and user.password_hash else None


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


def revoke_token(session: Session, token: str) -> None:
    session.execute(delete(ApiToken).where(ApiToken.token_hash == hash_token(token)))

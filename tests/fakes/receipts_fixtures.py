"""Fixtures for the receipts tests: a fake Google in a thread, settings pointing at it, a connected mailbox.

Import them into a test module: ``from tests.fakes.receipts_fixtures import *  # noqa: F403``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import func, select

from appliance.models import Receipt, ReceiptSyncRun
from appliance.receipts import store, tokens
from appliance.services import Services
from appliance.settings import Settings
from tests.fakes.google import CLIENT_SECRET, FakeGoogle, serve_in_thread, settings_for
from tests.fakes.mailbox import Mail, generate
from tests.helpers import wait_until

__all__ = ["connect_mailbox", "fake_google", "google_settings", "mailbox", "receipt_count", "run_row",
           "settings", "wait_for_run"]

MAILBOX_SIZE = 300


@pytest.fixture(scope="session")
def mailbox() -> list[Mail]:
    """The generated mailbox, dated over the 300 days before now (inside the default 36 months)."""
    return generate(MAILBOX_SIZE, seed=20261126)


@pytest.fixture
def fake_google(mailbox: list[Mail]) -> Iterator[FakeGoogle]:
    fake = FakeGoogle(list(_fresh(mailbox)))
    server = serve_in_thread(fake)
    yield fake
    server.shutdown()


def _fresh(mails: list[Mail]) -> Iterator[Mail]:
    for mail in mails:  # each fake numbers its own history ids
        yield Mail(mail.id, mail.internal_ms, 0, mail.payload, mail.truth, mail.attachments)


def google_settings(base: Settings, fake: FakeGoogle, **extra: Any) -> Settings:
    env = settings_for(fake)
    update: dict[str, Any] = {
        "google_client_id": env["GOOGLE_CLIENT_ID"], "google_client_secret": SecretStr(CLIENT_SECRET),
        "google_redirect_uri": env["GOOGLE_REDIRECT_URI"], "google_auth_uri": env["GOOGLE_AUTH_URI"],
        "google_token_uri": env["GOOGLE_TOKEN_URI"], "gmail_api_url": env["GMAIL_API_URL"],
        "encryption_key": SecretStr(Fernet.generate_key().decode()), "gmail_quota_units": 100_000.0,
        "receipts_previews": False,  # the previews jobs are tested on their own (test_receipts_api: hook)
    }
    update.update(extra)
    return base.model_copy(update=update)


@pytest.fixture
def settings(settings: Settings, fake_google: FakeGoogle) -> Settings:  # extends conftest's
    return google_settings(settings, fake_google)


async def connect_mailbox(services: Services, fake: FakeGoogle, business_id: int) -> str:
    """Store a refresh token the fake knows (what the OAuth callback does); returns it."""
    refresh = fake.issue_refresh_token()
    encrypted = tokens.encrypt(services.settings, refresh)
    await services.db.run(store.save_connection, business_id, fake.email, encrypted, None)
    return refresh


async def run_row(services: Services, run_id: int) -> ReceiptSyncRun:
    return await services.db.run(lambda s: s.get(ReceiptSyncRun, run_id))


async def wait_for_run(services: Services, run_id: int, within: float = 60) -> ReceiptSyncRun:
    async def ended() -> bool:
        return (await run_row(services, run_id)).status in ("completed", "failed")

    await wait_until(ended, timeout=within, step=0.05)
    return await run_row(services, run_id)


async def receipt_count(services: Services, business_id: int) -> int:
    return await services.db.run(lambda s: s.scalar(select(func.count()).select_from(Receipt).where(
        Receipt.business_id == business_id)))

"""Test fixtures on real services: each run gets its own PostgreSQL database and its own Redis key prefix.

``TEST_ADMIN_DATABASE_URL`` (default ``postgresql+psycopg:///postgres``) is where the run's database is
created and dropped; ``TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``) is the shared Redis.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest
import redis as redis_sync
import trio
from sqlalchemy.engine import make_url

from appliance import migrate
from appliance.accounts import store as accounts
from appliance.services import Services, open_services
from appliance.settings import Settings
from appliance.web.app import create_app
from tests.fake_bridge import FakeBridge

RUN = uuid.uuid4().hex[:10]
ADMIN_URL = os.environ.get("TEST_ADMIN_DATABASE_URL", "postgresql+psycopg:///postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def create_database(name: str) -> str:
    with psycopg.connect(_libpq(ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_database(name: str) -> None:
    with psycopg.connect(_libpq(ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    name = f"appliance_test_{RUN}"
    url = create_database(name)
    migrate.upgrade(url)
    yield url
    drop_database(name)


@pytest.fixture(scope="session")
def redis_prefix() -> Iterator[str]:
    prefix = f"appliance:test-{RUN}:"
    yield prefix
    client = redis_sync.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def settings(database_url: str, redis_prefix: str, tmp_path) -> Settings:
    # Each test gets its own key space under the run's prefix, so queues never leak between tests.
    return Settings(
        _env_file=None, database_url=database_url, redis_url=REDIS_URL,
        redis_prefix=f"{redis_prefix}{uuid.uuid4().hex[:8]}:", api_port=0, media_port=0,
        bind_host="127.0.0.1", shutdown_grace=5, data_dir=tmp_path, internal_secret="test-internal-secret",
        db_pool_size=5,
    )


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    async with open_services(settings) as svc:
        yield svc


@pytest.fixture
async def client(services: Services):
    app = create_app(services)
    async with app.test_app() as test_app:
        yield test_app.test_client()


async def make_tenant(services: Services, password: str | None = "correct horse") -> tuple[int, str, str]:
    """A new business with one user; returns (business_id, email, bearer token)."""
    email = f"owner-{uuid.uuid4().hex[:8]}@example.test"

    def create(session) -> tuple[int, str]:
        user = accounts.create_user(session, f"biz-{uuid.uuid4().hex[:8]}", email, password)
        return user.business_id, accounts.issue_token(session, user, "api")

    business_id, token = await services.db.run(create)
    return business_id, email, token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A redis-server of the test's own, on its own port, that the test may stop and start."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    async def wait_up(self, deadline: float = 10) -> None:
        with trio.fail_after(deadline):
            while True:
                try:
                    stream = await trio.open_tcp_stream("127.0.0.1", self.port)
                    await stream.aclose()
                    return
                except OSError:
                    await trio.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
async def own_redis() -> AsyncIterator[RedisServer]:
    server = RedisServer()
    server.start()
    await server.wait_up()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def bridge(nursery):
    """The Baileys bridge's stand-in (tests/fake_bridge.py), serving for the test."""
    fake = FakeBridge()
    await nursery.start(fake.run)
    return fake

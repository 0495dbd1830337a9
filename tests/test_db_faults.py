"""A dead, restarted or paused PostgreSQL turns into DatabaseUnavailableError within seconds, the database
threads come back (none is left holding a pooled connection), and service resumes with no restart.

Every fault here is done to a private cluster (benchmarks/servers.py), never the machine's shared server.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import trio
from sqlalchemy import text

from appliance.db import Database, DatabaseUnavailableError
from appliance.services import open_services
from appliance.web.app import create_app
from appliance.web.health import CHECK_TIMEOUT
from benchmarks.servers import PrivatePostgres


@pytest.fixture(scope="module")
def private_pg() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    server.start()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def db(private_pg: PrivatePostgres) -> Iterator[Database]:
    database = Database(private_pg.url(), 3, connect_timeout=2, statement_timeout=1, call_timeout=1.5,
                        pool_timeout=2)
    yield database
    database.close()


async def threads_back(db: Database, within: float) -> None:
    with trio.fail_after(within):
        while db.limiter.borrowed_tokens:
            await trio.sleep(0.01)


def select(session, value: int = 1) -> int:
    return session.scalar(text("SELECT :v"), {"v": value})


async def test_paused_server_fails_fast_frees_every_thread_and_recovers(private_pg, db):
    assert await db.run(select, 7) == 7  # a pooled connection now exists and will be pinged
    private_pg.pause()
    try:
        failures: list[float] = []

        async def attempt() -> None:
            started = time.monotonic()
            with pytest.raises(DatabaseUnavailableError):
                await db.run(select)
            failures.append(time.monotonic() - started)

        # Twice the pool: the second half waits for slots, which the first half's threads must give back.
        async with trio.open_nursery() as nursery:
            for _ in range(6):
                nursery.start_soon(attempt)
        assert len(failures) == 6
        assert max(failures) < 2 + 1.5 + 0.5, failures  # slot wait (pool_timeout) + the call's deadline
        # No thread is left behind on the paused server: those holding a connection were cut loose at
        # once, those still connecting give up at connect_timeout (2 s).
        await threads_back(db, within=3)
    finally:
        private_pg.resume()
    assert [await db.run(select, n) for n in range(3)] == [0, 1, 2]


async def test_cancelled_caller_cuts_its_thread_loose(private_pg, db):
    assert await db.run(select) == 1
    private_pg.pause()
    try:
        started = time.monotonic()
        with trio.move_on_after(0.3) as scope:
            await db.run(select)
        assert scope.cancelled_caught
        assert time.monotonic() - started < 1.0
        await threads_back(db, within=1)  # the thread itself returns, releasing its slot
    finally:
        private_pg.resume()
    assert await db.run(select, 5) == 5


async def test_restarted_server_is_used_again_without_a_restart_of_ours(private_pg, db):
    assert await db.run(select) == 1
    await trio.to_thread.run_sync(private_pg.stop)
    try:
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailableError):
            await db.run(select)
        assert time.monotonic() - started < 3
    finally:
        await trio.to_thread.run_sync(private_pg.start)
    # The pooled connection died with the old server: the ping on checkout replaces it, no error surfaces.
    assert await db.run(select, 9) == 9


async def test_health_answers_503_naming_db_within_its_deadline_while_postgres_is_paused(
        private_pg, settings):
    settings = settings.model_copy(update={"database_url": private_pg.url()})
    async with open_services(settings) as services:
        app = create_app(services)
        async with app.test_app() as test_app:
            client = test_app.test_client()
            assert (await client.get("/api/health")).status_code == 200
            private_pg.pause()
            try:
                started = time.monotonic()
                response = await client.get("/api/health")
                body = await response.get_json()
                assert response.status_code == 503 and body["db"].startswith("down")
                assert body["redis"] == "ok" and time.monotonic() - started < CHECK_TIMEOUT + 1
            finally:
                private_pg.resume()
            assert (await client.get("/api/health")).status_code == 200  # no restart of ours


async def test_statement_timeout_cancels_a_slow_statement_on_a_live_server(db):
    def slow(session) -> None:
        session.execute(text("SELECT pg_sleep(10)"))

    started = time.monotonic()
    with pytest.raises(DatabaseUnavailableError, match="statement timeout|within"):
        await db.run(slow, timeout=5)
    assert time.monotonic() - started < 3
    assert await db.run(select, 2) == 2

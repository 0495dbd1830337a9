"""Trio-facing data layer: a sync SQLAlchemy engine driven from worker threads.

Every database call goes through :meth:`Database.run`, which runs a function with a session inside one
transaction on a thread from ``trio.to_thread``, under one ``CapacityLimiter`` sized to the pool, so no
blocking call ever runs on the Trio thread and no task waits on the pool while holding a thread.

A database that is down or hung must turn into an error within seconds, and the thread must come back
(an abandoned thread would keep its pool connection). Every stage is bounded:

- connecting: libpq ``connect_timeout`` (a paused server accepts TCP but never answers the startup);
- a statement on a live server: ``statement_timeout``, set for every connection, cancels it server-side;
- taking a pooled connection: it is pinged first (a restarted server's stale connections are replaced),
  and waiting for one is bounded by the pool timeout;
- a server that stops answering on an open connection (SIGSTOP, a dead host: no error ever arrives, and
  the kernel keeps ACKing): each :meth:`Database.run` has a deadline (``call_timeout``); past it, or when
  the caller is cancelled, a watchdog shuts down the socket of the connection the thread holds, so libpq
  sees the connection end, the thread raises, the pool discards that connection, and the thread returns.

Errors::

    DatabaseUnavailableError     the database did not answer in time or refused (callers map it to 503)
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import trio
from sqlalchemy import create_engine, event, exc, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")
log = logging.getLogger(__name__)


class DatabaseUnavailableError(Exception):
    """PostgreSQL is unreachable, too slow, or cut off by the call deadline; try again shortly."""


class _Call:
    """One :meth:`Database.run`: the DBAPI connection its thread holds right now, so it can be cut."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connection: Any = None
        self._finished = False
        self._given_up = False

    def attach(self, connection: Any) -> None:
        with self._lock:
            if self._given_up:  # the caller is gone: do not start its work on a fresh connection
                raise DatabaseUnavailableError("the database call was given up before it started")
            self._connection = connection

    @property
    def given_up(self) -> bool:
        return self._given_up

    def detach(self, connection: Any) -> None:
        with self._lock:
            if connection is self._connection:
                self._connection = None

    def finish(self) -> None:
        with self._lock:
            self._finished = True
            self._connection = None

    def give_up(self) -> bool:
        """Shut down the socket the call's thread waits on, so libpq sees the connection end and the thread
        returns at once. Nothing happens once the thread is done. True if a connection was cut."""
        with self._lock:
            if self._finished:
                return False
            self._given_up = True
            if self._connection is None:
                return False
            try:
                fd = os.dup(self._connection.fileno())
            except Exception:  # already closed: nothing to wake
                return False
            with socket.socket(fileno=fd) as sock:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            return True


_current = threading.local()


class _Slot:
    """One pool slot already taken by :meth:`Database.run`, handed to ``trio.to_thread`` as its limiter, so
    the slot is given back when the thread really ends, even if its caller stopped waiting."""

    def __init__(self, limiter: trio.CapacityLimiter, borrower: object) -> None:
        self._limiter = limiter
        self._borrower = borrower
        self._handed_over = False

    async def acquire_on_behalf_of(self, borrower: object) -> None:
        self._handed_over = True

    def release_on_behalf_of(self, borrower: object) -> None:
        self._limiter.release_on_behalf_of(self._borrower)

    def release_unless_handed_over(self) -> None:
        if not self._handed_over:  # cancelled before the thread started
            self._handed_over = True
            self._limiter.release_on_behalf_of(self._borrower)


def make_engine(url: str, pool_size: int = 10, *, connect_timeout: float = 3.0,
                statement_timeout: float = 5.0, pool_timeout: float = 5.0) -> Engine:
    connect_args: dict[str, Any] = {}
    if url.startswith("postgresql"):
        connect_args = {"connect_timeout": max(2, round(connect_timeout)),
                        "options": f"-c statement_timeout={int(statement_timeout * 1000)}"}
    engine = create_engine(url, pool_size=pool_size, max_overflow=0, pool_timeout=pool_timeout,
                           pool_recycle=1800, connect_args=connect_args)

    # SQLAlchemy's pre-ping runs before any event names the connection, so the ping is done here instead,
    # after the connection is attached to the running call (and so within reach of its watchdog).
    @event.listens_for(engine, "checkout")
    def _ping_on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        call = getattr(_current, "call", None)
        if call is not None:
            call.attach(dbapi_connection)
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            if call is not None:
                call.detach(dbapi_connection)
                if call.given_up:  # cut by its watchdog: no fresh connection for a caller who has gone
                    raise DatabaseUnavailableError("the database call was cut off") from error
            raise exc.DisconnectionError(f"stale connection replaced: {error}") from error

    @event.listens_for(engine, "checkin")
    def _detach_on_checkin(dbapi_connection: Any, record: Any) -> None:
        call = getattr(_current, "call", None)
        if call is not None:
            call.detach(dbapi_connection)

    return engine


class Database:
    def __init__(self, url: str, pool_size: int = 10, *, connect_timeout: float = 3.0,
                 statement_timeout: float = 5.0, call_timeout: float = 6.0,
                 pool_timeout: float = 5.0) -> None:
        self.engine = make_engine(url, pool_size, connect_timeout=connect_timeout,
                                  statement_timeout=statement_timeout, pool_timeout=pool_timeout)
        self.limiter = trio.CapacityLimiter(pool_size)
        self.call_timeout = call_timeout
        self.pool_timeout = pool_timeout
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Any, pool_size: int | None = None) -> Database:
        return cls(settings.database_url, pool_size or settings.db_pool_size,
                   connect_timeout=settings.db_connect_timeout,
                   statement_timeout=settings.db_statement_timeout,
                   call_timeout=settings.db_call_timeout, pool_timeout=settings.db_pool_timeout)

    def run_sync(self, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn(session, *args)`` in one transaction on the calling thread (for sync job code)."""
        try:
            with self._sessions.begin() as session:
                return fn(session, *args)
        except (exc.OperationalError, exc.TimeoutError) as error:
            raise DatabaseUnavailableError(_describe(error)) from error

    def _run_call(self, call: _Call, fn: Callable[..., T], *args: object) -> T:
        _current.call = call
        try:
            return self.run_sync(fn, *args)
        finally:
            _current.call = None
            call.finish()

    async def run(self, fn: Callable[..., T], *args: object, timeout: float | None = None) -> T:
        """Run ``fn(session, *args)`` in one transaction on a worker thread.

        Waiting for one of the pool's slots is bounded by ``pool_timeout``; the call itself, once its thread
        runs, by ``timeout`` (default ``call_timeout``). Past that deadline, or when the caller is cancelled,
        the connection the thread waits on is cut: the thread raises and returns within moments, its slot
        held until it has (so the pool is never oversubscribed), and its connection is discarded."""
        call = _Call()
        limit = self.call_timeout if timeout is None else timeout
        acquired = False
        with trio.move_on_after(self.pool_timeout):
            await self.limiter.acquire_on_behalf_of(call)
            acquired = True
        if not acquired:
            raise DatabaseUnavailableError(f"database busy: no free connection within {self.pool_timeout:g}s")
        slot = _Slot(self.limiter, call)
        try:
            with trio.move_on_after(limit):
                try:
                    return await trio.to_thread.run_sync(  # any object with the limiter methods will do
                        self._run_call, call, fn, *args, limiter=slot, abandon_on_cancel=True,  # type: ignore[arg-type]
                    )
                finally:
                    if call.give_up():
                        log.warning("database call cut off after %.1fs or its caller gave up", limit)
        finally:
            slot.release_unless_handed_over()
        raise DatabaseUnavailableError(f"no answer from the database within {limit:g}s")

    async def ping(self, timeout: float | None = None) -> None:
        def select_one(session: Session) -> None:
            session.execute(text("SELECT 1"))

        await self.run(select_one, timeout=timeout)

    def close(self) -> None:
        self.engine.dispose()


def _describe(error: Exception) -> str:
    orig = getattr(error, "orig", None) or error
    first = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return f"database unavailable: {first}"

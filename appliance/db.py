"""Trio-facing data layer: a sync SQLAlchemy engine driven from worker threads.

Every database call goes through :meth:`Database.run`, which runs a function with a session inside one
transaction on a thread from ``trio.to_thread``, under one ``CapacityLimiter`` sized to the pool, so no
blocking call ever runs on the Trio thread and no task waits on the pool while holding a thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import trio
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")


def make_engine(url: str, pool_size: int = 10) -> Engine:
    return create_engine(url, pool_size=pool_size, max_overflow=0, pool_pre_ping=True, pool_recycle=1800)


class Database:
    def __init__(self, url: str, pool_size: int = 10) -> None:
        self.engine = make_engine(url, pool_size)
        self.limiter = trio.CapacityLimiter(pool_size)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def run_sync(self, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn(session, *args)`` in one transaction on the calling thread (for sync job code)."""
        with self._sessions.begin() as session:
            return fn(session, *args)

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn(session, *args)`` in one transaction on a worker thread."""
        return await trio.to_thread.run_sync(self.run_sync, fn, *args, limiter=self.limiter)

    async def ping(self) -> None:
        def select_one(session: Session) -> None:
            session.execute(text("SELECT 1"))

        await self.run(select_one)

    def close(self) -> None:
        self.engine.dispose()

"""The keep-alive idle timers of HTTP/1.1 connections: no task, lock or scheduler round trip per timer.

- ``TrioSingleTask.restart`` (the keep-alive idle timer, restarted as each connection opens and after
  each request) takes a lock and starts the timer task with ``nursery.start``, two scheduler round trips
  for a task that only sleeps. Patched: the cancel scope is made first and the task started with
  ``start_soon`` (restart and stop do not wait, so the lock had nothing to order). CPU per post at 1,000
  posts in flight, each on a new connection: 1,140-1,300 -> 940-1,160 µs (alternating runs, 2 each).

- Even so, each idle period of each connection was a task (spawned, parked on an event, cancelled with an
  exception): twice for a post on its own connection (as it opens, after its answer). Patched: the
  connections' keep-alive timers are deadlines in one heap per worker, kept by one task that closes a
  connection when its deadline passes (as ``_idle_timeout`` does: ``_initiate_server_close``, shielded,
  in the connection's task group) and every idle one at once when the worker is terminating; a timer
  for any other action still gets its own task. CPU per post at 1,000 posts in flight 780-850 (median
  820) -> 480-900 (median 780) µs, posts/s median 1,141 -> 1,248; at 20 in flight 520-540 -> 480-520 µs
  (alternating runs, 3 x 3 bursts each).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import TrioSingleTask


async def _in_scope(scope: trio.CancelScope, action: Callable[[], Awaitable[None]]) -> None:
    with scope:
        await action()


async def _restart(self: TrioSingleTask, task_group: Any, action: Callable[[], Awaitable[None]]) -> None:
    await _stop(self)
    server = getattr(action, "__self__", None)
    if type(server) is TCPServer and getattr(action, "__func__", None) is TCPServer._idle_timeout:
        _IdleTimers.of(server.context).arm(self, server, task_group)
        return
    self._handle = scope = trio.CancelScope()  # cancelled before the task enters it: the task just ends
    task_group._nursery.start_soon(_in_scope, scope, action)


async def _stop(self: TrioSingleTask) -> None:
    if self._handle is not None:
        self._handle.cancel()
    self._handle = None
    self.__dict__.pop("_armed", None)


class _IdleTimers:
    """The keep-alive idle timers of one worker's connections, kept by one task: a deadline per idle
    connection in a heap, and the connection closed as Hypercorn's ``_idle_timeout`` would when it passes
    (or at once once the worker is terminating)."""

    def __init__(self, context: Any) -> None:
        self.context = context
        self.heap: list[tuple[float, int, TrioSingleTask]] = []
        self.count = 0
        self.sleep = trio.CancelScope()
        self.started = False

    @classmethod
    def of(cls, context: Any) -> _IdleTimers:
        timers: _IdleTimers | None = context.__dict__.get("_idle_timers")
        if timers is None:
            timers = context.__dict__["_idle_timers"] = cls(context)
        return timers

    def arm(self, task: TrioSingleTask, server: TCPServer, task_group: Any) -> None:
        if self.context.terminated.is_set():
            self._close(server, task_group)
            return
        deadline = trio.current_time() + server.config.keep_alive_timeout
        self.count += 1
        task.__dict__["_armed"] = (self.count, server, task_group)
        heapq.heappush(self.heap, (deadline, self.count, task))
        if deadline < self.sleep.deadline:
            self.sleep.deadline = deadline
        if not self.started:
            self.started = True
            # A system task: Hypercorn hands no nursery that lives as long as its worker (each connection's
            # ends with it). It ends when the worker terminates; an error in it ends the process, loudly.
            trio.lowlevel.spawn_system_task(self._run)

    async def _run(self) -> None:
        while not self.context.terminated.is_set():
            with trio.CancelScope(deadline=self.heap[0][0] if self.heap else math.inf) as self.sleep:
                await self.context.terminated.wait()
            now = trio.current_time()
            while self.heap and (self.heap[0][0] <= now or self.context.terminated.is_set()):
                _, number, task = heapq.heappop(self.heap)
                armed = task.__dict__.get("_armed")
                if armed is not None and armed[0] == number:
                    del task.__dict__["_armed"]
                    self._close(armed[1], armed[2])

    @staticmethod
    def _close(server: TCPServer, task_group: Any) -> None:
        try:
            task_group._nursery.start_soon(_close_idle, server)
        except (AttributeError, RuntimeError):  # the connection has ended meanwhile (its nursery is gone)
            pass


async def _close_idle(server: TCPServer) -> None:
    with trio.CancelScope(shield=True):
        await server._initiate_server_close()

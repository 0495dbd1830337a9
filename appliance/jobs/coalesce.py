"""Group commit for one kind of call: what callers ask for while a call is in flight goes together in the
next one, so a burst of concurrent enqueues costs a few script calls instead of one each.

A caller that finds nothing in flight makes the call at once with what is waiting (its own items first);
the others wait for it. When the call returns, each waiting caller gets its own part of the answer, and the
first caller still waiting for a call leads the next one. The call runs shielded, within the leader's own
deadline, because other callers' items ride on it: a leader cancelled meanwhile (its client went away)
does not cancel theirs; a leader's deadline passing fails that call for everyone in it, as it would have
failed alone (``trio.TooSlowError``). A caller cancelled while waiting is taken out of the next call, and
an error in a call reaches every caller in it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import trio

T = TypeVar("T")
R = TypeVar("R")


class _Waiter(Generic[T, R]):
    __slots__ = ("items", "done", "answer", "error", "lead")

    def __init__(self, items: Sequence[T]) -> None:
        self.items = items
        self.done = trio.Event()
        self.answer: list[R] = []
        self.error: BaseException | None = None
        self.lead = False


class Coalescer(Generic[T, R]):
    def __init__(self, call: Callable[[list[T]], Awaitable[Sequence[R]]]) -> None:
        self._call = call
        self._waiting: list[_Waiter[T, R]] = []
        self._busy = False

    async def __call__(self, items: Sequence[T]) -> list[R]:
        """``call``'s answer for ``items`` (one answer per item, in order), made together with others'."""
        waiter: _Waiter[T, R] = _Waiter(items)
        self._waiting.append(waiter)
        if self._busy:
            try:
                await waiter.done.wait()
            except BaseException:
                if waiter in self._waiting:
                    self._waiting.remove(waiter)
                raise
        else:
            waiter.lead = self._busy = True
        if waiter.lead:
            await self._lead()
        if waiter.error is not None:
            raise waiter.error
        return waiter.answer

    async def _lead(self) -> None:
        batch, self._waiting = self._waiting, []
        try:
            answers: list[R] | None = None
            with trio.CancelScope(shield=True, deadline=trio.current_effective_deadline()):
                answers = list(await self._call([item for w in batch for item in w.items]))
            if answers is None:  # the leader's deadline passed
                raise trio.TooSlowError
            start = 0
            for w in batch:
                w.answer, start = answers[start:start + len(w.items)], start + len(w.items)
        except BaseException as error:  # every caller in the call gets it (shielded: never a Cancelled)
            for w in batch:
                w.error = error
        finally:
            for w in batch:
                w.done.set()
            if self._waiting:
                self._waiting[0].lead = True
                self._waiting[0].done.set()
            else:
                self._busy = False

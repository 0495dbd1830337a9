"""The Trio side of previews: a render process and a thumbnail process per worker, each with a hard deadline.

Both are trio-parallel worker processes. A call waits on a pipe, so a Trio cancel scope really stops it:
when a deadline passes, trio-parallel kills the process (``kill_on_cancel``) and the next call starts a
fresh one. That is why Playwright does not run in a thread of the worker: a thread stuck in a hung
Chromium call cannot be cancelled, only abandoned, and it would still hold the browser.

- render process (:mod:`appliance.previews.chromium`): one long-lived Chromium, a new context per render,
  one render at a time; retired after ``RENDERS_PER_BROWSER`` renders, replaced when it dies.
- thumbnail process (:mod:`appliance.previews.pdf`): PDFium one file at a time under an address-space cap.

A job reaches its role's pair with ``await shared(services)``: started on first use by a system task that
owns them until the role's Trio run ends.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import trio
import trio_parallel

from appliance.previews import chromium, pdf
from appliance.previews.document import InlinePart
from appliance.previews.errors import (
    PreviewError,
    RenderCrashedError,
    RendererUnavailableError,
    RenderTimeoutError,
)
from appliance.services import Services
from appliance.settings import Settings

log = logging.getLogger(__name__)

RENDER_DEADLINE = 20.0  # seconds for one email, the hard limit; Playwright's own steps get half of it
PDF_DEADLINE = 10.0
START_DEADLINE = chromium.LAUNCH_TIMEOUT + 10  # a cold render process: Python, Playwright's driver, Chromium
IDLE_TIMEOUT = 600.0  # an idle process exits after this and frees its memory (a browser is ~200 MB)


class Previews:
    def __init__(self, render_context: trio_parallel.WorkerContext, pdf_context: trio_parallel.WorkerContext,
                 chromium_path: str, render_deadline: float = RENDER_DEADLINE,
                 pdf_deadline: float = PDF_DEADLINE,
                 renders_per_browser: int = chromium.RENDERS_PER_BROWSER) -> None:
        self._render_context = render_context
        self._pdf_context = pdf_context
        self.chromium_path = chromium_path
        self.render_deadline = render_deadline
        self.pdf_deadline = pdf_deadline
        self.renders_per_browser = renders_per_browser
        # One process each, one call at a time; a call waits for its turn before its deadlines start.
        self._render_lock, self._render_limiter = trio.Lock(), trio.CapacityLimiter(1)
        self._pdf_lock, self._pdf_limiter = trio.Lock(), trio.CapacityLimiter(1)  # PDFium is not thread-safe

    async def render_html(self, html: str, *, inline: Mapping[str, InlinePart] | None = None,
                          width: int = 800, max_height: int = 8000,
                          deadline: float | None = None) -> chromium.Rendered:
        """A PNG of ``html`` (an email body or any stored page) as Chromium shows it, nothing fetched."""
        deadline = deadline or self.render_deadline
        request = chromium.RenderRequest(html, dict(inline or {}), width, max_height, timeout=deadline / 2,
                                         renders_per_browser=self.renders_per_browser)
        async with self._render_lock:
            await self._run(self._render_context, self._render_limiter, START_DEADLINE, "starting chromium",
                            RendererUnavailableError, chromium.start, self.chromium_path)  # cheap when warm
            return await self._run(self._render_context, self._render_limiter, deadline, "rendering",
                                   RenderCrashedError, chromium.render, self.chromium_path, request)

    async def pdf_thumbnail(self, path: Path | str, *, longest: int = 400,
                            deadline: float | None = None) -> pdf.Thumbnail:
        """A PNG of the first page of the PDF at ``path``, its longer side ``longest`` pixels."""
        return await self._in_pdf_process(deadline, "thumbnailing", pdf.thumbnail, str(path), longest)

    async def pdf_text(self, data: bytes, *, deadline: float | None = None) -> str:
        """The text of a PDF (the receipts sync reads totals in it), under the thumbnails' protections."""
        return await self._in_pdf_process(deadline, "reading a PDF's text", pdf.text, data)

    async def _in_pdf_process(self, deadline: float | None, what: str, fn: Any, *args: Any) -> Any:
        async with self._pdf_lock:
            if not self._pdf_context.statistics().idle_workers:  # a cold process: start it on its own clock
                await self._run(self._pdf_context, self._pdf_limiter, START_DEADLINE, "starting PDFium",
                                RendererUnavailableError, pdf.start)
            return await self._run(self._pdf_context, self._pdf_limiter, deadline or self.pdf_deadline, what,
                                   RenderCrashedError, fn, *args)

    @staticmethod
    async def _run(context: trio_parallel.WorkerContext, limiter: trio.CapacityLimiter, deadline: float,
                   what: str, died: type[PreviewError], fn: Any, *args: Any) -> Any:
        with trio.move_on_after(deadline) as scope:
            try:
                return await context.run_sync(fn, *args, kill_on_cancel=True, limiter=limiter)
            except trio_parallel.BrokenWorkerError as exc:
                raise died(f"{what}: the process died (a crash, or out of memory): {exc.args[0]}") from None
        assert scope.cancelled_caught
        raise RenderTimeoutError(f"{what} took longer than {deadline:g}s; its process was killed")


@asynccontextmanager
async def open_previews(chromium_path: str = "/usr/bin/chromium", *, pdf_memory: int = pdf.MEMORY_LIMIT,
                        render_deadline: float = RENDER_DEADLINE, pdf_deadline: float = PDF_DEADLINE,
                        renders_per_browser: int = chromium.RENDERS_PER_BROWSER) -> AsyncIterator[Previews]:
    """Both processes for the lifetime of the block (started lazily, stopped on exit)."""
    async with (
        trio_parallel.open_worker_context(retire=chromium.should_retire, idle_timeout=IDLE_TIMEOUT,
                                          grace_period=10) as render_context,
        trio_parallel.open_worker_context(init=partial(pdf.limit_memory, pdf_memory),
                                          idle_timeout=IDLE_TIMEOUT, grace_period=5) as pdf_context,
    ):
        yield Previews(render_context, pdf_context, chromium_path, render_deadline, pdf_deadline,
                       renders_per_browser)


async def shared(services: Services) -> Previews:
    """The role's :class:`Previews` (kept in ``services.local``), opened on first use by a system task
    that holds the processes until the role's Trio run ends."""
    slot = services.local.get("previews")
    if slot is None:
        slot = services.local["previews"] = _Slot()
        trio.lowlevel.spawn_system_task(_hold, services.settings, slot, name="appliance.previews")
    await slot.ready.wait()
    if slot.previews is None:
        raise RendererUnavailableError(f"previews could not start: {slot.error}")
    return slot.previews


@dataclass(eq=False)
class _Slot:
    ready: trio.Event = field(default_factory=trio.Event)
    previews: Previews | None = None
    error: BaseException | None = None


async def _hold(settings: Settings, slot: _Slot) -> None:
    try:
        async with open_previews(settings.chromium_path, render_deadline=settings.preview_render_deadline,
                                 pdf_deadline=settings.preview_pdf_deadline) as previews:
            slot.previews = previews
            slot.ready.set()
            await trio.sleep_forever()
    except (PreviewError, trio_parallel.BrokenWorkerError, OSError) as exc:  # a system task must not raise
        log.warning("previews: render processes did not close cleanly: %s", exc)
        slot.error = exc
    finally:
        slot.ready.set()

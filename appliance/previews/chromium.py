"""The render process: one Playwright driver and one long-lived Chromium, a new browser context per render.

This module runs only inside a render process that :mod:`appliance.previews.pool` starts (a trio-parallel
worker): Playwright's sync API runs its own asyncio loop in this process's main thread, out of Trio's
way, and the worker can kill the whole process when a render misses its deadline. The browser is launched
on first use, relaunched when it has died, and the process retires after ``RENDERS_PER_BROWSER`` renders
so a slow leak in Chromium never grows without bound.

Every render: JavaScript off, ``offline=True``, every request aborted by a route, the CSP of
:mod:`appliance.previews.document`, a fixed width and a capped height.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from appliance.previews.document import InlinePart, safe_document
from appliance.previews.errors import DocumentError, PreviewError, RenderCrashedError, RendererUnavailableError

if TYPE_CHECKING:
    from playwright.sync_api import FloatRect

RENDERS_PER_BROWSER = 500
LAUNCH_TIMEOUT = 30.0
# Chromium's sandbox needs an unprivileged user; as root (tests, CI) Playwright passes --no-sandbox.
# No host resolves, IP literals included: the speculative preconnects Chromium opens for a navigation or a
# <video> happen below request interception and CSP (a test saw them reach a local server).
LAUNCH_ARGS = ("--disable-dev-shm-usage", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--host-resolver-rules=MAP * ~NOTFOUND")
MIN_HEIGHT = 200  # the viewport's height: a short email gives a short image
HEIGHT_JS = "Math.max(document.documentElement.scrollHeight, document.body ? document.body.scrollHeight : 0)"


@dataclass(frozen=True)
class RenderRequest:
    html: str
    inline: dict[str, InlinePart] = field(default_factory=dict)
    width: int = 800
    max_height: int = 8000
    timeout: float = 10.0  # Playwright's own timeout for each step; the pool's deadline is the backstop
    renders_per_browser: int = RENDERS_PER_BROWSER  # then this process retires, its browser with it


@dataclass(frozen=True)
class Rendered:
    png: bytes
    width: int
    height: int
    truncated: bool  # the page was taller than max_height
    pid: int  # the render process (tests find and kill its browser)


class _Browser:
    def __init__(self, executable: str) -> None:
        from playwright.sync_api import Error, sync_playwright

        if not os.access(executable, os.X_OK):
            raise RendererUnavailableError(f"CHROMIUM_PATH {executable} is not executable (install chromium)")
        self._driver = sync_playwright().start()
        try:
            self.browser = self._driver.chromium.launch(
                executable_path=executable, chromium_sandbox=os.geteuid() != 0, args=list(LAUNCH_ARGS),
                timeout=LAUNCH_TIMEOUT * 1000,
            )
        except Error as exc:
            self._driver.stop()
            raise RendererUnavailableError(f"chromium at {executable} did not start: {exc.message}") from None
        self.executable = executable
        self.renders = 0
        self.retire_after = RENDERS_PER_BROWSER

    def alive(self) -> bool:
        return self.browser.is_connected()

    def close(self) -> None:
        try:
            self.browser.close()
        except Exception:  # closing a dead browser; the driver's exit reaps it
            pass
        self._driver.stop()

    def render(self, request: RenderRequest) -> Rendered:
        from playwright.sync_api import Error

        document = safe_document(request.html, request.inline)
        self.renders += 1
        self.retire_after = request.renders_per_browser
        try:
            context = self.browser.new_context(
                java_script_enabled=False, offline=True, service_workers="block", accept_downloads=False,
                viewport={"width": request.width, "height": MIN_HEIGHT}, device_scale_factor=1,
            )
        except Error as exc:
            raise _BrowserGoneError(exc.message) from None
        try:
            context.set_default_timeout(request.timeout * 1000)
            context.route("**/*", _refuse)
            page = context.new_page()
            page.set_content(document, wait_until="load")
            # Playwright evaluates in its own isolated world, which works with page JavaScript off.
            full = max(1, int(page.evaluate(HEIGHT_JS)))
            height = min(full, request.max_height)
            clip: FloatRect = {"x": 0, "y": 0, "width": request.width, "height": height}
            png = page.screenshot(full_page=True, clip=clip, animations="disabled", caret="initial")
        except Error as exc:
            if not self.alive():
                raise RenderCrashedError(f"chromium died while rendering: {exc.message}") from None
            raise PreviewError(f"render failed: {exc.message.splitlines()[0]}") from None
        finally:
            try:
                context.close()
            except Error:
                pass
        return Rendered(png, request.width, height, full > height, os.getpid())


def _refuse(route) -> None:  # a Playwright Route
    """Nothing leaves the page. A navigation (``<meta http-equiv=refresh>``) is answered 204 No Content
    right here, which leaves the email on screen; every other request is aborted."""
    if route.request.is_navigation_request():
        route.fulfill(status=204)
    else:
        route.abort("blockedbyclient")


class _BrowserGoneError(Exception):
    """The browser had died before this render began (killed, crashed): relaunch and render again."""


_browser: _Browser | None = None


def _current(executable: str) -> _Browser:
    global _browser
    if _browser is not None and (not _browser.alive() or _browser.executable != executable):
        _browser.close()
        _browser = None
    if _browser is None:
        _browser = _Browser(executable)
    return _browser


def start(executable: str) -> int:
    """Launch the browser if this process has none alive; returns the render process's pid."""
    _current(executable)
    return os.getpid()


def render(executable: str, request: RenderRequest) -> Rendered:
    """Render ``request`` in this process's browser (launched or relaunched as needed)."""
    if request.width <= 0 or request.max_height <= 0:
        raise DocumentError("width and max_height must be positive")
    try:
        return _current(executable).render(request)
    except _BrowserGoneError:
        _shutdown()
        return _current(executable).render(request)


def should_retire() -> bool:
    """trio-parallel asks after every call: retire this process once its browser has done its share."""
    if _browser is not None and _browser.renders >= _browser.retire_after:
        _shutdown()
        return True
    return False


@atexit.register
def _shutdown() -> None:
    global _browser
    if _browser is not None:
        _browser.close()
        _browser = None

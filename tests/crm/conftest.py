"""The browser CRM's test bench, shared by every test of this folder and started once per session:

- the real appliance (``appliance up --roles api,worker,scheduler``: Hypercorn, a worker, the scheduler) as
  child processes on the run's PostgreSQL database and its own Redis prefix;
- a side Trio loop in a thread holding open Services (for seeding data the way the appliance itself writes
  it) and the local stand-ins for third parties (the Baileys bridge);
- one Chromium (Debian's, driven by Playwright), a fresh context per test, logged in by cookie.

A test's ``page`` fails the test on any console error or uncaught exception in the page. Screenshots go to
``$CRM_SCREENSHOTS`` when set (``docs/screenshots`` to refresh the README's), else to the test's tmp dir.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from appliance.services import Services, open_services
from appliance.settings import Settings
from tests.conftest import REDIS_URL, free_port, make_tenant
from tests.fake_bridge import FakeBridge
from tests.helpers import role_env, start_role

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
PASSWORD = "correct horse"


class SideLoop:
    """A Trio loop in a thread: Services for seeding, and the fake third-party servers."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.services: Services | None = None
        self.bridge = FakeBridge()
        self._ready = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="crm-side-loop", daemon=True)

    def _main(self) -> None:
        try:
            trio.run(self._serve)
        except BaseException as exc:  # handed to the test thread, which raises it
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        async with open_services(self.settings) as services, trio.open_nursery() as nursery:
            self.services = services
            await nursery.start(self.bridge.run)
            self._token = trio.lowlevel.current_trio_token()
            self._stop = trio.Event()
            self._ready.set()
            await self._stop.wait()
            nursery.cancel_scope.cancel()

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(30) or self._error:
            raise RuntimeError(f"side loop did not start: {self._error!r}")

    def run(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        return trio.from_thread.run(fn, *args, trio_token=self._token)

    def close(self) -> None:
        if self._token is not None and self._stop is not None:
            trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(15)


@dataclass
class Google:
    """The receipts issue's local Google (OAuth and Gmail API) in a thread, with a generated mailbox."""

    fake: Any
    server: Any
    env: dict[str, str]


MAILBOX = 40  # messages in the fake mailbox; each business that connects reads the same ones
GMAIL_DELAY = 0.02  # seconds added to every request of the fake, so a sync runs long enough to watch


def start_fake_google(base: str) -> Google | None:
    try:
        from cryptography.fernet import Fernet

        from tests.fakes.google import FakeGoogle, serve_in_thread, settings_for
        from tests.fakes.mailbox import generate
    except ImportError:  # the receipts branch is not merged yet
        return None
    fake = FakeGoogle(generate(MAILBOX, seed=14), delay=GMAIL_DELAY)
    server = serve_in_thread(fake)
    env = settings_for(fake, redirect_uri=base + "/api/gmail/oauth/callback")
    env["ENCRYPTION_KEY"] = Fernet.generate_key().decode()
    return Google(fake, server, env)


@dataclass
class Tenant:
    business_id: int
    email: str
    token: str
    api: httpx.Client
    cookies: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Bench:
    base: str
    settings: Settings
    side: SideLoop
    proc: subprocess.Popen[bytes]
    google: Google | None = None
    clients: list[httpx.Client] = field(default_factory=list)

    def seed(self, fn: Callable[[Services], Awaitable[Any]]) -> Any:
        async def call() -> Any:
            return await fn(self.side.services)

        return self.side.run(call)

    def tenant(self) -> Tenant:
        business_id, email, token = self.seed(make_tenant)
        api = httpx.Client(base_url=self.base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        self.clients.append(api)
        login = httpx.post(self.base + "/api/auth/login", json={"email": email, "password": PASSWORD}, timeout=30)
        assert login.status_code == 200, login.text
        session = login.cookies.get("appliance_session")
        host = self.base.split("//", 1)[1].split(":", 1)[0]
        cookie = {"name": "appliance_session", "value": session, "domain": host, "path": "/", "httpOnly": True,
                  "secure": True, "sameSite": "Lax"}
        return Tenant(business_id, email, token, api, [cookie])


def until(predicate: Callable[[], Any], timeout: float = 30, what: str = "") -> Any:
    """Poll ``predicate`` (e.g. ``page.evaluate``, which goes through the DevTools protocol and so is not
    blocked by the page's CSP, unlike ``wait_for_function``) until it is truthy; fail after ``timeout``."""
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or predicate}")


def _wait_healthy(base: str, proc: subprocess.Popen[bytes], deadline: float = 60) -> None:
    import time

    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"appliance up exited with {proc.returncode}")
        try:
            if httpx.get(base + "/api/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)  # polling a child process's socket with a deadline
    raise RuntimeError("the appliance did not become healthy in time")


@pytest.fixture(scope="session")
def bench(database_url: str, redis_prefix: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    settings = Settings(
        _env_file=None, database_url=database_url, redis_url=REDIS_URL,
        redis_prefix=f"{redis_prefix}crm-{uuid.uuid4().hex[:6]}:", api_port=free_port(), media_port=free_port(),
        bind_host="127.0.0.1", shutdown_grace=5, data_dir=tmp_path_factory.mktemp("crm-data"),
        internal_secret="test-internal-secret", db_pool_size=3,
    )
    side = SideLoop(settings)
    side.start()
    base = f"http://localhost:{settings.api_port}"  # localhost: a secure context, so the Secure cookie works
    google = start_fake_google(base)
    env = role_env(settings, WORKERS=1, BAILEYS_URL=side.bridge.url, SUPERVISOR_WATCHDOG=30,
                   **(google.env if google else {}))
    proc = start_role(["up", "--roles", "api,worker,scheduler"], env)
    try:
        _wait_healthy(base, proc)
        bench = Bench(base, settings, side, proc, google)
        yield bench
        for client in bench.clients:
            client.close()
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        side.close()
        if google is not None:
            google.server.shutdown()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium missing: scripts/setup.sh --tests installs Debian's chromium")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)  # as the contexts' default: CI machines are shared
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def tenant(bench: Bench) -> Tenant:
    """The session's business, logged in; tests that need a clean slate make their own with bench.tenant()."""
    return bench.tenant()


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = os.environ.get("CRM_SCREENSHOTS")
    path = Path(target) if target else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


class Watched:
    """A page and what went wrong in it: console errors, uncaught exceptions, error answers, API requests.

    Chromium logs every 4xx answer to the console ("Failed to load resource"); those are kept apart in
    ``answers`` and only the statuses a test provokes on purpose (``allow(422)``) are accepted.
    """

    def __init__(self, page: Any, shots: Path) -> None:
        self.page = page
        self.shots = shots
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.answers: list[tuple[int, str]] = []
        self.allowed: set[int] = set()
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("request", lambda req: self.requests.append(req.url) if "/api/" in req.url else None)
        page.on("response", lambda r: self.answers.append((r.status, r.url)) if r.status >= 400 else None)

    def _console(self, msg: Any) -> None:
        if msg.type == "error" and not msg.text.startswith("Failed to load resource: the server responded"):
            self.errors.append(f"console: {msg.text}")

    def allow(self, *statuses: int) -> None:
        self.allowed.update(statuses)

    def problems(self) -> list[str]:
        return self.errors + [f"{status} {url}" for status, url in self.answers if status not in self.allowed]

    def shoot(self, name: str) -> None:
        """The page as it is, at desktop width and at phone width (390x844), full length."""
        self.page.screenshot(path=str(self.shots / f"{name}-desktop.png"), full_page=True)
        self.page.set_viewport_size(PHONE)
        self.page.screenshot(path=str(self.shots / f"{name}-phone.png"), full_page=True)
        self.page.set_viewport_size(DESKTOP)


def open_page(browser: Any, bench: Bench, tenant: Tenant | None, shots: Path, viewport: dict[str, int] = DESKTOP
              ) -> tuple[Any, Watched]:
    context = browser.new_context(viewport=viewport, base_url=bench.base)
    context.set_default_timeout(30_000)  # generous: CI machines are shared
    if tenant is not None:
        context.add_cookies(tenant.cookies)
    return context, Watched(context.new_page(), shots)


@pytest.fixture
def page(browser: Any, bench: Bench, tenant: Tenant, shots: Path, tmp_path: Path) -> Iterator[Watched]:
    """A logged-in page of the session's tenant; the test fails on any console error in it. The page as it
    was at the end is kept as ``last.png`` in the test's tmp dir (what a failure looked like)."""
    context, watched = open_page(browser, bench, tenant, shots)
    try:
        yield watched
    finally:
        watched.page.screenshot(path=str(tmp_path / "last.png"), full_page=True)
        context.close()
    assert watched.problems() == []

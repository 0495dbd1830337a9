"""The browser CRM in real Chromium (Debian's, driven by Playwright) against the real API on Hypercorn."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import trio

from appliance.jobs.queue import JobQueue
from appliance.web.serve import serve_api
from tests.conftest import bearer, make_tenant

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def drive(base: str, email: str, password: str, shot: Path) -> dict[str, str]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(base + "/")
            page.fill("#login-form input[name=email]", email)
            page.fill("#login-form input[name=password]", "wrong password")
            page.click("#login-form button")
            page.wait_for_selector("#login-error:not(:empty)")
            bad_login = page.inner_text("#login-error")
            page.fill("#login-form input[name=password]", password)
            page.click("#login-form button")
            page.wait_for_selector("#leads-rows tr")
            leads = page.inner_text("#leads-rows")
            page.click("a[href='#jobs']")
            page.wait_for_selector("#queues tr")
            page.wait_for_function("document.querySelector('#queues').innerText.includes('low\\t3')")
            queues = page.inner_text("#queues")
            page.screenshot(path=str(shot))
            return {"bad_login": bad_login, "leads": leads, "queues": queues}
        finally:
            browser.close()


async def test_log_in_see_leads_and_queue_depths(settings, services, client, nursery, tmp_path):
    if not await trio.Path(CHROMIUM).exists():
        pytest.fail("chromium missing: scripts/setup.sh --tests installs Debian's chromium")
    _, email, token = await make_tenant(services)
    created = await client.post("/api/leads", json={"name": "Grace Hopper", "phone": "+15550100"},
                                headers=bearer(token))
    assert created.status_code == 201
    queue = JobQueue(services.redis, services.keys)
    for _ in range(3):
        await queue.enqueue("diagnostics.noop", queue="low")  # no worker runs: they stay queued
    handle = await nursery.start(serve_api, settings, trio.Event())
    base = handle.status().rsplit(" ", 1)[1].replace("127.0.0.1", "localhost")
    seen = await trio.to_thread.run_sync(drive, base, email, "correct horse", tmp_path / "jobs.png")
    assert "password" in seen["bad_login"].lower()
    assert "Grace Hopper" in seen["leads"] and "+15550100" in seen["leads"]
    assert "low\t3" in seen["queues"]
    assert (tmp_path / "jobs.png").stat().st_size > 10_000

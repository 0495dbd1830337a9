"""Every page: served under a strict CSP, an empty state for every list, no console error at desktop or
phone width; the settings form saved and read back."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect

from tests.crm.conftest import PHONE, open_page

pytestmark = pytest.mark.slow  # the real appliance as child processes, and Chromium

# page, a selector that is there once the page has loaded, the empty states it must show for a new business
PAGES = [
    ("/leads", "#leads-rows", ["No leads yet"]),
    ("/inbox", "#conversations", ["No conversations yet"]),
    ("/calls", "#calls-rows", ["No calls yet"]),
    ("/jobs", "#dead-jobs", []),  # jobs are the whole appliance's, not one business's: no empty state to expect
    ("/receipts", "#receipts-rows", ["No receipts yet"]),
    ("/sync", "#sync-receipts", ["No sync has run yet", "No receipts yet"]),
    ("/settings", "#users-rows", ["No mailbox connected"]),  # a new business has its first API token
]
# Form controls that no label names (every input, select and textarea must have one).
UNLABELLED = """[...document.querySelectorAll('main input, main select, main textarea')]
  .filter((el) => el.type !== 'hidden' && el.labels.length === 0 && !el.getAttribute('aria-label'))
  .map((el) => el.id || el.name)"""
# The API each page needs; pages whose API is built in a branch not merged yet are skipped until it is.
NEEDS = {"/receipts": ["/api/receipts"], "/sync": ["/api/receipts/sync/latest", "/api/gmail/connection"],
         "/settings": ["/api/tokens", "/api/gmail/connection"]}


def api_missing(bench, tenant, path: str) -> bool:
    return any(tenant.api.get(needed).status_code == 404 for needed in NEEDS.get(path, []))


def test_csp_is_strict_and_no_page_has_inline_script(bench):
    shell = httpx.get(bench.base + "/leads", timeout=10)
    csp = shell.headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert directives["script-src"] == "'self'"
    assert "unsafe" not in directives["script-src"] and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert shell.headers["X-Content-Type-Options"] == "nosniff"
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", shell.text, re.S)
    assert scripts and all('src="/static/' in attrs and body.strip() == "" for attrs, body in scripts)
    assert not re.search(r"\son[a-z]+=", shell.text)  # no inline event handlers
    module = httpx.get(bench.base + "/static/js/main.js", timeout=10)
    assert module.status_code == 200 and module.headers["Content-Type"].startswith("text/javascript")
    assert "Content-Security-Policy" in module.headers
    vendored = httpx.get(bench.base + "/static/vendor/lit-html@3.3.3/lit-html.js", timeout=10)
    assert vendored.status_code == 200


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_every_page_shows_its_empty_states_without_console_errors(browser, bench, shots, width, tmp_path):
    fresh = bench.tenant()
    context, watched = open_page(browser, bench, fresh, shots, **({"viewport": PHONE} if width == "phone" else {}))
    try:
        p = watched.page
        for path, ready, empties in PAGES:
            if api_missing(bench, fresh, path):
                continue
            p.goto(path)
            p.locator(ready).wait_for()
            for text in empties:
                p.get_by_text(text).first.wait_for()
            assert p.evaluate("document.documentElement.scrollWidth") <= p.viewport_size["width"] + 1, path
            assert p.evaluate(UNLABELLED) == [], path
            p.screenshot(path=str(tmp_path / f"empty-{path.strip('/')}-{width}.png"), full_page=True)
    finally:
        context.close()
    assert watched.problems() == []


def test_settings_are_saved_and_read_back(page, bench, tenant):
    p = page.page
    page.allow(422)
    if api_missing(bench, tenant, "/settings"):
        page.allow(404)  # users, tokens and Gmail sections: their branches are not merged yet
    p.goto("/settings")
    form = p.locator("#business")
    form.wait_for()
    form.get_by_label("Time zone").select_option("Asia/Jerusalem")
    form.get_by_label("WhatsApp auto-reply").select_option("fixed")
    form.get_by_label("Auto-reply text").fill("Thanks! We answer within the hour.")
    form.get_by_label("Voice agent").select_option("realtime")
    form.get_by_label("Transfer calls to").fill("not a number")
    form.get_by_role("button", name="Save settings").click()
    error = p.locator("[data-error-for='business.transfer_number']")
    expect(error).not_to_be_empty()
    assert "phone" in error.inner_text()
    form.get_by_label("Transfer calls to").fill("+972 50 123 4567")
    form.get_by_label("Agent greeting").fill("Hello, Acme plumbing")
    form.get_by_role("button", name="Save settings").click()
    form.get_by_text("Saved.").wait_for()
    saved = tenant.api.get("/api/settings").json()["settings"]
    assert (saved["timezone"], saved["auto_reply_mode"]) == ("Asia/Jerusalem", "fixed")
    assert saved["voice_agent"] == "realtime"
    assert saved["auto_reply_text"] == "Thanks! We answer within the hour."
    assert (saved["transfer_number"], saved["agent_greeting"]) == ("+972501234567", "Hello, Acme plumbing")
    p.reload()
    form.wait_for()
    assert form.get_by_label("Time zone").input_value() == "Asia/Jerusalem"
    assert form.get_by_label("Auto-reply text").input_value() == "Thanks! We answer within the hour."
    assert form.get_by_label("Transfer calls to").input_value() == "+972501234567"
    page.shoot("settings")


def test_users_password_and_tokens(browser, bench, shots):
    fresh = bench.tenant()
    if api_missing(bench, fresh, "/settings"):
        pytest.skip("users, tokens and password routes (issue 17) are not merged yet")
    context, watched = open_page(browser, bench, fresh, shots)
    watched.allow(403, 422)  # the short password and the wrong current password, on purpose
    try:
        p = watched.page
        p.goto("/settings")
        users = p.locator("#add-user")
        users.get_by_label("New user's email").fill("bob@acme-plumbing.com")
        users.get_by_label("Their password").fill("short")
        users.get_by_role("button", name="Add user").click()
        expect(p.locator("[data-error-for='add-user.password']")).not_to_be_empty()
        users.get_by_label("Their password").fill("a long enough password")
        users.get_by_role("button", name="Add user").click()
        p.locator("#users-rows", has_text="bob@acme-plumbing.com").wait_for()

        rows = p.locator("#tokens-rows tr[data-token]")
        rows.first.wait_for()
        before = rows.count()  # the bench's own API token is one of them
        p.locator("#new-token").get_by_role("button", name="Create token").click()
        secret = p.locator("#new-token-value").inner_text()
        expect(rows).to_have_count(before + 1)
        assert httpx.get(bench.base + "/api/auth/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
        newest = max(int(t) for t in rows.evaluate_all("rows => rows.map(r => r.dataset.token)"))
        p.locator(f"#tokens-rows tr[data-token='{newest}']").get_by_role("button", name="Revoke").click()
        expect(rows).to_have_count(before)
        assert httpx.get(bench.base + "/api/auth/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 401

        password = p.locator("#password")
        password.get_by_label("Current password").fill("not my password")
        password.get_by_label("New password", exact=True).fill("a brand new password")
        password.get_by_label("New password again").fill("a brand new password")
        password.get_by_role("button", name="Change password").click()
        expect(p.locator("#password-error")).not_to_be_empty()
        password.get_by_label("Current password").fill("correct horse")
        password.get_by_role("button", name="Change password").click()
        p.get_by_text("Password changed").wait_for()
    finally:
        context.close()
    assert watched.problems() == []
    login = httpx.post(bench.base + "/api/auth/login", json={"email": fresh.email, "password": "a brand new password"})
    assert login.status_code == 200

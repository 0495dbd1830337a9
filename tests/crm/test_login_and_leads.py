"""Log in, create, edit, re-status and delete leads in the browser; errors appear next to their control."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.crm.conftest import PASSWORD, open_page, until

pytestmark = pytest.mark.slow  # the real appliance as child processes, and Chromium


def test_login_shows_the_error_next_to_the_form_then_lands_on_leads(browser, bench, shots):
    tenant_email = bench.tenant().email
    context, watched = open_page(browser, bench, None, shots)
    watched.allow(401)  # "who am I" before logging in, and the wrong password
    try:
        page = watched.page
        page.goto("/leads")
        page.wait_for_url("**/login?next=%2Fleads")
        page.get_by_label("Email").fill(tenant_email)
        page.get_by_label("Password").fill("wrong password")
        page.get_by_role("button", name="Log in").click()
        error = page.locator("#login-error")
        error.wait_for()
        expect(error).not_to_be_empty()
        assert "password" in error.inner_text().lower()
        watched.shoot("login")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_label("Password").press("Enter")  # keyboard only
        page.wait_for_url("**/leads")
        page.locator("#leads-rows").wait_for()
        assert tenant_email in page.locator("#who").inner_text()
    finally:
        context.close()
    assert watched.problems() == []


def test_create_edit_restatus_and_delete_a_lead(page, tenant):
    p = page.page
    page.allow(422, 404)  # the bad phone number, on purpose; the new lead has no WhatsApp conversation yet
    p.goto("/leads")
    p.get_by_role("button", name="New lead").click()
    p.locator("#new-lead-phone").fill("not a phone")
    p.locator("#new-lead-name").fill("Ada Lovelace")
    p.get_by_role("button", name="Save lead").click()
    phone_error = p.locator("[data-error-for='new-lead.phone']")
    expect(phone_error).not_to_be_empty()
    assert "phone" in phone_error.inner_text().lower()

    p.locator("#new-lead-phone").fill("+44 20 7946 0000")
    p.locator("#new-lead-email").fill("ada@lovelace.org")
    p.get_by_role("button", name="Save lead").click()
    row = p.locator("#leads-rows tr", has_text="Ada Lovelace")
    row.wait_for()
    assert "+442079460000" in row.inner_text()
    lead_id = int(row.get_attribute("data-lead"))

    # Status straight from the table.
    row.get_by_label("Status of Ada Lovelace").select_option("contacted")
    until(lambda: tenant.api.get(f"/api/leads/{lead_id}").json()["lead"]["status"] == "contacted", what="status")

    # The lead's own page: edit and save.
    row.get_by_role("link", name="Ada Lovelace").click()
    p.wait_for_url(f"**/leads/{lead_id}")
    p.locator("#edit-lead-name").fill("Ada King")
    p.locator("#edit-lead-notes").fill("Met at the Analytical Engine demo")
    p.locator("#edit-lead-status").select_option("qualified")
    p.get_by_role("button", name="Save changes").click()
    p.get_by_text("Saved.").wait_for()
    lead = tenant.api.get(f"/api/leads/{lead_id}").json()["lead"]
    assert (lead["name"], lead["status"]) == ("Ada King", "qualified")
    assert lead["notes"] == "Met at the Analytical Engine demo"
    page.shoot("lead")

    # Delete asks first; Cancel keeps it, Delete removes it.
    p.get_by_role("button", name="Delete lead").click()
    dialog = p.locator("#confirm-delete")
    dialog.wait_for()
    dialog.get_by_role("button", name="Cancel").click()
    assert tenant.api.get(f"/api/leads/{lead_id}").status_code == 200
    p.get_by_role("button", name="Delete lead").click()
    dialog.get_by_role("button", name="Delete").click()
    p.wait_for_url("**/leads")
    assert tenant.api.get(f"/api/leads/{lead_id}").status_code == 404
    p.locator("#leads-rows").wait_for()
    page.shoot("leads")

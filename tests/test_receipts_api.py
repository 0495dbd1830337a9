"""Receipts and Gmail API: OAuth round trip through the fake Google, sync start rules, reading with date
filters, corrections, stats, signed file URLs and tenant isolation. Real PostgreSQL and Redis."""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
import sys
import time
from decimal import Decimal
from functools import partial
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
import trio
from cryptography.fernet import Fernet
from itsdangerous.timed import TimestampSigner
from pydantic import SecretStr
from sqlalchemy import func, select

from appliance.files.storage import store_blob
from appliance.jobs.queue import JobQueue
from appliance.models import GmailConnection, ReceiptSyncRun
from appliance.receipts import hooks, runs, store, tokens
from appliance.services import open_services
from appliance.web.app import create_app
from tests.conftest import bearer, make_tenant
from tests.fakes.receipts_fixtures import *  # noqa: F403
from tests.fakes.receipts_fixtures import connect_mailbox
from tests.helpers import role_env

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def add_receipts(services, business_id: int, rows: list[dict]) -> list[int]:
    items = [{"gmail_message_id": f"m{business_id}-{i}", "vendor": "Acme", "subject": f"Receipt {i}",
              "amount": Decimal("10.00"), "currency": "USD", "status": "new", "source": "body", **row}
             for i, row in enumerate(rows)]
    return await services.db.run(store.insert_receipts, business_id, None, items)


async def get_json(client, path: str, token: str):
    response = await client.get(path, headers=bearer(token))
    return response.status_code, await response.get_json()


# -- OAuth -----------------------------------------------------------------------------------------------
async def test_oauth_round_trip_stores_the_refresh_token_encrypted(client, services, fake_google):
    business_id, _, token = await make_tenant(services)
    start = await client.get("/api/gmail/oauth/start", headers=bearer(token))
    assert start.status_code == 302
    consent = urlparse(start.headers["Location"])
    query = parse_qs(consent.query)
    assert start.headers["Location"].startswith(services.settings.google_auth_uri)
    assert query["access_type"] == ["offline"] and query["prompt"] == ["consent"]
    assert "https://www.googleapis.com/auth/gmail.readonly" in query["scope"][0]
    assert query["redirect_uri"] == [services.settings.google_redirect_uri]
    assert query["response_type"] == ["code"]
    # The fake Google grants consent at once and redirects back with code and state.
    async with httpx.AsyncClient() as browser:
        granted = await browser.get(start.headers["Location"], follow_redirects=False)
    assert granted.status_code == 302
    back = urlparse(granted.headers["location"])
    callback = await client.get(f"{back.path}?{back.query}")
    assert callback.status_code == 302 and callback.headers["Location"] == "/#settings"
    status, body = await get_json(client, "/api/gmail/connection", token)
    assert body == {"success": True, "connected": True, "email": fake_google.email, "status": "ok"}
    row = await services.db.run(lambda s: s.scalar(select(GmailConnection).where(
        GmailConnection.business_id == business_id)))
    refresh = tokens.decrypt(services.settings, row.encrypted_refresh_token)
    assert refresh in fake_google.refresh_tokens and refresh not in row.encrypted_refresh_token
    # The same code again: Google says invalid_grant, we say 400 naming it.
    again = await client.get(f"{back.path}?{back.query}")
    assert again.status_code == 400 and "invalid_grant" in (await again.get_json())["error"]


async def test_oauth_callback_rejects_bad_expired_or_refused(client, services, fake_google, monkeypatch):
    from appliance.receipts import oauth

    business_id, _, token = await make_tenant(services)
    forged = await client.get("/api/gmail/oauth/callback?code=x&state=forged")
    assert forged.status_code == 400 and "state is not valid" in (await forged.get_json())["error"]
    missing = await client.get("/api/gmail/oauth/callback?code=x")
    assert missing.status_code == 400 and "state is missing" in (await missing.get_json())["error"]
    real_timestamp = TimestampSigner.get_timestamp
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time()) - 601)
    old_state = oauth.make_state(services.settings, 1, business_id)
    monkeypatch.setattr(TimestampSigner, "get_timestamp", real_timestamp)
    expired = await client.get(f"/api/gmail/oauth/callback?code=x&state={old_state}")
    assert expired.status_code == 400 and "state expired" in (await expired.get_json())["error"]
    state = oauth.make_state(services.settings, 1, business_id)
    denied = await client.get(f"/api/gmail/oauth/callback?error=access_denied&state={state}")
    assert denied.status_code == 400 and "access_denied" in (await denied.get_json())["error"]
    assert (await get_json(client, "/api/gmail/connection", token))[1]["connected"] is False


async def test_missing_google_settings_name_the_variable(services, fake_google):
    bare = services.settings.model_copy(update={"google_client_id": None})
    async with open_services(bare) as svc:
        app = create_app(svc)
        async with app.test_app() as test_app:
            _, _, token = await make_tenant(svc)
            response = await test_app.test_client().get("/api/gmail/oauth/start", headers=bearer(token))
    assert response.status_code == 503
    assert "GOOGLE_CLIENT_ID is not set" in (await response.get_json())["error"]


async def test_disconnect_forgets_the_token(client, services, fake_google):
    business_id, _, token = await make_tenant(services)
    await connect_mailbox(services, fake_google, business_id)
    response = await client.delete("/api/gmail/connection", headers=bearer(token))
    assert response.status_code == 200
    assert (await get_json(client, "/api/gmail/connection", token))[1]["connected"] is False
    assert (await client.delete("/api/gmail/connection", headers=bearer(token))).status_code == 404


# -- starting a sync -------------------------------------------------------------------------------------
async def test_sync_start_412_422_202_409(client, services, fake_google):
    business_id, _, token = await make_tenant(services)
    none = await client.post("/api/receipts/sync", headers=bearer(token), json={})
    assert none.status_code == 412 and "no Gmail mailbox" in (await none.get_json())["error"]
    await connect_mailbox(services, fake_google, business_id)
    bad = await client.post("/api/receipts/sync", headers=bearer(token), json={"mode": "sometimes", "x": 1})
    assert bad.status_code == 422 and {"mode", "x"} <= set((await bad.get_json())["fields"])
    backwards = await client.post("/api/receipts/sync", headers=bearer(token),
                                  json={"from_date": "2025-02-01", "to_date": "2025-01-01"})
    assert backwards.status_code == 422 and "from_date" in (await backwards.get_json())["error"]
    started = await client.post("/api/receipts/sync", headers=bearer(token), json={"mode": "full",
                                                                                   "months_back": 2})
    assert started.status_code == 202
    body = await started.get_json()
    assert body["success"] is True and body["status"] == "queued" and body["job_id"]
    busy = await client.post("/api/receipts/sync", headers=bearer(token))
    assert busy.status_code == 409 and (await busy.get_json())["run_id"] == body["run_id"]
    status, run = await get_json(client, f"/api/receipts/sync/status/{body['run_id']}", token)
    assert status == 200 and run["run"]["status"] == "queued" and run["run"]["mode"] == "full"
    for field in ("messages_scanned", "saved_receipts", "errors_count", "progress_percentage", "started_at",
                  "finished_at", "last_heartbeat_at", "error_message", "id"):
        assert field in run["run"]
    assert (await get_json(client, "/api/receipts/sync/latest", token))[1]["run"]["id"] == body["run_id"]
    # Another tenant sees neither the run nor a latest one.
    _, _, other = await make_tenant(services)
    assert (await get_json(client, f"/api/receipts/sync/status/{body['run_id']}", other))[0] == 404
    assert (await get_json(client, "/api/receipts/sync/latest", other))[1] == {"success": True, "run": None}


async def test_two_racing_posts_start_one_run(client, services, fake_google):
    business_id, _, token = await make_tenant(services)
    await connect_mailbox(services, fake_google, business_id)
    answers = []

    async def post() -> None:
        response = await client.post("/api/receipts/sync", headers=bearer(token), json={})
        answers.append((response.status_code, await response.get_json()))

    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(post)
    codes = sorted(code for code, _ in answers)
    assert codes == [202, 409, 409, 409]
    run_id = next(body["run_id"] for code, body in answers if code == 202)
    assert all(body["run_id"] == run_id for code, body in answers if code == 409)
    count = await services.db.run(lambda s: s.scalar(select(func.count()).select_from(ReceiptSyncRun).where(
        ReceiptSyncRun.business_id == business_id)))
    assert count == 1


async def test_needs_reconnect_is_412(client, services, fake_google):
    business_id, _, token = await make_tenant(services)
    await connect_mailbox(services, fake_google, business_id)
    await services.db.run(partial(store.set_connection, business_id=business_id, status="needs_reconnect"))
    response = await client.post("/api/receipts/sync", headers=bearer(token), json={})
    assert response.status_code == 412 and "reconnect" in (await response.get_json())["error"]


async def test_a_stale_run_does_not_block_the_next_post(client, services, fake_google):
    business_id, _, token = await make_tenant(services)
    await connect_mailbox(services, fake_google, business_id)
    first = await (await client.post("/api/receipts/sync", headers=bearer(token), json={})).get_json()

    def silence(session) -> None:  # its worker died 200 s ago
        run = session.get(ReceiptSyncRun, first["run_id"])
        run.status, run.last_heartbeat_at = "running", run.last_heartbeat_at - dt.timedelta(seconds=200)

    await services.db.run(silence)
    second = await client.post("/api/receipts/sync", headers=bearer(token), json={})
    assert second.status_code == 202
    _, old = await get_json(client, f"/api/receipts/sync/status/{first['run_id']}", token)
    assert old["run"]["status"] == "failed" and "no heartbeat for 2" in old["run"]["error_message"]


async def test_redis_down_is_503_and_leaves_no_run(settings, own_redis, fake_google):
    async with open_services(settings.model_copy(update={"redis_url": own_redis.url})) as svc:
        business_id, _, token = await make_tenant(svc)
        await connect_mailbox(svc, fake_google, business_id)
        app = create_app(svc)
        async with app.test_app() as test_app:
            client = test_app.test_client()
            own_redis.stop()
            response = await client.post("/api/receipts/sync", headers=bearer(token), json={})
            assert response.status_code == 503 and "redis" in (await response.get_json())["error"]
        count = await svc.db.run(lambda s: s.scalar(select(func.count()).select_from(ReceiptSyncRun).where(
            ReceiptSyncRun.business_id == business_id)))
    assert count == 0


# -- reading ---------------------------------------------------------------------------------------------
async def test_date_filter_both_spellings_inclusive_and_400s(client, services):
    business_id, _, token = await make_tenant(services)
    await add_receipts(services, business_id, [
        {"received_at": at("2025-01-09T23:59:59")}, {"received_at": at("2025-01-10T00:00:00")},
        {"received_at": at("2025-01-15T12:00:00")}, {"received_at": at("2025-01-20T23:59:59")},
        {"received_at": at("2025-01-21T00:00:00")},
    ])
    for query in ("from_date=2025-01-10&to_date=2025-01-20", "fromDate=2025-01-10&toDate=2025-01-20"):
        status, body = await get_json(client, f"/api/receipts?{query}", token)
        assert status == 200 and body["total"] == 3, query
        assert [r["received_at"][:10] for r in body["items"]] == ["2025-01-20", "2025-01-15", "2025-01-10"]
    one_day = (await get_json(client, "/api/receipts?from_date=2025-01-15&to_date=2025-01-15", token))[1]
    assert one_day["total"] == 1
    for query, name in (("from_date=2025-13-01", "from_date"), ("toDate=yesterday", "toDate"),
                        ("fromDate=2025-02-01&toDate=2025-01-01", "from_date")):
        status, body = await get_json(client, f"/api/receipts?{query}", token)
        assert status == 400 and name in body["error"] and "YYYY-MM-DD" in body["error"], query
    assert (await get_json(client, "/api/receipts?status=maybe", token))[0] == 400
    assert (await get_json(client, "/api/receipts?per_page=201", token))[0] == 400


async def test_list_search_paging_detail_patch_and_stats(client, services):
    business_id, _, token = await make_tenant(services)
    ids = await add_receipts(services, business_id, [
        {"received_at": at("2025-01-05T10:00:00"), "vendor": "Shufersal", "currency": "ILS",
         "amount": Decimal("117.00")},
        {"received_at": at("2025-01-06T10:00:00"), "vendor": "Acme", "amount": Decimal("10.50")},
        {"received_at": at("2025-02-06T10:00:00"), "vendor": "Acme", "amount": Decimal("1234.50"),
         "subject": "Invoice 77"},
    ])
    page = (await get_json(client, "/api/receipts?per_page=2&page=2", token))[1]
    assert page["total"] == 3 and len(page["items"]) == 1 and page["items"][0]["id"] == ids[0]
    found = (await get_json(client, "/api/receipts?q=invoice 77", token))[1]
    assert [r["id"] for r in found["items"]] == [ids[2]] and found["items"][0]["amount"] == "1234.50"
    assert (await get_json(client, "/api/receipts?q=shufer", token))[1]["total"] == 1
    status, detail = await get_json(client, f"/api/receipts/{ids[2]}", token)
    assert status == 200 and detail["receipt"]["attachments"] == [] and detail["receipt"]["status"] == "new"
    patched = await client.patch(f"/api/receipts/{ids[1]}", headers=bearer(token),
                                 json={"status": "approved", "vendor": "Acme Ltd", "amount": "11.50",
                                       "currency": "eur"})
    assert patched.status_code == 200
    receipt = (await patched.get_json())["receipt"]
    assert (receipt["status"], receipt["vendor"], receipt["amount"], receipt["currency"]) == (
        "approved", "Acme Ltd", "11.50", "EUR")
    again = await client.patch(f"/api/receipts/{ids[1]}", headers=bearer(token), json={"status": "new"})
    assert (await again.get_json())["receipt"]["status"] == "new"
    bad = await client.patch(f"/api/receipts/{ids[1]}", headers=bearer(token),
                             json={"status": "paid", "currency": "XXY"})
    assert bad.status_code == 422 and {"status", "currency"} <= set((await bad.get_json())["fields"])
    await client.patch(f"/api/receipts/{ids[0]}", headers=bearer(token), json={"status": "rejected"})
    stats = (await get_json(client, "/api/receipts/stats", token))[1]
    assert stats["success"] is True
    assert stats["by_status"] == {"new": 2, "approved": 0, "rejected": 1}
    assert stats["totals"] == [{"currency": "EUR", "amount": "11.50", "count": 1},
                               {"currency": "ILS", "amount": "117.00", "count": 1},
                               {"currency": "USD", "amount": "1234.50", "count": 1}]
    assert stats["by_month"] == [
        {"month": "2025-01", "currency": "EUR", "amount": "11.50", "count": 1},
        {"month": "2025-01", "currency": "ILS", "amount": "117.00", "count": 1},
        {"month": "2025-02", "currency": "USD", "amount": "1234.50", "count": 1}]
    january = (await get_json(client, "/api/receipts/stats?fromDate=2025-01-01&toDate=2025-01-31", token))[1]
    assert sum(t["count"] for t in january["totals"]) == 2


async def test_receipts_and_files_are_tenant_isolated(client, services, monkeypatch):
    business_id, _, token = await make_tenant(services)
    other_id, _, other = await make_tenant(services)
    relpath, digest = store_blob(services.settings.data_dir, business_id, "attachments", b"%PDF-1.4 test",
                                 ".pdf")
    [receipt_id] = await add_receipts(services, business_id, [{
        "received_at": at("2025-03-01T10:00:00"),
        "attachments": [{"filename": "invoice.pdf", "mime_type": "application/pdf", "size_bytes": 13,
                         "storage_path": relpath, "sha256": digest}]}])
    await add_receipts(services, other_id, [{"received_at": at("2025-03-01T10:00:00")}])
    detail = (await get_json(client, f"/api/receipts/{receipt_id}", token))[1]["receipt"]
    [attachment] = detail["attachments"]
    assert attachment["filename"] == "invoice.pdf" and attachment["content_type"] == "application/pdf"
    own = await client.get(attachment["url"], headers=bearer(token))
    assert own.status_code == 200 and await own.get_data() == b"%PDF-1.4 test"
    assert own.headers["Content-Type"] == "application/pdf"
    # Another tenant: neither the receipt nor the file, even with the URL in hand.
    assert (await get_json(client, f"/api/receipts/{receipt_id}", other))[0] == 404
    response = await client.patch(f"/api/receipts/{receipt_id}", headers=bearer(other),
                                  json={"status": "approved"})
    assert response.status_code == 404
    assert (await get_json(client, "/api/receipts", other))[1]["total"] == 1
    stolen = await client.get(attachment["url"], headers=bearer(other))
    assert stolen.status_code == 403 and "another account" in (await stolen.get_json())["error"]
    forged = await client.get(attachment["url"][:-3] + "abc", headers=bearer(token))
    assert forged.status_code == 403
    from appliance.files import file_url

    real_timestamp = TimestampSigner.get_timestamp
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time()) - 901)
    old = file_url(services.settings, business_id, relpath)
    monkeypatch.setattr(TimestampSigner, "get_timestamp", real_timestamp)
    expired = await client.get(old, headers=bearer(token))
    assert expired.status_code == 403 and "expired" in (await expired.get_json())["error"]
    # A signed path outside the business's folder is refused as well.
    escape = file_url(services.settings, business_id, f"{other_id}/attachments/x.pdf")
    assert (await client.get(escape, headers=bearer(token))).status_code == 404
    assert (await client.get(attachment["url"])).status_code == 401


async def test_keys_rotate_re_encrypts_with_the_first_key(services, fake_google):
    business_id, _, _ = await make_tenant(services)
    refresh = await connect_mailbox(services, fake_google, business_id)
    old_key = services.settings.encryption_key.get_secret_value()
    new_key = Fernet.generate_key().decode()
    rotated = services.settings.model_copy(update={"encryption_key": SecretStr(f"{new_key},{old_key}")})
    before = await services.db.run(lambda s: s.scalar(select(GmailConnection.encrypted_refresh_token).where(
        GmailConnection.business_id == business_id)))
    assert tokens.decrypt(rotated, before) == refresh  # the old key still decrypts
    rewritten, unreadable = await services.db.run(tokens.rotate_all, rotated)
    assert rewritten >= 1 and business_id not in unreadable
    after = await services.db.run(lambda s: s.scalar(select(GmailConnection.encrypted_refresh_token).where(
        GmailConnection.business_id == business_id)))
    only_new = services.settings.model_copy(update={"encryption_key": SecretStr(new_key)})
    assert after != before and tokens.decrypt(only_new, after) == refresh
    with pytest.raises(Exception, match="cannot be decrypted"):
        tokens.decrypt(services.settings, after)


def appliance_cli(settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = role_env(settings, ENCRYPTION_KEY=settings.encryption_key.get_secret_value())
    return subprocess.run([sys.executable, "-m", "appliance", *args], env=env, capture_output=True, text=True,
                          timeout=60)


async def test_operator_commands_sync_status_and_keys_rotate(services, fake_google):
    business_id, _, _ = await make_tenant(services)
    settings = services.settings
    refused = await trio.to_thread.run_sync(appliance_cli, settings, "receipts", "sync", "--business",
                                            str(business_id))
    assert refused.returncode == 1 and "no Gmail mailbox" in refused.stderr
    await connect_mailbox(services, fake_google, business_id)
    started = await trio.to_thread.run_sync(appliance_cli, settings, "receipts", "sync", "--business",
                                            str(business_id), "--mode", "full")
    assert started.returncode == 0 and started.stdout.startswith("run "), started.stderr
    run_id = int(started.stdout.split()[1])
    assert (await services.db.run(runs.get_run, business_id, run_id))["mode"] == "full"
    status = await trio.to_thread.run_sync(appliance_cli, settings, "receipts", "status")
    line = next(row for row in status.stdout.splitlines() if row.split()[0] == str(business_id))
    assert fake_google.email in line and str(run_id) in line and "queued" in line
    rotated = await trio.to_thread.run_sync(appliance_cli, settings, "keys", "rotate")
    assert "re-encrypted" in rotated.stdout


async def test_days_and_months_are_the_business_timezone(client, services):
    business_id, _, token = await make_tenant(services)
    response = await client.patch("/api/settings", headers=bearer(token), json={"timezone": "Asia/Jerusalem"})
    assert response.status_code == 200
    await add_receipts(services, business_id, [
        {"received_at": at("2025-01-31T21:59:59+00:00")},  # 23:59:59 on 31 January in Jerusalem
        {"received_at": at("2025-01-31T22:00:00+00:00")},  # midnight starting 1 February there
    ])
    january = (await get_json(client, "/api/receipts?from_date=2025-01-31&to_date=2025-01-31", token))[1]
    assert [r["received_at"] for r in january["items"]] == ["2025-01-31T21:59:59+00:00"]
    february = (await get_json(client, "/api/receipts?fromDate=2025-02-01&toDate=2025-02-01", token))[1]
    assert [r["received_at"] for r in february["items"]] == ["2025-01-31T22:00:00+00:00"]
    stats = (await get_json(client, "/api/receipts/stats", token))[1]
    assert [(m["month"], m["count"]) for m in stats["by_month"]] == [("2025-01", 1), ("2025-02", 1)]


def test_the_api_role_does_not_import_google_or_the_sync_code():
    code = ("import sys; import appliance.web.app; "
            "print(sorted(m for m in sys.modules if m.startswith(('googleapiclient', 'google.auth', "
            "'appliance.receipts.sync', 'appliance.receipts.gmail', 'appliance.receipts.jobs', 'extruct'))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


async def test_new_receipts_enqueue_their_previews_by_name(services):
    business_id, _, _ = await make_tenant(services)
    relpath, digest = store_blob(services.settings.data_dir, business_id, "attachments", b"%PDF-1.4 x", ".pdf")
    ids = await add_receipts(services, business_id, [
        {"received_at": at("2025-03-01T10:00:00"), "body_html": "<p>Total $10.00</p>",
         "attachments": [{"filename": "a.pdf", "mime_type": "application/pdf", "size_bytes": 10,
                          "storage_path": relpath, "sha256": digest}]},
        {"received_at": at("2025-03-02T10:00:00"), "body_html": "<p>Total $12.00</p>", "attachments": []}])
    on = dataclasses.replace(services, settings=services.settings.model_copy(update={"receipts_previews": True}))
    assert await hooks.receipts_saved(on, business_id, ids) == 3  # two emails, one PDF
    stats = await JobQueue(services.redis, services.keys).stats()
    assert stats["queues"]["low"]["queued"] == 3
    assert await hooks.receipts_saved(services, business_id, ids) == 0  # RECEIPTS_PREVIEWS=false

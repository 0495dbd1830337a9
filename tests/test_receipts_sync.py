"""Gmail sync against a local Google (real google-api-python-client), real PostgreSQL, Redis and worker."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import signal
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import trio
from sqlalchemy import select

from appliance.jobs.queue import JobQueue
from appliance.jobs.worker import Worker
from appliance.models import GmailConnection, Receipt, ReceiptAttachment
from appliance.receipts import quota, runs
from appliance.receipts.plan import SyncRequest, plan_params
from tests.conftest import make_tenant
from tests.fakes.google import settings_for
from tests.fakes.mailbox import make_mail
from tests.fakes.receipts_fixtures import *  # noqa: F403
from tests.fakes.receipts_fixtures import connect_mailbox, receipt_count, run_row, wait_for_run
from tests.helpers import role_env, start_role, wait_until

UTC = dt.timezone.utc


async def start_run(services, business_id: int, **wanted) -> int:
    """What POST /api/receipts/sync does, without HTTP: a run row and its job."""
    request = SyncRequest.model_validate(wanted)
    params = plan_params(request, ZoneInfo("UTC"), dt.datetime.now(UTC).date())
    run_id = await services.db.run(runs.create_run, business_id, request.mode, params)
    job_id = await JobQueue(services.redis, services.keys).enqueue(
        "receipts.sync", {"business_id": business_id, "run_id": run_id, "slice": 0})
    await services.db.run(runs.set_job, run_id, job_id)
    return run_id


async def saved(services, business_id: int) -> dict[str, Receipt]:
    rows = await services.db.run(lambda s: list(s.scalars(
        select(Receipt).where(Receipt.business_id == business_id))))
    return {r.gmail_message_id: r for r in rows}


@pytest.fixture
async def worker(services, nursery):
    stop = trio.Event()
    worker = Worker(services, concurrency=4, lease=30, grace=5)
    await nursery.start(worker.run, stop)
    yield worker
    stop.set()


async def test_full_sync_finds_the_receipts_exactly(services, fake_google, mailbox, worker, monkeypatch):
    fake_google.flaky_every = 23  # an occasional 429 inside batches, retried after a Trio-sleep backoff
    monkeypatch.setattr(quota, "BACKOFF_FIRST", 0.02)
    business_id, _, _ = await make_tenant(services)
    await connect_mailbox(services, fake_google, business_id)
    run_id = await start_run(services, business_id, mode="full")
    run = await wait_for_run(services, run_id)
    assert run.status == "completed", run.error_message
    found = await saved(services, business_id)
    truth = {m.id: m.truth for m in mailbox}
    receipts = {i for i, t in truth.items() if t.is_receipt}
    true_positives = receipts & set(found)
    precision = len(true_positives) / len(found)
    recall = len(true_positives) / len(receipts)
    print(f"\nfixture: {len(mailbox)} messages, {len(receipts)} receipts; found {len(found)}; "
          f"precision {precision:.3f} recall {recall:.3f}; 429s retried: {fake_google.counts['flaky_429']}")
    assert precision >= 0.95 and recall >= 0.95
    exact = [i for i in true_positives
             if (found[i].amount, found[i].currency) == (truth[i].amount, truth[i].currency)]
    assert len(exact) == len(true_positives)  # every amount and currency exactly right
    assert {found[i].vendor for i in true_positives if truth[i].kind == "html_he"} <= {
        t.vendor for t in truth.values()}
    assert fake_google.counts["flaky_429"] > 0 and fake_google.counts["batch"] >= len(mailbox) // 50
    assert run.messages_scanned == len(mailbox) and run.saved_receipts == len(found)
    assert run.errors_count == 0 and float(run.progress_percentage) == 100.0 and run.finished_at is not None
    # PDF invoices keep their PDF, stored by content hash under DATA_DIR/<business>/.
    pdf_ids = [i for i in true_positives if truth[i].kind in ("pdf", "pdf_quiet")]
    attachments = await services.db.run(lambda s: list(s.scalars(select(ReceiptAttachment).where(
        ReceiptAttachment.business_id == business_id))))
    assert len(attachments) == len(pdf_ids) and all(a.storage_path.startswith(f"{business_id}/")
                                                      for a in attachments)
    assert all((services.settings.data_dir / a.storage_path).read_bytes().startswith(b"%PDF")
               for a in attachments)
    # The mailbox's history id is kept for the next incremental sync.
    connection = await services.db.run(lambda s: s.scalar(select(GmailConnection).where(
        GmailConnection.business_id == business_id)))
    assert connection.history_id == str(fake_google.history_id)


async def test_incremental_sync_adds_only_new_mail_and_rescans_when_history_expired(
        services, fake_google, mailbox, worker):
    business_id, _, _ = await make_tenant(services)
    await connect_mailbox(services, fake_google, business_id)
    # No history id yet: the first incremental sync is a (here capped) scan, and records the history id.
    first = await wait_for_run(services, await start_run(services, business_id, max_messages=20))
    assert first.status == "completed" and first.messages_scanned == 20
    before = await receipt_count(services, business_id)
    gets_before = fake_google.counts["get"]
    now = dt.datetime.now(UTC)
    rng = random.Random(5)
    fake_google.add(make_mail(900_001, now - dt.timedelta(minutes=5), rng, kind="html_en"))
    fake_google.add(make_mail(900_002, now - dt.timedelta(minutes=4), rng, kind="newsletter"))
    second = await wait_for_run(services, await start_run(services, business_id))
    assert second.status == "completed" and second.mode == "incremental"
    assert second.messages_scanned == 2 and second.saved_receipts == 1
    assert fake_google.counts["get"] - gets_before == 2  # read only the two new messages
    assert fake_google.counts["history"] >= 1
    assert await receipt_count(services, business_id) == before + 1
    # History expired (404): a bounded full scan since the last good sync, and no duplicates.
    fake_google.expire_history()
    fake_google.add(make_mail(900_003, now - dt.timedelta(minutes=1), rng, kind="html_he"))
    third = await wait_for_run(services, await start_run(services, business_id))
    assert third.status == "completed", third.error_message
    assert third.checkpoint["history_expired"] is True
    assert third.saved_receipts == 1 and await receipt_count(services, business_id) == before + 2
    assert 3 <= third.messages_scanned < 20  # bounded: since a day before the last good sync


async def test_rerunning_a_full_sync_duplicates_nothing(services, fake_google, mailbox, worker):
    business_id, _, _ = await make_tenant(services)
    await connect_mailbox(services, fake_google, business_id)
    first = await wait_for_run(services, await start_run(services, business_id, mode="full", max_messages=80))
    again = await wait_for_run(services, await start_run(services, business_id, mode="full", max_messages=80))
    assert first.saved_receipts > 0
    assert again.status == "completed" and again.messages_scanned == first.messages_scanned
    assert again.saved_receipts == 0 and await receipt_count(services, business_id) == first.saved_receipts


async def test_dates_and_max_messages_bound_a_full_sync(services, fake_google, mailbox, worker):
    business_id, _, _ = await make_tenant(services)
    await connect_mailbox(services, fake_google, business_id)
    newest = max(m.internal_ms for m in mailbox)
    last_day = dt.datetime.fromtimestamp(newest / 1000, UTC).date()
    first_day = last_day - dt.timedelta(days=30)
    run = await wait_for_run(services, await start_run(
        services, business_id, mode="full", from_date=first_day.isoformat(), to_date=last_day.isoformat()))
    assert run.status == "completed"
    found = await saved(services, business_id)
    lo = dt.datetime.combine(first_day, dt.time(), UTC)
    hi = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(), UTC)
    expected = {m.id for m in mailbox if m.truth.is_receipt
                and lo <= dt.datetime.fromtimestamp(m.internal_ms / 1000, UTC) < hi}
    assert set(found) == expected and expected  # exactly the days asked for, though Gmail was asked wider
    capped_id = await start_run(services, business_id, mode="full", max_messages=60)
    capped = await wait_for_run(services, capped_id)
    assert capped.status == "completed" and capped.messages_scanned == 60


async def test_a_long_sync_continues_in_follow_up_jobs_of_the_same_run(services, fake_google, nursery):
    services = dataclasses.replace(services, settings=services.settings.model_copy(
        update={"receipts_sync_slice": 0.0}))
    stop = trio.Event()
    await nursery.start(Worker(services, concurrency=2, lease=30, grace=5).run, stop)
    business_id, _, _ = await make_tenant(services)
    await connect_mailbox(services, fake_google, business_id)
    run_id = await start_run(services, business_id, mode="full", max_messages=250)
    run = await wait_for_run(services, run_id)
    stop.set()
    assert run.status == "completed" and run.messages_scanned == 250
    assert run.checkpoint["slice"] == 2  # pages of 100, 100 and 50: one slice each
    queue = JobQueue(services.redis, services.keys)
    record = await queue.get(run.job_id)
    assert record["args"]["run_id"] == run_id and record["status"] == "finished"


async def test_invalid_grant_fails_the_run_and_asks_for_reconnect(services, fake_google, worker):
    business_id, _, _ = await make_tenant(services)
    await connect_mailbox(services, fake_google, business_id)
    fake_google.revoke_all()
    run = await wait_for_run(services, await start_run(services, business_id))
    assert run.status == "failed" and "invalid_grant" in run.error_message
    assert "reconnect" in run.error_message
    connection = await services.db.run(lambda s: s.scalar(select(GmailConnection).where(
        GmailConnection.business_id == business_id)))
    assert connection.status == "needs_reconnect"


async def test_stale_runs_fail_with_a_message_that_says_why(services):
    business_id, _, _ = await make_tenant(services)
    params = {"window": {"query": "", "start_ms": None, "end_ms": None}}
    run_id = await services.db.run(runs.create_run, business_id, "full", params)
    now = runs.now()
    assert await services.db.run(runs.fail_stale, business_id, now + dt.timedelta(seconds=170)) == []
    assert await services.db.run(runs.fail_stale, business_id, now + dt.timedelta(seconds=181)) == [run_id]
    run = await services.db.run(runs.get_run, business_id, run_id)
    assert run["status"] == "failed" and "no heartbeat for 18" in run["error_message"]
    # Heartbeats but no progress for 30 minutes: failed too.
    second = await services.db.run(runs.create_run, business_id, "full", params)

    def beating_but_stuck(session) -> None:
        row = runs.lock_run(session, second)
        row.status, row.started_at = "running", now - dt.timedelta(minutes=31)
        row.last_progress_at = now - dt.timedelta(minutes=31)

    await services.db.run(beating_but_stuck)
    assert await services.db.run(runs.fail_stale, business_id, now + dt.timedelta(seconds=5)) == [second]
    run = await services.db.run(runs.get_run, business_id, second)
    assert "no progress for 30 minutes" in run["error_message"]


async def test_amounts_are_decimal_strings(services, fake_google, worker):
    business_id, _, _ = await make_tenant(services)
    await connect_mailbox(services, fake_google, business_id)
    await wait_for_run(services, await start_run(services, business_id, max_messages=40))
    rows = await saved(services, business_id)
    assert rows and all(isinstance(r.amount, Decimal) and r.amount == r.amount.quantize(Decimal("0.01"))
                        for r in rows.values())


@pytest.mark.slow
async def test_sigkilled_worker_mid_sync_resumes_the_same_run_without_duplicates(
        settings, services, fake_google, mailbox):
    fake_google.delay = 0.04  # slow enough to kill the worker between two saved pages
    business_id, _, _ = await make_tenant(services)
    await connect_mailbox(services, fake_google, business_id)
    env = role_env(settings, JOB_LEASE=2, **settings_for(fake_google), RECEIPTS_PREVIEWS="false",
                   ENCRYPTION_KEY=settings.encryption_key.get_secret_value())
    victim = start_role(["worker"], env)
    try:
        run_id = await start_run(services, business_id, mode="full")

        async def one_page_saved() -> bool:
            return (await run_row(services, run_id)).messages_scanned >= 100

        await wait_until(one_page_saved, timeout=60)
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        killed_at = await run_row(services, run_id)
        assert killed_at.status == "running" and killed_at.messages_scanned < len(mailbox)
        rescuer = start_role(["worker"], env)
        try:
            run = await wait_for_run(services, run_id, within=90)
        finally:
            rescuer.terminate()
            rescuer.wait(15)
    finally:
        victim.kill()
    assert run.status == "completed", run.error_message
    expected = sum(1 for m in mailbox if m.truth.is_receipt)
    assert await receipt_count(services, business_id) == expected == run.saved_receipts
    assert run.messages_scanned == len(mailbox)  # the page in flight was redone, and counted once
    record = await JobQueue(services.redis, services.keys).get(run.job_id)
    assert record["attempts"] == 2  # the same job ran again once its lease ran out

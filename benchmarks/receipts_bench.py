"""Receipts: Gmail sync throughput under Gmail's per-user quota, and the stats query on 100,000 receipts.

Sync: a 2,000-message mailbox on the local fake Google (a separate process) with 30 ms added to every
HTTP request and Gmail's per-user quota enforced (250 units a second: 50 message reads). Ours is the
``receipts.sync`` job's code path (list pages, batches of 25 paced by the quota budget, extraction, saving
page by page in PostgreSQL, up to three pages in flight); the original's approach is one ``messages.get``
after another with the same client library and the same extraction. Both in one run, same server.

Stats: ``GET /api/receipts/stats``'s query (one hash aggregation at the finest grain, months by
``width_bucket``) on 100,000 receipts of one business, against GROUPING SETS with a per-row
``to_char(timezone(...))`` (our first version), three separate GROUP BY queries, and loading the rows and
totalling in Python.

    .venv/bin/python benchmarks/receipts_bench.py [--messages 2000] [--delay 0.03] [--receipts 100000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import httpx
import psycopg
import trio
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import func, insert, select, text, tuple_
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from appliance import migrate  # noqa: E402
from appliance.accounts import store as accounts  # noqa: E402
from appliance.jobs.registry import JobContext  # noqa: E402
from appliance.models import Receipt  # noqa: E402
from appliance.receipts import extract, jobs, runs, store, tokens  # noqa: E402
from appliance.receipts.message import decode_data, parse  # noqa: E402
from appliance.receipts.plan import SyncRequest, plan_params  # noqa: E402
from appliance.receipts.store import ReceiptFilter  # noqa: E402
from appliance.services import open_services  # noqa: E402
from appliance.settings import Settings  # noqa: E402
from tests.fakes.google import CLIENT_ID, CLIENT_SECRET  # noqa: E402

QUOTA_UNITS = 250.0
READ_COST = 5


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def counts(fake_url: str) -> dict[str, int]:
    return httpx.get(fake_url + "_counts").json()


def start_fake(messages: int, delay: float, refresh_token: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.google", "--messages", str(messages), "--delay",
                             str(delay), "--quota", str(QUOTA_UNITS), "--refresh-token", refresh_token],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


async def ours(settings: Settings, messages: int, refresh: str) -> dict[str, float]:
    async with open_services(settings) as svc:
        def setup(session) -> tuple[int, int]:
            user = accounts.create_user(session, f"bench-{uuid.uuid4().hex[:6]}", f"{uuid.uuid4().hex[:8]}@b.test",
                                        None)
            store.save_connection(session, user.business_id, "bench@example.test",
                                  tokens.encrypt(settings, refresh), None)
            params = plan_params(SyncRequest(mode="full"), store.business_zone(session, user.business_id),
                                 dt.date.today())
            return user.business_id, runs.create_run(session, user.business_id, "full", params)

        business_id, run_id = await svc.db.run(setup)
        started = time.perf_counter()
        result = await jobs.sync_job(JobContext("bench", 1, svc), business_id, run_id)
        seconds = time.perf_counter() - started
        run = await svc.db.run(runs.get_run, business_id, run_id)
        assert run["status"] == "completed" and run["messages_scanned"] == messages, (result, run)
        return {"seconds": seconds, "messages": messages, "saved": run["saved_receipts"],
                "errors": run["errors_count"]}


def naive(settings: Settings, messages: int, refresh: str) -> dict[str, float]:
    """One messages.get after another (the original's loop), same client library and extraction."""
    import google_auth_httplib2
    import httplib2
    from google.oauth2.credentials import Credentials
    from googleapiclient.discovery import build

    credentials = Credentials(None, refresh_token=refresh, token_uri=settings.google_token_uri,
                              client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    http = google_auth_httplib2.AuthorizedHttp(credentials, http=httplib2.Http())
    gmail = build("gmail", "v1", http=http, static_discovery=True, cache_discovery=False,
                  client_options={"api_endpoint": settings.gmail_api_url}).users().messages()
    started = time.perf_counter()
    ids, token = [], None
    while True:
        page = gmail.list(userId="me", pageToken=token, maxResults=100).execute()
        ids += [m["id"] for m in page.get("messages", [])]
        token = page.get("nextPageToken")
        if not token:
            break
    found = 0
    for message_id in ids:
        message = parse(gmail.get(userId="me", id=message_id, format="full").execute())
        receipt = extract.from_body(message)
        for attachment in message.attachments if receipt is None else []:
            if attachment.is_pdf:
                data = gmail.attachments().get(userId="me", messageId=message_id, id=attachment.attachment_id).execute()
                receipt = extract.from_pdf(message, decode_data(data["data"]))
        found += receipt is not None
    seconds = time.perf_counter() - started
    assert len(ids) == messages
    return {"seconds": seconds, "messages": len(ids), "saved": found, "errors": 0}


# -- stats -----------------------------------------------------------------------------------------------
async def stats_bench(settings: Settings, count: int, repeats: int = 7) -> dict[str, float]:
    async with open_services(settings) as svc:
        def seed(session) -> int:
            user = accounts.create_user(session, f"stats-{uuid.uuid4().hex[:6]}", f"{uuid.uuid4().hex[:8]}@b.test",
                                        None)
            rng = random.Random(3)
            start = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
            rows = [{"business_id": user.business_id, "gmail_message_id": f"s{i}", "vendor": f"Vendor {i % 300}",
                     "subject": f"Receipt {i}", "amount": Decimal(rng.randint(100, 500_000)) / 100,
                     "currency": rng.choice(["ILS", "ILS", "USD", "EUR"]),
                     "received_at": start + dt.timedelta(minutes=rng.randint(0, 3 * 525_600)),
                     "status": rng.choice(["new", "new", "approved", "rejected"])} for i in range(count)]
            for i in range(0, len(rows), 10_000):
                session.execute(insert(Receipt), rows[i:i + 10_000])
            return user.business_id

        business_id = await svc.db.run(seed)
        await svc.db.run(lambda s: s.execute(text("ANALYZE receipts")))
        zone = await svc.db.run(store.business_zone, business_id)
        where = ReceiptFilter(business_id)

        month = func.to_char(func.timezone(zone.key, Receipt.received_at), "YYYY-MM")

        def grouping_sets(session) -> None:
            session.execute(where.apply(select(Receipt.status, Receipt.currency, month, func.count(),
                                               func.sum(Receipt.amount)))
                            .group_by(func.grouping_sets(tuple_(Receipt.status), tuple_(Receipt.currency),
                                                         tuple_(month, Receipt.currency)))).all()

        def separate(session) -> None:
            for columns in ((Receipt.status,), (Receipt.currency,), (month, Receipt.currency)):
                session.execute(where.apply(select(*columns, func.count(), func.sum(Receipt.amount)))
                                .group_by(*columns)).all()

        def in_python(session) -> None:
            totals: dict[tuple[str, str], Decimal] = {}
            for _status, currency, amount, when in session.execute(where.apply(select(
                    Receipt.status, Receipt.currency, Receipt.amount, Receipt.received_at))):
                key = (currency, when.strftime("%Y-%m"))
                totals[key] = totals.get(key, Decimal(0)) + amount

        timings: dict[str, float] = {}
        for name, fn, args in (("ours", store.receipt_stats, (zone, where)),
                               ("GROUPING SETS", grouping_sets, ()), ("three GROUP BYs", separate, ()),
                               ("rows into Python", in_python, ())):
            samples = []
            for _ in range(repeats):
                started = time.perf_counter()
                await svc.db.run(fn, *args)
                samples.append(time.perf_counter() - started)
            timings[name] = statistics.median(samples) * 1000
        return timings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--delay", type=float, default=0.03)
    parser.add_argument("--receipts", type=int, default=100_000)
    args = parser.parse_args()
    admin = Settings(_env_file=None).database_url
    name = f"appliance_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(libpq(admin), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    refresh = "1//bench-" + uuid.uuid4().hex
    fake, fake_url = start_fake(args.messages, args.delay, refresh)
    try:
        migrate.upgrade(url)
        settings = Settings(
            _env_file=None, database_url=url, redis_prefix=f"appliance:bench{uuid.uuid4().hex[:6]}:",
            data_dir=Path(f"/tmp/{name}"), google_client_id=CLIENT_ID, google_client_secret=SecretStr(CLIENT_SECRET),
            google_token_uri=fake_url + "token", gmail_api_url=fake_url, receipts_sync_slice=3600,
            encryption_key=SecretStr(Fernet.generate_key().decode()))
        theirs = naive(settings, args.messages, refresh)
        time.sleep(1.5)  # let the quota bucket refill between the two
        before = counts(fake_url)
        mine = trio.run(ours, settings, args.messages, refresh)
        after = counts(fake_url)
        mine["quota_429"] = after.get("quota_429", 0) - before.get("quota_429", 0)
        stats = trio.run(stats_bench, settings, args.receipts)
    finally:
        fake.terminate()
        fake.wait(10)
        with psycopg.connect(libpq(admin), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    ceiling = QUOTA_UNITS / READ_COST
    print(f"Gmail full sync, {args.messages} messages, {args.delay * 1000:.0f} ms per request, quota "
          f"{QUOTA_UNITS:.0f} units/s (ceiling {ceiling:.0f} message reads/s):")
    print(f"{'approach':38} {'seconds':>8} {'msgs/s':>8} {'of ceiling':>10} {'receipts':>9}")
    for label, r in (("ours (batches of 25, quota budget)", mine), ("one messages.get after another", theirs)):
        rate = r["messages"] / r["seconds"]
        print(f"{label:38} {r['seconds']:8.1f} {rate:8.1f} {rate / ceiling:10.0%} {r['saved']:9d}")
    print(f"ratio ours / one-after-another: {theirs['seconds'] / mine['seconds']:.2f}x; "
          f"429s answered to ours: {mine['quota_429']}\n")
    print(f"stats over {args.receipts:,} receipts of one business (median of 7):")
    for label, ms in stats.items():
        print(f"  {label:20} {ms:8.1f} ms")
    print("  ratios to ours: " + ", ".join(f"{label} {ms / stats['ours']:.2f}x" for label, ms in stats.items()
                                            if label != "ours"))


if __name__ == "__main__":
    main()

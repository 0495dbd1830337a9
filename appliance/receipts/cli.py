"""Operator commands: ``appliance receipts sync --business ID [--mode full]``, ``appliance receipts status``,
``appliance keys rotate`` and ``appliance keys generate``."""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any, Literal

from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.orm import Session

from appliance.jobs.queue import JobQueue
from appliance.models import Business, GmailConnection
from appliance.receipts import runs, tokens
from appliance.receipts.plan import SyncRequest
from appliance.receipts.start import NotConnectedError, SyncBusyError, start_sync
from appliance.services import open_services
from appliance.settings import Settings


async def sync_command(settings: Settings, business_id: int, mode: Literal["incremental", "full"]) -> int:
    async with open_services(settings) as svc:
        try:
            queue = JobQueue(svc.redis, svc.keys)
            started = await start_sync(svc, queue, business_id, SyncRequest(mode=mode))
        except NotConnectedError as exc:
            print(f"error: business {business_id}: {exc}", file=sys.stderr)
            return 1
        except SyncBusyError as exc:
            print(f"error: business {business_id}: {exc} (run {exc.run_id})", file=sys.stderr)
            return 1
    print(f"run {started.run_id} queued as job {started.job_id}")
    return 0


def _status_rows(session: Session) -> list[dict[str, Any]]:
    rows = []
    for business, connection in session.execute(select(Business, GmailConnection).outerjoin(
            GmailConnection, GmailConnection.business_id == Business.id).order_by(Business.id)):
        latest = runs.latest_run(session, business.id)
        if connection is None and latest is None:
            continue
        mailbox = f"{connection.email} ({connection.status})" if connection else "-"
        rows.append({"business": business.id, "name": business.name, "mailbox": mailbox, "run": latest})
    return rows


async def status_command(settings: Settings) -> int:
    async with open_services(settings) as svc:
        rows = await svc.db.run(_status_rows)
    now = dt.datetime.now(dt.UTC)
    print(f"{'business':>8}  {'mailbox':36} {'run':>6} {'status':10} {'progress':>8} {'scanned':>8} "
          f"{'saved':>6} {'errors':>6}  heartbeat")
    for row in rows:
        run = row["run"] or {}
        beat = run.get("last_heartbeat_at")
        age = f"{(now - dt.datetime.fromisoformat(beat)).total_seconds():.0f} s ago" if beat else "-"
        print(f"{row['business']:>8}  {row['mailbox']!s:36} {run.get('id', '-')!s:>6} "
              f"{run.get('status', '-')!s:10} {run.get('progress_percentage', 0):7.1f}% "
              f"{run.get('messages_scanned', 0):>8} "
              f"{run.get('saved_receipts', 0):>6} {run.get('errors_count', 0):>6}  {age}")
        if run.get("error_message"):
            print(f"{'':10}{run['error_message']}")
    return 0


async def rotate_command(settings: Settings) -> int:
    async with open_services(settings) as svc:
        rewritten, unreadable = await svc.db.run(tokens.rotate_all, settings)
    print(f"re-encrypted {rewritten} refresh tokens with the first ENCRYPTION_KEY key")
    if unreadable:
        print(f"warning: businesses {unreadable} hold tokens no listed key decrypts; they must reconnect",
              file=sys.stderr)
        return 1
    return 0


def generate_key() -> str:
    return Fernet.generate_key().decode()

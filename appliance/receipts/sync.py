"""One slice of a sync run: list (or read history), fetch in batches, extract, save page by page.

Each page is saved in one transaction together with the run's counters and checkpoint (page token or
history position), so a slice that dies anywhere resumes at the last saved page and the counters always
agree with what was saved. A slice stops after ``RECEIPTS_SYNC_SLICE`` seconds and hands the run to a
follow-up job (``jobs.sync``); no job runs for tens of minutes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import trio

from appliance import previews
from appliance.files.storage import store_blob
from appliance.receipts import GmailError, ReceiptsError, extract, runs, store
from appliance.receipts.gmail import GmailClient, HistoryExpiredError, MessageGoneError
from appliance.receipts.hooks import receipts_saved
from appliance.receipts.message import Attachment, Message, decode_data, parse
from appliance.receipts.plan import window_since
from appliance.services import Services

log = logging.getLogger(__name__)
PAGE_SIZE = 100
# Batches of 25 (Gmail takes up to 100 and advises at most 50): spent every half second under the quota
# budget, they reach Google evenly enough not to be answered 429 when the network bunches them up.
BATCH_SIZE = 25
BATCHES_IN_FLIGHT = 4  # per slice, across the pages being read
PAGES_AHEAD = 1  # pages queued for the saver besides the one it waits on (so up to 3 being read)
HEARTBEAT_EVERY = 10.0
SUFFIX = {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif",
          "image/webp": ".webp"}


class RunEndedError(ReceiptsError):
    """The run stopped being active under us (failed as stale, or its mailbox was disconnected)."""


@dataclass
class PageResult:
    scanned: int = 0
    errors: int = 0
    found: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Pending:
    """A page being read: saved, in order, once ``ready``."""

    checkpoint: dict[str, Any]
    done: bool
    result: PageResult | None = None
    ready: trio.Event = field(default_factory=trio.Event)


@dataclass
class Slice:
    services: Services
    client: GmailClient
    run_id: int
    business_id: int
    mode: str
    params: dict[str, Any]
    checkpoint: dict[str, Any]
    scanned: int
    history_id: str | None
    saved_ids: list[int] = field(default_factory=list)
    batches: trio.CapacityLimiter = field(default_factory=lambda: trio.CapacityLimiter(BATCHES_IN_FLIGHT))

    # -- the loop ----------------------------------------------------------------------------------------
    async def run(self, deadline: float) -> bool:
        """Work until the run is done (True) or the slice's time is up (False).

        Pages overlap: while one is saved (in order, by one saver task), the next ones are listed and
        read, so the quota budget, not the round trips, sets the pace."""
        if "phase" not in self.checkpoint:
            await self._start()
        send, receive = trio.open_memory_channel[Pending](PAGES_AHEAD)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._saver, receive)
            async with send:
                return await self._pages(nursery, send, deadline)

    async def _pages(self, nursery: trio.Nursery, send: trio.MemorySendChannel[Pending], deadline: float) -> bool:
        cp = self.checkpoint
        limit = self.params.get("max_messages")
        listed = self.scanned
        ids, next_token = await self._first_page()
        while True:
            if limit is not None and listed + len(ids) >= limit:
                ids, next_token = ids[:max(0, limit - listed)], None
            listed += len(ids)
            pending = Pending({**cp, "page_token": next_token}, done=next_token is None)
            nursery.start_soon(self._read_page, ids, pending)
            await send.send(pending)  # waits while PAGES_AHEAD pages are ahead of the saver
            if next_token is None:
                return True
            if trio.current_time() >= deadline:
                return False
            ids, next_token = await self._page(next_token)

    async def _read_page(self, ids: list[str], pending: Pending) -> None:
        pending.result = await self.process(ids)
        pending.ready.set()

    async def _first_page(self) -> tuple[list[str], str | None]:
        try:
            return await self._page(self.checkpoint.get("page_token"))
        except HistoryExpiredError:
            await self._rescan_after_expired_history()
            return await self._page(None)

    async def _page(self, token: str | None) -> tuple[list[str], str | None]:
        """The message ids of one list (or history) page, and the token of the next."""
        cp = self.checkpoint
        if cp["phase"] == "history":
            page = await self.client.history_page(cp["history_from"], token)
            ids = list(dict.fromkeys(added["message"]["id"] for entry in page.get("history", [])
                                     for added in entry.get("messagesAdded", [])))
        else:
            page = await self.client.list_page(cp["window"]["query"], token, PAGE_SIZE)
            if cp.get("estimate") is None:
                cp["estimate"] = int(page.get("resultSizeEstimate") or 0)
            ids = [m["id"] for m in page.get("messages", [])]
        return ids, page.get("nextPageToken")

    async def _saver(self, receive: trio.MemoryReceiveChannel[Pending]) -> None:
        async with receive:
            async for pending in receive:
                await pending.ready.wait()
                assert pending.result is not None
                await self._save_page(pending.result, pending.checkpoint, pending.done)

    async def _start(self) -> None:
        profile = await self.client.profile()
        cp = self.checkpoint
        cp["history_start"] = str(profile.get("historyId") or "")
        if self.mode == "incremental" and self.history_id:
            cp.update(phase="history", history_from=self.history_id, page_token=None)
        else:
            cp.update(phase="scan", window=self.params["window"], page_token=None, estimate=None)
        await self.services.db.run(_save_checkpoint, self.run_id, dict(cp))

    async def _rescan_after_expired_history(self) -> None:
        since = await self.services.db.run(runs.last_completed_start, self.business_id)
        scan = window_since(since) if since else self.params["window"]
        log.info("run %d: history %s expired; scanning since %s", self.run_id,
                 self.checkpoint.get("history_from"), since)
        self.checkpoint.update(phase="scan", window=scan, page_token=None, estimate=None,
                               history_expired=True)
        await self.services.db.run(_save_checkpoint, self.run_id, dict(self.checkpoint))

    def _progress(self, cp: dict[str, Any], scanned: int) -> float:
        if cp.get("phase") == "history":
            return 50.0
        estimate = cp.get("estimate") or 0
        limit = self.params.get("max_messages")
        if limit:
            estimate = min(estimate, limit) if estimate else limit
        return round(min(99.0, 100.0 * scanned / estimate), 2) if estimate else 0.0

    async def _save_page(self, result: PageResult, checkpoint: dict[str, Any], done: bool) -> None:
        scanned = self.scanned + result.scanned
        progress = 100.0 if done else self._progress(checkpoint, scanned)
        inserted = await self.services.db.run(_commit_page, self.run_id, self.business_id, result, checkpoint,
                                              progress)
        self.scanned = scanned
        self.saved_ids += inserted
        if inserted:
            await receipts_saved(self.services, self.business_id, inserted)

    # -- one page --------------------------------------------------------------------------------------
    async def process(self, ids: list[str]) -> PageResult:
        result = PageResult(scanned=len(ids))
        chunks = [ids[i:i + BATCH_SIZE] for i in range(0, len(ids), BATCH_SIZE)]
        found: list[list[dict[str, Any]]] = [[] for _ in chunks]
        limiter = self.batches

        async def one(index: int, chunk: list[str]) -> None:
            async with limiter:
                answers = await self.client.get_messages(chunk)
            for message_id in chunk:
                answer = answers[message_id]
                if isinstance(answer, MessageGoneError):
                    continue  # deleted since it was listed: scanned, nothing to save
                if isinstance(answer, Exception):
                    log.warning("run %d: message %s unreadable: %s", self.run_id, message_id, answer)
                    result.errors += 1
                    continue
                try:
                    receipt = await self.examine(answer)
                except (GmailError, ValueError, KeyError, TypeError, UnicodeError) as exc:
                    log.warning("run %d: message %s not examined: %s", self.run_id, message_id, exc)
                    result.errors += 1
                    continue
                if receipt is not None:
                    found[index].append(receipt)

        async with trio.open_nursery() as nursery:
            for index, chunk in enumerate(chunks):
                nursery.start_soon(one, index, chunk)
        result.found = [receipt for chunk_found in found for receipt in chunk_found]
        return result

    async def _pdf_text(self, message: Message, data: bytes) -> str:
        try:
            return await (await previews.shared(self.services)).pdf_text(data)
        except previews.PreviewError as exc:  # a PDF that cannot be read says nothing
            log.warning("run %d: a PDF of message %s unreadable: %s", self.run_id, message.id, exc)
            return ""

    async def examine(self, raw: dict[str, Any]) -> dict[str, Any] | None:
        """The receipt row a message makes, or None (not a receipt, or outside the requested days)."""
        read = await trio.to_thread.run_sync(self._read, raw)
        if read is None:
            return None
        message, found = read
        if found is None:
            for attachment in message.attachments:
                if attachment.is_pdf and attachment.size <= self._cap:
                    await self._load(message, attachment)
                    if attachment.data:
                        text = await self._pdf_text(message, attachment.data)
                        found = await trio.to_thread.run_sync(extract.from_pdf, message, text)
                    if found:
                        break
        if found is None:
            return None
        return {
            "gmail_message_id": message.id, "vendor": found.vendor, "subject": message.subject or None,
            "amount": found.amount, "currency": found.currency, "received_at": message.received_at,
            "sender": message.sender[:320] or None, "body_html": message.html, "body_text": message.text,
            "source": found.source, "status": "new", "attachments": await self._keep_attachments(message),
        }

    def _read(self, raw: dict[str, Any]) -> tuple[Message, extract.Found | None] | None:
        """(message, what its body says) in one thread hop; None when it is outside the requested days."""
        message = parse(raw)
        return (message, extract.from_body(message)) if self._in_window(message) else None

    def _in_window(self, message: Message) -> bool:
        scan = self.checkpoint.get("window") if self.checkpoint.get("phase") == "scan" else None
        if not scan:
            return True
        ms = message.received_at.timestamp() * 1000
        return (scan["start_ms"] is None or ms >= scan["start_ms"]) and (scan["end_ms"] is None or
                                                                         ms < scan["end_ms"])

    @property
    def _cap(self) -> int:
        return self.services.settings.receipts_max_attachment_bytes

    async def _load(self, message: Message, attachment: Attachment) -> None:
        if attachment.data is None and attachment.attachment_id:
            body = await self.client.attachment(message.id, attachment.attachment_id)
            attachment.data = decode_data(body.get("data", ""))

    async def _keep_attachments(self, message: Message) -> list[dict[str, Any]]:
        kept = []
        for attachment in message.attachments:
            if not attachment.is_kept:
                continue
            row = {"filename": attachment.filename[:300], "mime_type": attachment.mime_type,
                   "size_bytes": attachment.size or None, "storage_path": None, "sha256": None,
                   "content_id": attachment.content_id}
            if attachment.size <= self._cap:
                await self._load(message, attachment)
            if attachment.data is not None and len(attachment.data) <= self._cap:
                relpath, digest = await trio.to_thread.run_sync(
                    store_blob, self.services.settings.data_dir, self.business_id, "attachments",
                    attachment.data, SUFFIX.get(attachment.mime_type, ""))
                row.update(storage_path=relpath, sha256=digest, size_bytes=len(attachment.data))
            kept.append(row)
        return kept


# -- transactions ----------------------------------------------------------------------------------------
def _save_checkpoint(session: Any, run_id: int, checkpoint: dict[str, Any]) -> None:
    run = runs.lock_run(session, run_id)
    if run is None or run.status not in runs.ACTIVE:
        raise RunEndedError(f"run {run_id} is no longer active")
    run.checkpoint = checkpoint


def _commit_page(session: Any, run_id: int, business_id: int, result: PageResult, checkpoint: dict[str, Any],
                 progress: float) -> list[int]:
    run = runs.lock_run(session, run_id)
    if run is None or run.status not in runs.ACTIVE:
        raise RunEndedError(f"run {run_id} is no longer active")
    inserted = store.insert_receipts(session, business_id, run_id, result.found)
    moment = runs.now()
    run.messages_scanned += result.scanned
    run.saved_receipts += len(inserted)
    run.errors_count += result.errors
    run.checkpoint = checkpoint
    run.progress_percentage = progress
    run.last_progress_at = run.last_heartbeat_at = moment
    return inserted


def begin_slice(session: Any, run_id: int, slice_no: int) -> dict[str, Any] | None:
    """Mark the run running and return what the slice needs; None when this job is not the run's current
    one (an older slice's rerun, or the run has ended)."""
    run = runs.lock_run(session, run_id)
    if run is None or run.status not in runs.ACTIVE or (run.checkpoint or {}).get("slice", 0) != slice_no:
        return None
    moment = runs.now()
    run.status = "running"
    run.started_at = run.started_at or moment
    run.last_heartbeat_at = moment
    run.last_progress_at = run.last_progress_at or moment
    connection = store.load_connection(session, run.business_id)
    return {"business_id": run.business_id, "mode": run.mode, "params": run.params or {},
            "checkpoint": dict(run.checkpoint or {}), "scanned": run.messages_scanned,
            "connection": connection}


def hand_over(session: Any, run_id: int, slice_no: int, job_id: str) -> None:
    run = runs.lock_run(session, run_id)
    if run is not None and run.status in runs.ACTIVE:
        run.checkpoint = {**(run.checkpoint or {}), "slice": slice_no}
        run.job_id = job_id


def complete(session: Any, run_id: int, business_id: int, history_id: str | None) -> None:
    runs.finish(session, run_id, "completed")
    if history_id:
        store.set_connection(session, business_id, history_id=history_id)


def fail_for_reconnect(session: Any, run_id: int, business_id: int, error: str) -> None:
    runs.finish(session, run_id, "failed", error)
    store.set_connection(session, business_id, status="needs_reconnect")

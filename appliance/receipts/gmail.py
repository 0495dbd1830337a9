"""Gmail through Google's own client library (google-api-python-client, google-auth), on Trio.

httplib2 is not thread-safe, so each thread gets its own ``AuthorizedHttp`` and service object; every call
runs in ``trio.to_thread``. Discovery is static, the endpoint comes from ``GMAIL_API_URL``, and batches go
to ``{GMAIL_API_URL}batch/gmail/v1`` through ``BatchHttpRequest(batch_uri=...)``
(``new_batch_http_request()`` would ignore the endpoint). The library's own retries sleep on the thread,
so they are off (``num_retries=0``): rate limits are retried here, on a Trio sleep, after a jittered
backoff, and every call first spends from the mailbox's quota budget.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import google_auth_httplib2
import httplib2
import trio
from google.auth.exceptions import RefreshError, TransportError
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest

from appliance.receipts import GmailError, ReconnectNeededError
from appliance.receipts.oauth import SCOPE
from appliance.receipts.quota import COST, Budget, backoff_delay
from appliance.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")
BATCH_MAX = 50  # Gmail accepts 100 per batch but recommends at most 50
MAX_RATE_RETRIES = 8
HTTP_TIMEOUT = 60
RATE_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"}


class RateLimitedError(GmailError):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class HistoryExpiredError(GmailError):
    """history.list answered 404: the stored historyId is too old; a bounded full scan is needed."""


class MessageGoneError(GmailError):
    """The message was deleted between the list and the read."""


def translate(exc: Exception) -> Exception:
    """One boundary from Google's exceptions to ours."""
    if isinstance(exc, RefreshError):
        text = str(exc)
        if "invalid_grant" in text:
            return ReconnectNeededError(
                "Gmail refused the stored refresh token (invalid_grant): reconnect the mailbox")
        return GmailError(f"token refresh failed: {text}")
    if isinstance(exc, HttpError):
        status = exc.resp.status
        reason = _reason(exc)
        if status == 429 or (status == 403 and reason in RATE_REASONS):
            retry_after = exc.resp.get("retry-after")
            return RateLimitedError(f"rate limited ({status} {reason})",
                                    float(retry_after) if retry_after and retry_after.isdigit() else None)
        if status == 404:
            return MessageGoneError(f"not found: {exc.uri}")
        return GmailError(f"Gmail answered {status} {reason or ''} for {exc.uri}".strip())
    if isinstance(exc, TransportError | httplib2.HttpLib2Error | OSError):
        return GmailError(f"Gmail unreachable: {exc}")
    return exc


def _reason(exc: HttpError) -> str | None:
    try:
        body = json.loads(exc.content)
        errors = body.get("error", {}).get("errors") or []
        return errors[0].get("reason") if errors else body.get("error", {}).get("status")
    except (ValueError, AttributeError):
        return None


@dataclass(frozen=True)
class Resources:
    http: google_auth_httplib2.AuthorizedHttp
    users: Any
    messages: Any
    attachments: Any
    history: Any


class GmailClient:
    """One mailbox. Blocking methods (``_x``) run in threads; the async ones are what callers use."""

    def __init__(self, settings: Settings, refresh_token: str, budget: Budget, *, threads: int = 6) -> None:
        self.api_url = settings.gmail_api_url.rstrip("/") + "/"
        self.credentials = Credentials(
            token=None, refresh_token=refresh_token, token_uri=settings.google_token_uri,
            client_id=settings.require("google_client_id"),
            client_secret=settings.require("google_client_secret"), scopes=[SCOPE],
        )
        self.budget = budget
        self.limiter = trio.CapacityLimiter(threads)
        self._local = threading.local()

    # -- per-thread plumbing ---------------------------------------------------------------------------
    def _resources(self) -> Resources:
        """This thread's resources and AuthorizedHttp, built once per thread: every ``users()`` or
        ``messages()`` call builds all its methods anew (~20 ms)."""
        resources = getattr(self._local, "resources", None)
        if resources is None:
            transport = httplib2.Http(timeout=HTTP_TIMEOUT)
            http = google_auth_httplib2.AuthorizedHttp(self.credentials, http=transport)
            service = build("gmail", "v1", http=http, static_discovery=True, cache_discovery=False,
                            client_options={"api_endpoint": self.api_url})
            users = service.users()
            messages = users.messages()
            resources = Resources(http, users, messages, messages.attachments(), users.history())
            self._local.resources = resources
        return resources

    def _execute(self, make: Callable[[Resources], Any]) -> Any:
        resources = self._resources()
        try:
            return make(resources).execute(http=resources.http, num_retries=0)
        except Exception as exc:  # translated at this one boundary
            raise translate(exc) from exc

    async def _call(self, units: int, make: Callable[[Resources], Any]) -> Any:
        for attempt in range(1, MAX_RATE_RETRIES + 1):
            await self.budget.spend(units)
            try:
                return await trio.to_thread.run_sync(self._execute, make, limiter=self.limiter)
            except RateLimitedError as exc:
                delay = backoff_delay(attempt, exc.retry_after)
                log.info("gmail rate limited; backing off %.1fs (attempt %d)", delay, attempt)
                await trio.sleep(delay)
        raise GmailError(f"still rate limited after {MAX_RATE_RETRIES} attempts")

    # -- calls -----------------------------------------------------------------------------------------
    async def profile(self) -> dict[str, Any]:
        return await self._call(COST["profile"], lambda r: r.users.getProfile(userId="me"))

    async def list_page(self, query: str, page_token: str | None, page_size: int) -> dict[str, Any]:
        return await self._call(COST["list"], lambda r: r.messages.list(
            userId="me", q=query, pageToken=page_token, maxResults=page_size, includeSpamTrash=False))

    async def history_page(self, start_history_id: str, page_token: str | None) -> dict[str, Any]:
        try:
            return await self._call(COST["history"], lambda r: r.history.list(
                userId="me", startHistoryId=start_history_id, historyTypes=["messageAdded"],
                pageToken=page_token, maxResults=500))
        except MessageGoneError:
            raise HistoryExpiredError(f"history {start_history_id} has expired") from None

    async def attachment(self, message_id: str, attachment_id: str) -> dict[str, Any]:
        return await self._call(COST["attachment"], lambda r: r.attachments.get(
            userId="me", messageId=message_id, id=attachment_id))

    def _get_batch(self, ids: Sequence[str]) -> dict[str, Any]:
        resources = self._resources()
        results: dict[str, Any] = {}

        def collect(request_id: str, response: Any, exception: Exception | None) -> None:
            results[request_id] = translate(exception) if exception is not None else response

        batch = BatchHttpRequest(callback=collect, batch_uri=f"{self.api_url}batch/gmail/v1")
        for message_id in ids:
            request = resources.messages.get(userId="me", id=message_id, format="full")
            batch.add(request, request_id=message_id)
        try:
            batch.execute(http=resources.http)
        except Exception as exc:  # translated at this one boundary
            raise translate(exc) from exc
        return results

    async def get_messages(self, ids: Sequence[str]) -> dict[str, dict[str, Any] | Exception]:
        """Full messages for ``ids`` (at most BATCH_MAX): each a dict, or the GmailError it ended with.

        Parts answered 429 are retried after a backoff; a whole batch answered 429 likewise."""
        assert len(ids) <= BATCH_MAX
        pending = list(ids)
        done: dict[str, dict[str, Any] | Exception] = {}
        for attempt in range(1, MAX_RATE_RETRIES + 1):
            await self.budget.spend(COST["get"] * len(pending))
            try:
                answers = await trio.to_thread.run_sync(self._get_batch, pending, limiter=self.limiter)
            except RateLimitedError as exc:
                answers = {message_id: exc for message_id in pending}
            limited = [m for m in pending if isinstance(answers.get(m), RateLimitedError)]
            missing = GmailError("no answer in batch")
            done.update({m: answers.get(m, missing) for m in pending if m not in limited})
            if not limited:
                return done
            pending = limited
            delay = backoff_delay(attempt, getattr(answers[limited[0]], "retry_after", None))
            log.info("gmail rate limited %d of a batch; backing off %.1fs", len(limited), delay)
            await trio.sleep(delay)
        done.update({m: GmailError("still rate limited") for m in pending})
        return done

"""The Baileys bridge's HTTP API, for sending: ``POST {BAILEYS_URL}/send`` with
``{"tenantId", "jid", "text"}`` answers ``{"id": "<provider message id>"}``.

Timeouts on every call; retries with capped exponential backoff on connection errors, timeouts and 5xx;
a 4xx is the bridge refusing the message and is not retried.
"""

from __future__ import annotations

import functools
import logging
import ssl
from dataclasses import dataclass
from typing import Any

import httpx
import trio

log = logging.getLogger(__name__)
TIMEOUT = httpx.Timeout(10.0, connect=3.0)
ATTEMPTS = 4
FIRST_BACKOFF = 0.25


class BridgeError(Exception):
    """The bridge did not take the message."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@functools.cache
def _tls() -> ssl.SSLContext:
    return ssl.create_default_context()


def new_client() -> httpx.AsyncClient:
    """An HTTP client for the bridge. The TLS context is built once per process: building it reads the CA
    bundle, tens of milliseconds of blocking work that would otherwise stall the Trio thread on every send."""
    return httpx.AsyncClient(timeout=TIMEOUT, verify=_tls())


@dataclass(frozen=True)
class Sent:
    provider_id: str | None
    attempts: int


async def send_text(base_url: str, business_id: int, jid: str, body: str, *,
                    client: httpx.AsyncClient | None = None, attempts: int = ATTEMPTS) -> Sent:
    owned = client is None
    client = client or new_client()
    try:
        delay = FIRST_BACKOFF
        for attempt in range(1, attempts + 1):
            try:
                response = await client.post(base_url.rstrip("/") + "/send",
                                             json={"tenantId": business_id, "jid": jid, "text": body})
                if response.status_code < 300:
                    data = response.json() if response.content else {}
                    return Sent(str(data.get("id")) if data.get("id") else None, attempt)
                if response.status_code < 500:
                    raise BridgeError(f"bridge refused the message: {response.status_code} {response.text[:200]}",
                                      retryable=False)
                problem = f"bridge answered {response.status_code}"
            except httpx.TransportError as exc:  # connect errors, timeouts, resets
                problem = f"bridge unreachable: {type(exc).__name__}: {exc}"
            if attempt == attempts:
                raise BridgeError(f"{problem} (after {attempts} attempts)", retryable=True)
            log.warning("send to %s: %s; retry %d in %.2fs", jid, problem, attempt, delay)
            await trio.sleep(delay)
            delay = min(delay * 2, 4.0)
        raise AssertionError("unreachable")
    finally:
        if owned:
            await client.aclose()


async def deliver(services: Any, business_id: int, jid: str, body: str) -> dict[str, Any]:
    """Send through the bridge (with its retries) and store the outbound message with how it went."""
    from appliance.whatsapp import store

    base_url = services.settings.require("baileys_url")
    try:
        with trio.fail_after(60):
            sent = await send_text(base_url, business_id, jid, body)
        status, provider_id = "sent", sent.provider_id
    except (BridgeError, trio.TooSlowError) as exc:
        log.warning("message to %s not sent: %s", jid, exc)
        status, provider_id = "error", None
    return await services.db.run(store.store_outbound, business_id, jid, body, status, provider_id)

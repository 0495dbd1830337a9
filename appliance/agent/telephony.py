"""Controlling a live call through Twilio's REST API with the official ``twilio`` package.

The package's own async client runs on aiohttp (asyncio only), so it gets an httpx-based ``HttpClient``
here: httpx runs natively on Trio, and it is also where ``TWILIO_API_URL`` replaces Twilio's host, so tests
point the production code path at a local server. TwiML comes from the package's ``VoiceResponse``.

    TelephonyError   Twilio refused the update or could not be reached
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from twilio.base.exceptions import TwilioException
from twilio.http import AsyncHttpClient
from twilio.http.response import Response
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

log = logging.getLogger(__name__)
TIMEOUT = httpx.Timeout(10.0, connect=3.0)
TWILIO_API_URL = "https://api.twilio.com"


class TelephonyError(Exception):
    """A call could not be redirected."""


class HttpxTwilioClient(AsyncHttpClient):
    """Twilio's ``AsyncHttpClient`` on httpx, sending each request to ``base_url``, not Twilio's host."""

    def __init__(self, base_url: str = TWILIO_API_URL, timeout: float | None = None) -> None:
        super().__init__(logger=log, is_async=True, timeout=timeout)
        base = urlsplit(base_url.rstrip("/"))
        self._scheme, self._netloc, self._prefix = base.scheme, base.netloc, base.path

    def rebase(self, url: str) -> str:
        parts = urlsplit(url)
        return urlunsplit((self._scheme, self._netloc, self._prefix + parts.path, parts.query, ""))

    async def request(self, method: str, url: str, params: dict[str, object] | None = None,
                      data: dict[str, object] | None = None, headers: dict[str, str] | None = None,
                      auth: tuple[str, str] | None = None, timeout: float | None = None,
                      allow_redirects: bool = False) -> Response:
        async with httpx.AsyncClient(timeout=timeout or self.timeout or TIMEOUT,
                                     follow_redirects=allow_redirects) as http:
            answer = await http.request(method.upper(), self.rebase(url), params=_strings(params),
                                        data=_strings(data), headers=headers, auth=auth)
        return Response(answer.status_code, answer.text, answer.headers)


def _strings(values: dict[str, object] | None) -> dict[str, str] | None:
    return {k: str(v) for k, v in values.items()} if values else None


def dial_twiml(number: str) -> str:
    response = VoiceResponse()
    response.dial(number)
    return str(response)


def say_twiml(text: str) -> str:
    response = VoiceResponse()
    response.say(text)
    response.hangup()
    return str(response)


class Telephony:
    def __init__(self, account_sid: str, auth_token: str, api_url: str = TWILIO_API_URL) -> None:
        self.client = Client(account_sid, auth_token, http_client=HttpxTwilioClient(api_url))

    async def redirect(self, call_sid: str, twiml: str) -> Any:
        """Replace what the live call is doing (our media stream) with ``twiml``."""
        try:
            return await self.client.calls(call_sid).update_async(twiml=twiml)
        except (TwilioException, httpx.HTTPError) as exc:
            raise TelephonyError(f"Twilio did not redirect call {call_sid}: {exc}") from exc

    async def transfer(self, call_sid: str, number: str) -> None:
        await self.redirect(call_sid, dial_twiml(number))

    async def say_and_hang_up(self, call_sid: str, text: str) -> None:
        await self.redirect(call_sid, say_twiml(text))

"""What Twilio and we agree on: request signatures, per-call stream tokens, and the TwiML answer."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit
from xml.sax.saxutils import escape, quoteattr

TOKEN_TTL = 300.0  # a <Stream> starts within seconds of the TwiML that asked for it


def compute_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """Twilio's X-Twilio-Signature: HMAC-SHA1 over the URL then each sorted name+value, base64."""
    data = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _url_variants(url: str) -> list[str]:
    # Twilio signs the URL as it called it; a proxy may add or strip the default port (as the twilio
    # package's own RequestValidator allows).
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    variants = [url]
    if parts.port is None and default and parts.hostname:
        variants.append(urlunsplit(parts._replace(netloc=f"{parts.netloc}:{default}")))
    elif parts.port == default and parts.hostname:
        variants.append(urlunsplit(parts._replace(netloc=parts.netloc.rsplit(":", 1)[0])))
    return variants


def signature_valid(auth_token: str, url: str, params: list[tuple[str, str]], signature: str | None) -> bool:
    if not signature:
        return False
    return any(hmac.compare_digest(compute_signature(auth_token, candidate, params), signature)
               for candidate in _url_variants(url))


def _token_mac(key: bytes, call_sid: str, expires: int) -> str:
    return hmac.new(key, f"{call_sid}.{expires}".encode(), hashlib.sha256).hexdigest()


def stream_key(auth_token: str) -> bytes:
    """The stream-token key, derived so a leaked token reveals nothing about the auth token."""
    return hmac.new(auth_token.encode(), b"appliance media stream token", hashlib.sha256).digest()


def make_stream_token(key: bytes, call_sid: str, now: float | None = None) -> str:
    expires = int((time.time() if now is None else now) + TOKEN_TTL)
    return f"{expires}.{_token_mac(key, call_sid, expires)}"


def stream_token_valid(key: bytes, call_sid: str, token: str, now: float | None = None) -> bool:
    expires_text, _, mac = token.partition(".")
    if not expires_text.isdigit() or not mac:
        return False
    if int(expires_text) < (time.time() if now is None else now):
        return False
    return hmac.compare_digest(_token_mac(key, call_sid, int(expires_text)), mac)


def connect_stream_twiml(stream_url: str, token: str, status_url: str | None = None) -> str:
    status = f" statusCallback={quoteattr(status_url)}" if status_url else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Response><Connect><Stream url={quoteattr(stream_url)}{status}>"
        f'<Parameter name="token" value={quoteattr(token)}/>'
        "</Stream></Connect></Response>"
    )


def say_twiml(text: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?><Response><Say>{escape(text)}</Say><Hangup/></Response>'

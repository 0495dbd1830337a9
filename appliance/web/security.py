"""Security headers on every response of the API role, in one place: the CSP, framing, referrer, HSTS.

Scripts run only from files served by this origin (no ``'unsafe-inline'``, no ``eval``); inline *styles*
stay allowed (the CRM sets widths in markup), which cannot run code. ``frame-ancestors 'none'`` and
``X-Frame-Options: DENY`` stop clickjacking; ``Referrer-Policy: no-referrer`` keeps signed file URLs and
ids out of other sites' logs; ``Strict-Transport-Security`` is sent only when ``PUBLIC_URL`` is https (an
http-only install must stay reachable).
"""

from __future__ import annotations

from quart import Quart, Response

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
HSTS = "max-age=31536000; includeSubDomains"


def security_headers(public_url: str | None) -> dict[str, str]:
    headers = {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cross-Origin-Opener-Policy": "same-origin",
    }
    if public_url and public_url.lower().startswith("https://"):
        headers["Strict-Transport-Security"] = HSTS
    return headers


def install_security_headers(app: Quart, public_url: str | None) -> None:
    headers = security_headers(public_url)

    @app.after_request
    async def _secure(response: Response) -> Response:
        response.headers.update(headers)
        return response

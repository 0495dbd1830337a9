"""The browser CRM: one static page at ``/`` (login, leads, WhatsApp inbox, calls, job queues) that talks to
the same JSON API as everything else, with the session cookie."""

from __future__ import annotations

from importlib.resources import files

from quart import Blueprint, Response

bp = Blueprint("crm", __name__)
PAGE = files("appliance.web").joinpath("static/index.html").read_bytes()


@bp.get("/")
async def index() -> Response:
    # The CSP and the other security headers are set on every answer in one place: web/security.py.
    return Response(PAGE, content_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})

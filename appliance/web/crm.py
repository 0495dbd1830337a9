"""The browser CRM: one HTML shell served at every page's path, ES modules per page under ``/static/js``, the
vendored libraries under ``/static/vendor``. The pages talk to the same JSON API as scripts do, with the
session cookie. The strict Content-Security-Policy (scripts and styles only from this origin, no inline
script or style, no framing) is set on every response by ``appliance/web/security.py``."""

from __future__ import annotations

from importlib.resources import files

from quart import Blueprint, Response

bp = Blueprint("crm", __name__, static_folder="static", static_url_path="/static")
SHELL = files("appliance.web").joinpath("static/index.html").read_bytes()
PAGES = ("/", "/login", "/leads", "/leads/<int:lead_id>", "/inbox", "/calls", "/receipts", "/sync", "/jobs",
         "/settings")


async def shell(**_: object) -> Response:
    return Response(SHELL, content_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})


@bp.after_app_request
async def revalidate(response: Response) -> Response:
    """Scripts and styles are revalidated by ETag, so a new release is seen at once."""
    if response.mimetype in ("text/javascript", "application/javascript", "text/css"):
        response.headers["Cache-Control"] = "no-cache"
    return response


for _path in PAGES:
    bp.add_url_rule(_path, "shell", shell, methods=["GET"])

"""``GET /api/files/<token>``: a file named by a signed, expiring URL, for the caller's business only."""

from __future__ import annotations

import mimetypes

import trio
from quart import Blueprint, send_file

from appliance.files.signing import FileTokenError, read_token
from appliance.files.storage import absolute_path
from appliance.web.auth import require_auth
from appliance.web.context import principal, services
from appliance.web.errors import ApiError

bp = Blueprint("files", __name__)


@bp.get("/api/files/<token>")
@require_auth
async def get_file(token: str):
    settings = services().settings
    business_id = principal().business_id
    try:
        relpath = read_token(settings, token, business_id)
    except FileTokenError as exc:
        raise ApiError(403, str(exc)) from None
    path = await trio.to_thread.run_sync(absolute_path, settings.data_dir, business_id, relpath)
    if path is None:
        raise ApiError(404, "file not found")
    mimetype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    response = await send_file(path, mimetype=mimetype)
    response.headers["Cache-Control"] = "private, max-age=900"
    return response

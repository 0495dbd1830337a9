"""One error shape for the API, ``{"success": false, "error": "..."}``, and the handlers that produce it.

Exceptions the API raises on purpose::

    ApiError(status, message)        a client or availability error with its HTTP status
    pydantic.ValidationError         422, naming each bad field
    werkzeug HTTPException           its own status (404, 405, 413, ...)
    redis connection errors          503 naming redis
    database connection errors       503 naming the database
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError
from quart import Quart, jsonify, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from appliance.redis import REDIS_DOWN

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def error_response(status: int, message: str, **extra: Any):  # Quart response tuple
    return jsonify({"success": False, "error": message, **extra}), status


def describe_validation(exc: ValidationError) -> tuple[str, dict[str, str]]:
    fields: dict[str, str] = {}
    for err in exc.errors():
        name = ".".join(str(part) for part in err["loc"]) or "body"
        fields.setdefault(name, err["msg"])
    message = "; ".join(f"{name}: {msg}" for name, msg in fields.items())
    return message, fields


def install_error_handlers(app: Quart) -> None:
    @app.errorhandler(ApiError)
    async def _api_error(exc: ApiError):
        log.info("%s %s -> %d %s", request.method, request.path, exc.status, exc.message)
        return error_response(exc.status, exc.message, **exc.extra)

    @app.errorhandler(ValidationError)
    async def _validation(exc: ValidationError):
        message, fields = describe_validation(exc)
        log.info("%s %s -> 422 %s", request.method, request.path, message)
        return error_response(422, message, fields=fields)

    @app.errorhandler(HTTPException)
    async def _http(exc: HTTPException):
        status = exc.code or 500
        message = {413: f"request body too large (limit {app.config['MAX_CONTENT_LENGTH']} bytes)"}.get(
            status, exc.description or exc.name
        )
        log.info("%s %s -> %d %s", request.method, request.path, status, message)
        return error_response(status, message)

    for exc_type in REDIS_DOWN:

        @app.errorhandler(exc_type)
        async def _redis_down(exc: Exception):
            log.warning("%s %s -> 503 redis unavailable: %s", request.method, request.path, exc)
            return error_response(503, "redis is unavailable, try again shortly")

    @app.errorhandler(OperationalError)
    async def _db_down(exc: OperationalError):
        log.warning("%s %s -> 503 database unavailable: %s", request.method, request.path, exc.orig)
        return error_response(503, "database is unavailable, try again shortly")

    @app.errorhandler(Exception)
    async def _unexpected(exc: Exception):
        log.exception("%s %s -> 500", request.method, request.path)
        return error_response(500, "internal error; it has been logged")

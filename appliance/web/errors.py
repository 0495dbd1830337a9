"""One error shape for the API, ``{"success": false, "error": "..."}``, and the handlers that produce it.

Exceptions the API raises on purpose::

    ApiError(status, message)        a client or availability error with its HTTP status
    pydantic.ValidationError         422, naming each bad field
    RequestSchemaValidationError     422 likewise (quart-schema's request and query validation)
    werkzeug HTTPException           its own status (404, 405, 413, ...); a 413 also closes the connection
    redis connection errors          503 naming redis
    DatabaseUnavailableError         503 naming the database (down, hung past its deadline, refusing)
    sqlalchemy DataError             400: a value the database cannot hold got past validation
    SettingMissingError              503 naming the variable the feature needs (DESIGN: one clear error)
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError
from quart import Quart, jsonify, request
from quart_schema import RequestSchemaValidationError
from sqlalchemy.exc import DataError
from werkzeug.exceptions import HTTPException

from appliance.db import DatabaseUnavailableError
from appliance.redis import REDIS_DOWN
from appliance.settings import SettingMissingError

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.extra = extra


REDIS_UNAVAILABLE = "redis is unavailable, try again shortly"
DATABASE_UNAVAILABLE = "database is unavailable, try again shortly"
INTERNAL_ERROR = "internal error; it has been logged"


def too_large_message(limit: int) -> str:
    return f"request body too large (limit {limit} bytes)"


def known_error(exc: Exception) -> tuple[int, str, dict[str, Any], dict[str, str]]:
    """The status, message, extra answer fields and headers the handlers below give ``exc`` (for a route
    served outside Quart: web/fast_route.py); anything unforeseen is a 500."""
    if isinstance(exc, ApiError):
        return exc.status, exc.message, exc.extra, exc.headers
    if isinstance(exc, ValidationError):
        message, fields = describe_validation(exc)
        return 422, message, {"fields": fields}, {}
    if isinstance(exc, HTTPException) and exc.code:
        return exc.code, exc.description or exc.name, {}, {}
    if isinstance(exc, REDIS_DOWN):
        return 503, REDIS_UNAVAILABLE, {}, {}
    if isinstance(exc, DatabaseUnavailableError):
        return 503, DATABASE_UNAVAILABLE, {}, {}
    if isinstance(exc, SettingMissingError):
        return 503, str(exc), {}, {}
    if isinstance(exc, DataError):
        return 400, bad_value_message(exc), {}, {}
    return 500, INTERNAL_ERROR, {}, {}


def bad_value_message(exc: DataError) -> str:
    first = str(exc.orig).strip().splitlines()[0] if exc.orig else "invalid value"
    return f"invalid value: {first}"


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
        response, status = error_response(exc.status, exc.message, **exc.extra)
        response.headers.update(exc.headers)
        return response, status

    @app.errorhandler(ValidationError)
    async def _validation(exc: ValidationError):
        message, fields = describe_validation(exc)
        log.info("%s %s -> 422 %s", request.method, request.path, message)
        return error_response(422, message, fields=fields)

    @app.errorhandler(RequestSchemaValidationError)
    async def _schema_validation(exc: RequestSchemaValidationError):
        if isinstance(exc.validation_error, ValidationError):
            message, fields = describe_validation(exc.validation_error)
        else:
            message, fields = str(exc.validation_error), {}
        log.info("%s %s -> 422 %s", request.method, request.path, message)
        return error_response(422, message, fields=fields)

    @app.errorhandler(HTTPException)
    async def _http(exc: HTTPException):
        status = exc.code or 500
        message = {413: too_large_message(app.config["MAX_CONTENT_LENGTH"])}.get(
            status, exc.description or exc.name
        )
        log.info("%s %s -> %d %s", request.method, request.path, status, message)
        response, status = error_response(status, message)
        allow = dict(exc.get_headers()).get("Allow")
        if allow:
            response.headers["Allow"] = allow
        if status == 413:
            # The client may still be sending the body we refused: closing is the only way the next
            # request on this connection is not parsed out of (or stuck behind) that unread body.
            response.headers["Connection"] = "close"
        return response, status

    for exc_type in REDIS_DOWN:

        @app.errorhandler(exc_type)
        async def _redis_down(exc: Exception):
            log.warning("%s %s -> 503 redis unavailable: %s", request.method, request.path, exc)
            return error_response(503, REDIS_UNAVAILABLE)

    @app.errorhandler(DatabaseUnavailableError)
    async def _db_down(exc: DatabaseUnavailableError):
        log.warning("%s %s -> 503 %s", request.method, request.path, exc)
        return error_response(503, DATABASE_UNAVAILABLE)

    @app.errorhandler(SettingMissingError)
    async def _not_configured(exc: SettingMissingError):
        log.warning("%s %s -> 503 %s", request.method, request.path, exc)
        return error_response(503, str(exc))

    @app.errorhandler(DataError)
    async def _bad_value(exc: DataError):
        message = bad_value_message(exc)
        log.info("%s %s -> 400 %s", request.method, request.path, message)
        return error_response(400, message)

    @app.errorhandler(Exception)
    async def _unexpected(exc: Exception):
        log.exception("%s %s -> 500", request.method, request.path)
        return error_response(500, INTERNAL_ERROR)

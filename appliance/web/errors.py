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


def known_error(exc: Exception, body_limit: int) -> tuple[int, str, dict[str, Any], dict[str, str]]:
    """The status, message, extra answer fields and headers the API gives ``exc`` (the one mapping, for
    Quart's handlers below and for a route served in front of Quart: web/fast_route.py); anything
    unforeseen is a 500."""
    if isinstance(exc, ApiError):
        return exc.status, exc.message, exc.extra, exc.headers
    if isinstance(exc, ValidationError):
        message, fields = describe_validation(exc)
        return 422, message, {"fields": fields}, {}
    if isinstance(exc, RequestSchemaValidationError):
        if isinstance(exc.validation_error, ValidationError):
            message, fields = describe_validation(exc.validation_error)
        else:
            message, fields = str(exc.validation_error), {}
        return 422, message, {"fields": fields}, {}
    if isinstance(exc, HTTPException):
        status = exc.code or 500
        headers = {k: v for k, v in exc.get_headers() if k == "Allow"}
        if status == 413:
            # The client may still be sending the body we refused: closing is the only way the next
            # request on this connection is not parsed out of (or stuck behind) that unread body.
            return 413, too_large_message(body_limit), {}, {**headers, "Connection": "close"}
        return status, exc.description or exc.name, {}, headers
    if isinstance(exc, REDIS_DOWN):
        return 503, REDIS_UNAVAILABLE, {}, {}
    if isinstance(exc, DatabaseUnavailableError):
        return 503, DATABASE_UNAVAILABLE, {}, {}
    if isinstance(exc, SettingMissingError):
        return 503, str(exc), {}, {}
    if isinstance(exc, DataError):
        return 400, bad_value_message(exc), {}, {}
    return 500, INTERNAL_ERROR, {}, {}


def log_error(method: str, path: str, status: int, message: str, exc: Exception) -> None:
    """Once per failed request: a 500 with its traceback, an unavailable dependency as a warning with its
    cause, a client's mistake as information."""
    if status == 503 and not isinstance(exc, ApiError):
        log.warning("%s %s -> 503 %s: %s", method, path, message, exc)
    elif status >= 500 and status != 503:
        log.error("%s %s -> %d", method, path, status, exc_info=exc)
    else:
        log.info("%s %s -> %d %s", method, path, status, message)


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
    async def _answer(exc: Exception):
        status, message, extra, headers = known_error(exc, app.config["MAX_CONTENT_LENGTH"])
        log_error(request.method, request.path, status, message, exc)
        response, status = error_response(status, message, **extra)
        response.headers.update(headers)
        return response, status

    # Quart picks the most specific of these for each exception, as it did with one handler each.
    for exc_type in (ApiError, ValidationError, RequestSchemaValidationError, HTTPException, *REDIS_DOWN,
                     DatabaseUnavailableError, SettingMissingError, DataError, Exception):
        app.register_error_handler(exc_type, _answer)

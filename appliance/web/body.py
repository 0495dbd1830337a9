"""Request bodies: a JSON object or a 400 that says so; ``@json_body(Model)`` validates it against a pydantic
model (422 naming each bad field) and documents that model in ``/api/openapi.json``."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel
from quart import request
from quart_schema.validation import QUART_SCHEMA_REQUEST_ATTRIBUTE, DataSource

from appliance.web.errors import ApiError

M = TypeVar("M", bound=BaseModel)
View = Callable[..., Awaitable[Any]]


async def json_object() -> dict[str, Any]:
    body = await request.get_json(force=True)
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    return body


def document_body(model: type[BaseModel]) -> Callable[[View], View]:
    """Name ``model`` as the view's JSON body in the OpenAPI document (quart-schema reads the attribute)."""

    def decorate(view: View) -> View:
        setattr(view, QUART_SCHEMA_REQUEST_ATTRIBUTE, (model, DataSource.JSON))
        return view

    return decorate


def json_body(model: type[M]) -> Callable[[View], View]:
    """Parse the body as a JSON object (400 otherwise), validate it as ``model`` (422 naming each field) and
    pass it to the view as ``body``; the same model is the body's schema in the OpenAPI document."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            return await view(*args, body=model.model_validate(await json_object()), **kwargs)

        return document_body(model)(wrapper)

    return decorate

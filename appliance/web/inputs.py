"""What a request may carry, checked at the edge so that hostile input is a 4xx and never a 500.

- JSON bodies: at most ``MAX_JSON_DEPTH`` levels of nesting (a body nested 100,000 deep used to raise
  RecursionError) and no NUL characters in strings (PostgreSQL text cannot hold them) → 400; the size limit
  is ``MAX_BODY_BYTES`` → 413, answered with ``Connection: close`` so a keep-alive client never waits on a
  connection whose unread body is still in flight.
- A body the view never read (401, 404 answered first) is drained after the response is made: left unread,
  the next request on the same keep-alive connection stalled (71 of 600 tries) until the client timed out.
- Bodies that are not UTF-8, or not JSON where JSON is parsed → 400 naming the problem.
- NUL in the path or the query string → 400.
- ``<int:...>`` ids beyond PostgreSQL's bigint → no route matches → 404 (as for any unknown id).
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from quart import Quart, Response, request
from quart.json.provider import JSONProvider
from quart_trio.wrappers import TrioRequest
from werkzeug.exceptions import BadRequest, HTTPException
from werkzeug.routing import IntegerConverter

MAX_JSON_DEPTH = 32
BIGINT_MAX = 2**63 - 1


def digits_at_most(limit: int) -> str:
    """A regex matching exactly the decimal numbers 0..``limit`` (no capturing groups)."""
    text = str(limit)
    alternatives = [rf"\d{{1,{len(text) - 1}}}"] if len(text) > 1 else []
    for i, char in enumerate(text):
        low, rest = (1 if i == 0 else 0), len(text) - i - 1
        if int(char) - 1 >= low:
            alternatives.append(text[:i] + f"[{low}-{int(char) - 1}]" + (rf"\d{{{rest}}}" if rest else ""))
    alternatives.append(text)
    return "(?:" + "|".join(alternatives) + ")"


class IdConverter(IntegerConverter):
    """``<int:id>`` matching only ids PostgreSQL's bigint can hold. The bound is in the regex, not in
    ``to_python``: werkzeug turns a converter's refusal into 405 when the path has rules for other methods."""

    regex = digits_at_most(BIGINT_MAX)


def check_json(value: Any, limit: int = MAX_JSON_DEPTH) -> None:
    """Raise BadRequest if ``value`` nests deeper than ``limit`` or holds a NUL in any string (iterative:
    a hostile document cannot exhaust the stack here)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise BadRequest("JSON strings must not contain NUL (\\u0000) characters")
            continue
        if isinstance(item, dict):
            children = [*item.keys(), *item.values()]
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            raise BadRequest(f"JSON body nested deeper than {limit} levels")
        stack.extend((child, depth + 1) for child in children)


def parse_json(text: str | bytes) -> Any:
    """A JSON document within the limits (BadRequest beyond them, ValueError if it is not JSON). orjson
    parses it; what orjson refuses (integers beyond 64 bits, NaN, lone surrogates, UTF-16) goes to the
    standard library, so the documents accepted are the same as with it alone."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        try:
            value = json.loads(text)
        except RecursionError as error:
            raise BadRequest(f"JSON body nested deeper than {MAX_JSON_DEPTH} levels") from error
    check_json(value)
    return value


def limited_json_provider(base: type[JSONProvider]) -> type[JSONProvider]:
    """``base`` (quart-schema's provider, which serialises pydantic models) with the limits on loading."""

    class LimitedJSONProvider(base):  # type: ignore[valid-type, misc]
        def loads(self, s: str | bytes, **kwargs: Any) -> Any:
            return parse_json(s)  # Quart passes no options

    return LimitedJSONProvider


class LimitedRequest(TrioRequest):
    async def get_data(self, cache: bool = True, as_text: bool = False,  # type: ignore[override]
                       parse_form_data: bool = False) -> str | bytes:
        try:
            return await super().get_data(cache, as_text, parse_form_data)
        except UnicodeDecodeError as error:
            raise BadRequest("request body is not valid UTF-8") from error

    def on_json_loading_failed(self, error: Exception) -> Any:
        if isinstance(error, BadRequest):
            raise error
        raise BadRequest(f"request body is not valid JSON: {error}") from error


def install_input_limits(app: Quart) -> None:
    """Call before blueprints are registered (the id converter applies to rules as they are added) and
    after quart-schema (whose JSON provider this wraps)."""
    app.url_map.converters["int"] = IdConverter
    app.request_class = LimitedRequest
    app.json_provider_class = limited_json_provider(app.json_provider_class)
    app.json = app.json_provider_class(app)

    @app.after_request
    async def _drain_unread_body(response: Response) -> Response:
        # A body the view never read (a 401 or 404 answered before it) must still be consumed here: left
        # unread, Hypercorn stalls the next request on this keep-alive connection (measured: 71 of 600).
        if request.content_length != 0 and response.status_code != 413:
            try:
                await request.get_data()
            except HTTPException:  # over the size limit: refuse to read it, end the connection instead
                response.headers["Connection"] = "close"
        return response

    @app.before_request
    async def _no_nul() -> None:
        if "\x00" in request.path or any("\x00" in k or "\x00" in v for k, v in request.args.items(multi=True)):
            raise BadRequest("NUL (%00) is not allowed in the path or the query string")

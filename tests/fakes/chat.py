"""A local OpenAI-compatible chat completions server: ``POST /v1/chat/completions``.

Each request is validated with the official package's ``CompletionCreateParamsNonStreaming`` (no unknown top
level field, every message and tool of a documented shape); each answer is an ``openai.types.chat.ChatCompletion``
(or an error body of ``openai.types.shared.ErrorObject``), built from the package's types. Answers are
scripted: a reply text, tool calls, or an HTTP error status; unscripted requests get a plain reply.
"""

from __future__ import annotations

import itertools
import json
from collections import deque
from typing import Any, get_type_hints

from openai.types.chat import ChatCompletion
from openai.types.chat.completion_create_params import CompletionCreateParamsNonStreaming
from openai.types.shared import ErrorObject
from pydantic import TypeAdapter

from tests.fakes.asgi import Changes, HttpFake, Receive, Send, lifespan, read_body, respond, respond_json

REQUEST = TypeAdapter(CompletionCreateParamsNonStreaming)
KNOWN = set(get_type_hints(CompletionCreateParamsNonStreaming))
USAGE = {"prompt_tokens": 50, "completion_tokens": 12, "total_tokens": 62,
         "prompt_tokens_details": {"cached_tokens": 0}}
Script = str | int | list[tuple[str, dict[str, Any]]]  # a reply, an HTTP status, or tool calls


def validate_request(body: dict[str, Any]) -> dict[str, Any]:
    unknown = set(body) - KNOWN
    if unknown:
        raise AssertionError(f"chat request has fields the API does not know: {sorted(unknown)}")
    request = dict(REQUEST.validate_python(body))
    request["messages"] = list(request["messages"])  # iterables validate as they are consumed
    request["tools"] = list(request.get("tools") or [])
    return request


class FakeChat(HttpFake):
    def __init__(self, script: list[Script] | None = None) -> None:
        self.script: deque[Script] = deque(script or [])
        self.requests: list[dict[str, Any]] = []  # raw bodies, failed ones included
        self.changes = Changes()
        self._ids = itertools.count(1)

    async def app(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        body = json.loads(await read_body(receive) or b"{}")
        if (scope["method"], scope["path"]) != ("POST", "/v1/chat/completions"):
            await respond_json(send, 404, {"error": {"message": "no such route", "type": "invalid_request_error"}})
            return
        validate_request(body)
        self.requests.append(body)
        self.changes.notify()
        step = self.script.popleft() if self.script else "Thanks for your message!"
        if isinstance(step, int):
            error = ErrorObject(message="The server is overloaded", type="server_error", code=str(step))
            await respond(send, step, json.dumps({"error": error.model_dump()}))
            return
        await respond(send, 200, self.completion(body["model"], step))

    def completion(self, model: str, step: str | list[tuple[str, dict[str, Any]]]) -> str:
        if isinstance(step, str):
            message: dict[str, Any] = {"role": "assistant", "content": step}
            finish = "stop"
        else:
            message = {"role": "assistant", "content": None, "tool_calls": [
                {"id": f"call_{next(self._ids)}", "type": "function",
                 "function": {"name": name, "arguments": json.dumps(args)}} for name, args in step]}
            finish = "tool_calls"
        return ChatCompletion.model_validate({
            "id": f"chatcmpl-{next(self._ids)}", "object": "chat.completion", "created": 1_780_000_000,
            "model": model, "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": USAGE,
        }).model_dump_json(exclude_unset=True)


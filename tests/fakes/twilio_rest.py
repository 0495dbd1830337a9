"""A local stand-in for Twilio's REST API (the Calls resource), driven by the official ``twilio`` client:
``POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json`` with HTTP Basic auth and a form body
answers the Call resource, as Twilio does."""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import parse_qsl

from tests.fakes.asgi import Changes, HttpFake, Receive, Send, lifespan, read_body, respond_json

CALL_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<account>AC\w+)/Calls/(?P<call>CA\w+)\.json$")


class FakeTwilioRest(HttpFake):
    def __init__(self, account_sid: str, auth_token: str) -> None:
        self.account_sid, self.auth_token = account_sid, auth_token
        self.updates: list[dict[str, Any]] = []  # {"call_sid", "form"}
        self.changes = Changes()

    async def app(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        form = dict(parse_qsl((await read_body(receive)).decode()))
        match = CALL_PATH.match(scope["path"])
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if dict(scope["headers"]).get(b"authorization", b"").decode() != expected:
            await respond_json(send, 401, {"code": 20003, "message": "Authenticate", "status": 401})
        elif scope["method"] != "POST" or match is None or match["account"] != self.account_sid:
            await respond_json(send, 404, {"code": 20404, "message": "The requested resource was not found",
                                           "status": 404})
        else:
            self.updates.append({"call_sid": match["call"], "form": form})
            self.changes.notify()
            await respond_json(send, 200, {
                "sid": match["call"], "account_sid": self.account_sid, "status": "in-progress",
                "direction": "inbound", "api_version": "2010-04-01",
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Calls/{match['call']}.json",
            })


"""A local Google: the OAuth endpoints and the Gmail REST API (v1) on a real HTTP server, spoken to by
google-api-python-client and google-auth exactly as they speak to Google.

Served: ``GET /o/oauth2/v2/auth`` (consent granted at once: 302 back with code and state), ``POST /token``
(authorization_code and refresh_token grants; ``invalid_grant`` for a revoked token), and under
``/gmail/v1/users/me/``: ``profile``, ``messages`` (``q`` with ``after:``/``before:`` read in Gmail's zone,
paging), ``messages/<id>?format=full``, ``messages/<id>/attachments/<id>``, ``history`` (404 once
expired); ``POST /batch/gmail/v1`` (multipart/mixed of application/http parts). A per-user quota of
``quota_units`` a second answers 429 ``rateLimitExceeded`` when exceeded, ``flaky_every`` makes every Nth
message read a 429 anyway, and ``delay`` is added to every HTTP request (a batch is one request).

Run in a thread of the test (``serve_in_thread``), or as a process:
``python -m tests.fakes.google --messages 2000 --delay 0.03 --quota 250`` (prints its URL).
"""

from __future__ import annotations

import argparse
import datetime as dt
import email.parser
import json
import secrets
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse
from zoneinfo import ZoneInfo

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from tests.fakes.mailbox import Mail, b64

GMAIL_ZONE = ZoneInfo("America/Los_Angeles")  # where the fake reads after:/before: dates
CLIENT_ID = "fake-client-id.apps.googleusercontent.com"
CLIENT_SECRET = "fake-client-secret"
PREFIX = "/gmail/v1/users/me/"


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class TokenBucket:
    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.level = rate
        self.at = time.monotonic()
        self.lock = threading.Lock()

    def take(self, units: float) -> bool:
        with self.lock:
            now = time.monotonic()
            self.level = min(self.rate, self.level + (now - self.at) * self.rate)
            self.at = now
            if self.level < units:
                return False
            self.level -= units
            return True


def gerror(status: int, message: str, reason: str, state: str) -> Answer:
    return Answer(
        status,
        {
            "error": {
                "code": status,
                "message": message,
                "status": state,
                "errors": [{"message": message, "domain": "global", "reason": reason}],
            }
        },
    )


class FakeGoogle:
    def __init__(
        self,
        mails: list[Mail],
        *,
        email: str = "owner@business.example",
        delay: float = 0.0,
        quota_units: float | None = None,
        flaky_every: int = 0,
    ) -> None:
        self.email = email
        self.delay = delay
        self.flaky_every = flaky_every
        self.bucket = TokenBucket(quota_units) if quota_units else None
        self.lock = threading.Lock()
        self.mails: dict[str, Mail] = {}
        self.order: list[str] = []  # newest first, as Gmail lists
        self.history_id = 1000
        self.history_floor = 0  # history before this id has expired (404)
        self.codes: dict[str, str] = {}  # code -> redirect_uri
        self.refresh_tokens: set[str] = set()
        self.access_tokens: dict[str, str] = {}
        self.counts: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.url = ""
        for mail in mails:
            self.add(mail)

    # -- state the tests change ------------------------------------------------------------------------
    def add(self, mail: Mail) -> None:
        with self.lock:
            self.history_id += 1
            mail.history_id = self.history_id
            self.mails[mail.id] = mail
            self.order = sorted(self.mails, key=lambda m: (self.mails[m].internal_ms, m), reverse=True)

    def expire_history(self) -> None:
        with self.lock:
            self.history_floor = self.history_id + 1

    def revoke_all(self) -> None:
        with self.lock:
            self.refresh_tokens.clear()
            self.access_tokens.clear()

    def issue_refresh_token(self) -> str:
        token = "1//fake-refresh-" + secrets.token_urlsafe(16)
        self.refresh_tokens.add(token)
        return token

    # -- HTTP ------------------------------------------------------------------------------------------
    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                time.sleep(self.delay)
            response = self.route(request)
        finally:
            with self.lock:
                self.in_flight -= 1
        return response(environ, start_response)

    def route(self, request: Request) -> Response:
        path = request.path
        if path == "/o/oauth2/v2/auth":
            return self.consent(request)
        if path == "/_counts":  # the fake's own, for benchmarks: requests by kind, 429s
            return self.json(Answer(200, dict(self.counts)))
        if path == "/token" and request.method == "POST":
            return self.json(self.token(request.form.to_dict()))
        if path == "/batch/gmail/v1" and request.method == "POST":
            return self.batch(request)
        answer = self.gmail(request.method, request.full_path, request.headers.get("Authorization", ""))
        return self.json(answer)

    @staticmethod
    def json(answer: Answer) -> Response:
        return Response(
            json.dumps(answer.body),
            status=answer.status,
            headers=answer.headers,
            content_type="application/json; charset=UTF-8",
        )

    def consent(self, request: Request) -> Response:
        args = request.args
        if args.get("client_id") != CLIENT_ID or "gmail.readonly" not in args.get("scope", ""):
            return Response("bad client or scope", status=400)
        code = "4/fake-code-" + secrets.token_urlsafe(12)
        self.codes[code] = args.get("redirect_uri", "")
        self.counts["consent"] += 1
        target = (
            args["redirect_uri"]
            + ("&" if "?" in args["redirect_uri"] else "?")
            + urlencode({"code": code, "state": args.get("state", ""), "scope": args.get("scope", "")})
        )
        return Response(status=302, headers={"Location": target})

    def token(self, form: dict[str, str]) -> Answer:
        self.counts["token"] += 1
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return Answer(
                401, {"error": "invalid_client", "error_description": "The OAuth client was not found."}
            )
        grant = form.get("grant_type")
        if grant == "authorization_code":
            redirect = self.codes.pop(form.get("code", ""), None)
            if redirect is None or redirect != form.get("redirect_uri"):
                return Answer(400, {"error": "invalid_grant", "error_description": "Malformed auth code."})
            refresh = self.issue_refresh_token()
        elif grant == "refresh_token":
            refresh = form.get("refresh_token", "")
            if refresh not in self.refresh_tokens:
                return Answer(
                    400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
                )
        else:
            return Answer(400, {"error": "unsupported_grant_type"})
        access = "ya29.fake-" + secrets.token_urlsafe(16)
        self.access_tokens[access] = refresh
        body = {
            "access_token": access,
            "expires_in": 3599,
            "token_type": "Bearer",
            "scope": "https://www.googleapis.com/auth/gmail.readonly",
        }
        if grant == "authorization_code":
            body["refresh_token"] = refresh
        return Answer(200, body)

    def gmail(self, method: str, full_path: str, authorization: str) -> Answer:
        token = authorization.removeprefix("Bearer ").strip()
        if token not in self.access_tokens:
            return gerror(
                401, "Request had invalid authentication credentials.", "authError", "UNAUTHENTICATED"
            )
        url = urlparse(full_path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if method != "GET" or not url.path.startswith(PREFIX):
            return gerror(404, "Not Found", "notFound", "NOT_FOUND")
        parts = url.path[len(PREFIX) :].split("/")
        cost = {"profile": 1, "history": 2}.get(parts[0], 5)
        if self.bucket is not None and not self.bucket.take(cost):
            self.counts["quota_429"] += 1
            return gerror(429, "User-rate limit exceeded", "rateLimitExceeded", "RESOURCE_EXHAUSTED")
        if parts == ["profile"]:
            return Answer(
                200,
                {
                    "emailAddress": self.email,
                    "messagesTotal": len(self.mails),
                    "threadsTotal": len(self.mails),
                    "historyId": str(self.history_id),
                },
            )
        if parts == ["messages"]:
            return self.list(query)
        if len(parts) == 2 and parts[0] == "messages":
            return self.get(parts[1])
        if len(parts) == 4 and parts[0] == "messages" and parts[2] == "attachments":
            mail = self.mails.get(parts[1])
            data = mail.attachments.get(parts[3]) if mail else None
            if data is None:
                return gerror(404, "Requested entity was not found.", "notFound", "NOT_FOUND")
            self.counts["attachment"] += 1
            return Answer(200, {"size": len(data), "data": b64(data)})
        if parts == ["history"]:
            return self.history(query)
        return gerror(404, "Not Found", "notFound", "NOT_FOUND")

    def list(self, query: dict[str, str]) -> Answer:
        self.counts["list"] += 1
        after = before = None
        for term in query.get("q", "").split():
            name, _, value = term.partition(":")
            if name in ("after", "before"):
                day = dt.datetime.strptime(value, "%Y/%m/%d").replace(tzinfo=GMAIL_ZONE)
                ms = int(day.timestamp() * 1000)
                after, before = (ms, before) if name == "after" else (after, ms)
        with self.lock:
            ids = [
                m
                for m in self.order
                if (after is None or self.mails[m].internal_ms >= after)
                and (before is None or self.mails[m].internal_ms < before)
            ]
        size = min(500, int(query.get("maxResults", 100)))
        offset = int(query.get("pageToken") or 0)
        page = ids[offset : offset + size]
        body: dict[str, Any] = {
            "messages": [{"id": m, "threadId": m} for m in page],
            "resultSizeEstimate": len(ids),
        }
        if offset + size < len(ids):
            body["nextPageToken"] = str(offset + size)
        if not page:
            body.pop("messages")
        return Answer(200, body)

    def get(self, message_id: str) -> Answer:
        with self.lock:
            self.counts["get"] += 1
            flaky = self.flaky_every and self.counts["get"] % self.flaky_every == 0
        if flaky:
            self.counts["flaky_429"] += 1
            return gerror(
                429, "Too many concurrent requests for user", "rateLimitExceeded", "RESOURCE_EXHAUSTED"
            )
        mail = self.mails.get(message_id)
        if mail is None:
            return gerror(404, "Requested entity was not found.", "notFound", "NOT_FOUND")
        return Answer(200, mail.gmail_json())

    def history(self, query: dict[str, str]) -> Answer:
        self.counts["history"] += 1
        start = int(query.get("startHistoryId", "0"))
        if start < self.history_floor:
            return gerror(404, "Requested entity was not found.", "notFound", "NOT_FOUND")
        with self.lock:
            added = sorted(
                (m for m in self.mails.values() if m.history_id > start), key=lambda m: m.history_id
            )
        offset = int(query.get("pageToken") or 0)
        size = min(500, int(query.get("maxResults", 100)))
        page = added[offset : offset + size]
        body: dict[str, Any] = {"historyId": str(self.history_id)}
        if page:
            body["history"] = [
                {
                    "id": str(m.history_id),
                    "messages": [{"id": m.id, "threadId": m.id}],
                    "messagesAdded": [{"message": {"id": m.id, "threadId": m.id, "labelIds": ["INBOX"]}}],
                }
                for m in page
            ]
        if offset + size < len(added):
            body["nextPageToken"] = str(offset + size)
        return Answer(200, body)

    def batch(self, request: Request) -> Response:
        self.counts["batch"] += 1
        raw = f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode() + request.get_data()
        message = email.parser.BytesParser().parsebytes(raw)
        parts = message.get_payload() if message.is_multipart() else []
        if not parts or len(parts) > 100:
            return self.json(gerror(400, "A batch holds 1 to 100 requests", "badRequest", "INVALID_ARGUMENT"))
        boundary = "batch_" + uuid.uuid4().hex
        out = []
        for part in parts:
            inner = part.get_payload(decode=False)
            head, _, _ = inner.replace("\r\n", "\n").partition("\n\n")
            lines = head.split("\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {
                k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
            }
            answer = self.gmail(method, target, headers.get("authorization", ""))
            content_id = part["Content-ID"] or "<x + 0>"
            reason = {200: "OK", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests"}.get(
                answer.status, "Error"
            )
            out.append(
                f"--{boundary}\r\nContent-Type: application/http\r\n"
                f"Content-ID: <response-{content_id[1:-1]}>\r\n\r\n"
                f"HTTP/1.1 {answer.status} {reason}\r\nContent-Type: application/json; charset=UTF-8\r\n"
                f"\r\n{json.dumps(answer.body)}\r\n"
            )
        body = "".join(out) + f"--{boundary}--\r\n"
        return Response(body.encode(), status=200, content_type=f"multipart/mixed; boundary={boundary}")


class _Handler(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_request(self, *args: Any, **kwargs: Any) -> None:  # quiet
        pass


def serve_in_thread(fake: FakeGoogle, host: str = "127.0.0.1") -> BaseWSGIServer:
    """Serve on a free port in a daemon thread; ``fake.url`` is set. Call ``.shutdown()`` to stop."""
    server = make_server(host, 0, fake.wsgi, threaded=True, request_handler=_Handler)
    fake.url = f"http://{host}:{server.server_port}/"
    threading.Thread(target=server.serve_forever, name="fake-google", daemon=True).start()
    return server


def settings_for(
    fake: FakeGoogle, redirect_uri: str = "http://testserver/api/gmail/oauth/callback"
) -> dict[str, str]:
    """The appliance settings (environment names) that point it at this fake."""
    return {
        "GOOGLE_CLIENT_ID": CLIENT_ID,
        "GOOGLE_CLIENT_SECRET": CLIENT_SECRET,
        "GOOGLE_REDIRECT_URI": redirect_uri,
        "GOOGLE_AUTH_URI": fake.url + "o/oauth2/v2/auth",
        "GOOGLE_TOKEN_URI": fake.url + "token",
        "GMAIL_API_URL": fake.url,
    }


def main() -> None:
    from tests.fakes.mailbox import generate

    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--quota", type=float, default=0.0, help="quota units a second (Gmail: 250)")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--refresh-token", default=None, help="a refresh token to accept")
    args = parser.parse_args()
    fake = FakeGoogle(generate(args.messages, seed=args.seed), delay=args.delay, quota_units=args.quota or None)
    if args.refresh_token:
        fake.refresh_tokens.add(args.refresh_token)
    server = serve_in_thread(fake)
    print(fake.url, flush=True)
    try:
        threading.Event().wait()
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()

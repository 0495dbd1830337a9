"""Tenant isolation by construction: every route in the app's URL map that takes an id is called with tenant
B's credentials on tenant A's objects, and must answer 404 or 403 with nothing of A's changed.

A route whose parameter has no maker in ``OBJECT_OF`` fails the test by name, so a new route cannot skip it:
add a maker that creates A's object of that kind and returns the value for the URL.
Also here: webhook secrets rotate with no downtime (old and new both accepted).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
import trio
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from appliance.accounts import store as accounts
from appliance.calls import store as calls
from appliance.files.signing import file_url
from appliance.files.storage import store_blob
from appliance.jobs.queue import JobQueue
from appliance.media.serve import serve_media
from appliance.models import Call, Lead, Receipt, ReceiptSyncRun, WhatsAppMessage
from appliance.services import Services, open_services
from appliance.web.app import create_app
from appliance.web.auth import AUTH_ATTRIBUTE
from tests.conftest import bearer, make_tenant

Maker = Callable[[Services, int], Awaitable[Any]]


async def _insert(services: Services, row: Any) -> int:
    """Add one row (an ORM object) and return its id."""

    def create(session) -> int:
        session.add(row)
        session.flush()
        return int(row.id)

    return await services.db.run(create)


async def _lead(services: Services, business_id: int) -> int:
    return await _insert(services, Lead(business_id=business_id, name="A's lead", phone="+15550001234"))


async def _jid(services: Services, business_id: int) -> str:
    jid = f"1555{uuid.uuid4().int % 10**7:07d}@s.whatsapp.net"

    def create(session) -> None:
        session.add(WhatsAppMessage(business_id=business_id, jid=jid, direction="in", body="A's secret",
                                    provider_message_id=uuid.uuid4().hex))

    await services.db.run(create)
    return jid


async def _token(services: Services, business_id: int) -> int:
    def create(session) -> int:
        user_id = accounts.list_users(session, business_id)[0]["id"]
        return int(accounts.create_token(session, business_id, user_id)["id"])  # type: ignore[call-overload]

    return await services.db.run(create)


async def _job(services: Services, business_id: int) -> str:
    queue = JobQueue(services.redis, services.keys)
    job_id = await queue.enqueue("diagnostics.fail", {"business_id": business_id, "message": "A's job"},
                                 max_retries=0)
    return job_id


async def _call(services: Services, business_id: int) -> int:
    sid = "CA" + uuid.uuid4().hex

    def create_call(session) -> int:
        calls.record_incoming(session, business_id, sid, "+15550001111", "+15550002222")
        return int(session.scalar(select(Call.id).where(Call.call_sid == sid)))

    return await services.db.run(create_call)


async def _receipt(services: Services, business_id: int) -> int:
    return await _insert(services, Receipt(
        business_id=business_id, vendor="A's vendor", amount=Decimal("12.50"), currency="ILS",
        received_at=dt.datetime.now(dt.UTC), gmail_message_id=uuid.uuid4().hex))


async def _run(services: Services, business_id: int) -> int:
    return await _insert(services, ReceiptSyncRun(business_id=business_id, mode="full", status="completed"))


async def _file_token(services: Services, business_id: int) -> str:
    """A signed URL to one of A's files: valid for A, and B must still get 403 or 404 with it."""
    relpath, _ = store_blob(services.settings.data_dir, business_id, "attachment", b"A's invoice")
    url = file_url(services.settings, business_id, relpath)
    assert url is not None
    return url.rsplit("/", 1)[1]


# URL parameter name -> a maker of tenant A's object of that kind.
OBJECT_OF: dict[str, Maker] = {
    "lead_id": _lead, "jid": _jid, "token_id": _token, "job_id": _job, "call_id": _call,
    "receipt_id": _receipt, "run_id": _run, "token": _file_token,
}


def id_routes(app) -> list[tuple[str, str, list[str]]]:
    """(rule, method, parameter names) of every authenticated route that takes a parameter."""
    found = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if not rule.arguments or not getattr(view, AUTH_ATTRIBUTE, False):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((rule.rule, method, sorted(rule.arguments)))
    return found


def snapshot_routes(app) -> list[str]:
    """Every authenticated GET route without parameters: what tenant A can see of its own data."""
    return sorted(rule.rule for rule in app.url_map.iter_rules()
                  if not rule.arguments and "GET" in (rule.methods or set())
                  and getattr(app.view_functions[rule.endpoint], AUTH_ATTRIBUTE, False))


@pytest.fixture
async def services(settings):
    """With ENCRYPTION_KEY set, so signed file URLs exist."""
    key = Fernet.generate_key().decode()
    async with open_services(settings.model_copy(update={"encryption_key": SecretStr(key)})) as svc:
        yield svc


async def test_tenant_b_gets_404_or_403_on_every_id_route_and_changes_nothing(services, client):
    app = create_app(services)
    business_a, _, token_a = await make_tenant(services)
    _, _, token_b = await make_tenant(services)
    routes = id_routes(app)
    assert routes, "no routes with ids found"
    missing = sorted({name for _, _, names in routes for name in names if name not in OBJECT_OF})
    assert not missing, f"add a maker to OBJECT_OF for the route parameter(s) {missing}"
    values = {name: await maker(services, business_a) for name, maker in OBJECT_OF.items()}

    async def seen_by_a() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for path in snapshot_routes(app):
            seen[path] = await (await client.get(path, headers=bearer(token_a))).get_json()
        for rule, method, names in routes:
            if method == "GET":
                path = rule
                for name in names:
                    path = path.replace(f"<int:{name}>", str(values[name])).replace(f"<{name}>", str(values[name]))
                seen[path] = (await client.get(path, headers=bearer(token_a))).status_code, \
                    await (await client.get(path, headers=bearer(token_a))).get_json()
        return seen

    before, again = await seen_by_a(), await seen_by_a()
    stable = {k for k in before if before[k] == again[k]}  # volatile answers (queue ages, counters) aside
    assert {"/api/leads", "/api/tokens", "/api/whatsapp/conversations"} <= stable
    for rule, method, names in routes:
        path = rule
        for name in names:
            path = path.replace(f"<int:{name}>", str(values[name])).replace(f"<{name}>", str(values[name]))
        response = await client.open(path, method=method, headers=bearer(token_b),
                                     json={})  # valid for every PATCH: the lookup, not validation, must refuse
        assert response.status_code in (403, 404), (method, path, response.status_code,
                                                    await response.get_data())
        assert (await response.get_json())["success"] is False
    after = await seen_by_a()
    changed = sorted(k for k in stable if after[k] != before[k])
    assert not changed, f"tenant B's calls changed what tenant A sees: {changed}"


async def test_internal_secret_rotates_with_old_and_new_both_accepted(settings, services):
    settings = settings.model_copy(update={"internal_secret": SecretStr("new-secret, old-secret")})
    business_id, _, _ = await make_tenant(services)
    async with open_services(settings) as svc, create_app(svc).test_app() as test_app:
        client = test_app.test_client()
        body = {"tenantId": business_id, "payload": {"messages": []}}
        for secret, status in (("new-secret", 200), ("old-secret", 200), ("other", 401), ("", 401),
                               ("new-secret, old-secret", 401)):
            response = await client.post("/webhook/whatsapp/incoming", json=body,
                                         headers={"X-Internal-Secret": secret})
            assert response.status_code == status, secret


async def test_twilio_auth_token_rotates_with_old_and_new_both_accepted(settings, services, nursery):
    settings = settings.model_copy(update={"twilio_auth_token": SecretStr("new-token,old-token")})
    stop = trio.Event()
    handle = await nursery.start(serve_media, settings, stop)
    base = f"http://127.0.0.1:{int(handle.status().rsplit(':', 1)[1])}"
    business_id, _, _ = await make_tenant(services)
    url = f"{base}/webhook/twilio/voice?business={business_id}"
    async with httpx.AsyncClient() as http:
        for n, (token, status) in enumerate((("new-token", 200), ("old-token", 200), ("other", 403))):
            form = {"CallSid": f"CArotate{n}{uuid.uuid4().hex[:6]}", "From": "+15550001111"}
            signature = RequestValidator(token).compute_signature(url, form)
            response = await http.post(url, data=form, headers={"X-Twilio-Signature": signature})
            assert response.status_code == status, token
    stop.set()

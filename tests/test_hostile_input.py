"""Hostile input is a 4xx in the error shape, never a 500: the four requests that used to make a 500, the
keep-alive request after a 413, and the security headers on every answer."""

from __future__ import annotations

import httpx
import pytest
import trio

from appliance.web.inputs import MAX_JSON_DEPTH
from appliance.web.security import CONTENT_SECURITY_POLICY
from appliance.web.serve import serve_api
from tests.conftest import bearer, make_tenant

SECRET = {"X-Internal-Secret": "test-internal-secret"}


async def error_of(response, status: int) -> str:
    assert response.status_code == status, (response.status_code, await response.get_data())
    body = await response.get_json()
    assert body["success"] is False and isinstance(body["error"], str)
    return body["error"]


def nested(depth: int) -> bytes:
    return b'{"name":' + b"[" * depth + b"]" * depth + b"}"


async def test_deeply_nested_json_is_400_on_the_api_and_the_webhook(client, services):
    _, _, token = await make_tenant(services)
    headers = {**bearer(token), "Content-Type": "application/json"}
    for depth in (100_000, MAX_JSON_DEPTH + 1):
        error = await error_of(await client.post("/api/leads", data=nested(depth), headers=headers), 400)
        assert "nested deeper" in error
        error = await error_of(await client.post("/webhook/whatsapp/incoming", data=nested(depth),
                                                 headers={**SECRET, "Content-Type": "application/json"}), 400)
        assert "nested deeper" in error
    # Within the limit the body reaches validation as usual (422 naming the field).
    response = await client.post("/api/leads", data=nested(MAX_JSON_DEPTH - 2), headers=headers)
    assert response.status_code == 422


@pytest.mark.parametrize("path", ["/api/leads/99999999999999999999", "/api/leads/9223372036854775808",
                                  "/api/tokens/99999999999999999999"])
async def test_ids_beyond_bigint_are_404(client, services, path):
    _, _, token = await make_tenant(services)
    await error_of(await client.get(path, headers=bearer(token)), 404)
    await error_of(await client.delete(path, headers=bearer(token)), 404)


async def test_invalid_utf8_body_is_400(client, services):
    _, _, token = await make_tenant(services)
    body = b'{"name": "\xff\xfe\xfa"}'
    error = await error_of(await client.post("/api/leads", data=body, headers={
        **bearer(token), "Content-Type": "application/json"}), 400)
    assert "UTF-8" in error or "JSON" in error


async def test_nul_in_query_path_or_json_string_is_400(client, services):
    _, _, token = await make_tenant(services)
    assert "NUL" in await error_of(await client.get("/api/leads?q=a%00b", headers=bearer(token)), 400)
    assert "NUL" in await error_of(
        await client.get("/api/whatsapp/conversations/a%00b/messages", headers=bearer(token)), 400)
    assert "NUL" in await error_of(await client.post("/api/leads", json={"name": "a\x00b"},
                                                     headers=bearer(token)), 400)


async def test_keep_alive_request_right_after_a_413_does_not_stall(settings, nursery):
    """20 times: a body over the limit, then a normal request from the same client, each within 2 s."""
    settings = settings.model_copy(update={"max_body_bytes": 64 * 1024})
    stop = trio.Event()
    handle = await nursery.start(serve_api, settings, stop)
    base = handle.status().rsplit(" ", 1)[1]
    too_big = b'{"tenantId": 1, "payload": "' + b"x" * (256 * 1024) + b'"}'
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        for _ in range(20):
            with trio.fail_after(2):
                refused = await http.post("/webhook/whatsapp/incoming", content=too_big, headers=SECRET)
                assert refused.status_code == 413 and refused.json()["success"] is False
                assert refused.headers["Connection"] == "close"
            with trio.fail_after(2):
                assert (await http.get("/api/health")).status_code == 200
    stop.set()


async def test_every_answer_carries_the_security_headers(client, services, settings):
    for response in (await client.get("/"), await client.get("/api/health"), await client.get("/api/leads")):
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "Strict-Transport-Security" not in response.headers  # PUBLIC_URL unset: http is allowed
    script_src = next(d for d in CONTENT_SECURITY_POLICY.split("; ") if d.startswith("script-src"))
    assert "unsafe-inline" not in script_src and "unsafe-eval" not in script_src
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY


async def test_hsts_only_when_public_url_is_https(settings):
    from appliance.services import open_services
    from appliance.web.app import create_app

    settings = settings.model_copy(update={"public_url": "https://crm.example.test"})
    async with open_services(settings) as services:
        async with create_app(services).test_app() as test_app:
            response = await test_app.test_client().get("/api/health")
            assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")


async def test_openapi_document_is_public_and_built_from_the_request_models(client):
    response = await client.get("/api/openapi.json")
    assert response.status_code == 200
    doc = await response.get_json()
    assert doc["openapi"].startswith("3.1")
    login = doc["paths"]["/api/auth/login"]["post"]
    assert login["security"] == [] and "password" in str(login["requestBody"])
    leads = doc["paths"]["/api/leads"]["post"]
    assert leads["security"] and "requestBody" in leads
    lead_id = doc["paths"]["/api/leads/{lead_id}"]["get"]["parameters"][0]
    assert lead_id["schema"]["maximum"] == 2**63 - 1
    assert "/webhook/whatsapp/incoming" in doc["paths"] and "/" not in doc["paths"]


async def test_a_feature_whose_setting_is_missing_answers_503_naming_it(client, services):
    _, _, token = await make_tenant(services)  # the test settings have no ENCRYPTION_KEY
    error = await error_of(await client.get("/api/files/anything", headers=bearer(token)), 503)
    assert "ENCRYPTION_KEY" in error

"""Schemathesis against the live API (real Hypercorn socket), from the app's own ``/api/openapi.json``: every
operation gets a bounded number of generated requests, valid and invalid, with each of two tenants'
credentials. No answer may be a 5xx, every error must be ``{"success": false, "error": "..."}``, and
answers must conform to the document. New routes are fuzzed as soon as they are in the URL map.
"""

from __future__ import annotations

import os
import time
from typing import Any

import httpx
import pytest
import requests
import schemathesis
import trio
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from pydantic import SecretStr
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

from appliance.web.serve import serve_api
from tests.conftest import make_tenant
from tests.fake_bridge import FakeBridge

ANSWER_WITHIN = 10
answered: list[tuple[str, int, float]] = []
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "6"))  # per operation, per mode, per tenant
SECRET = "test-internal-secret"


def error_shape_problem(response: requests.Response) -> str | None:
    if response.status_code < 400:
        return None
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code} body is not JSON: {response.text[:200]!r}"
    if not (isinstance(body, dict) and body.get("success") is False and isinstance(body.get("error"), str)):
        return f"{response.status_code} error body not in the shape: {body!r}"[:300]
    return None


def fuzz_operation(operation: Any, mode: GenerationMode, headers: dict[str, str], base_url: str,
                   session: requests.Session, problems: list[str]) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def run(case) -> None:
        where = f"{case.method} {case.formatted_path} ({mode.value})"
        started = time.monotonic()
        try:
            response = case.call(base_url=base_url, session=session, headers=headers, timeout=ANSWER_WITHIN,
                                 allow_redirects=False)
        except requests.exceptions.Timeout:
            problems.append(f"{where}: no answer within {ANSWER_WITHIN}s; last answered: {answered[-3:]}")
            return
        except (requests.exceptions.InvalidHeader, requests.exceptions.InvalidURL, ValueError):
            return  # the client library refuses to send it: nothing reached the server
        answered.append((where, response.status_code, round(time.monotonic() - started, 2)))
        if response.status_code >= 500:
            problems.append(f"{where}: {response.status_code} {response.text[:300]}")
        if (problem := error_shape_problem(response)) is not None:
            problems.append(f"{where}: {problem}")
        if mode is GenerationMode.POSITIVE:
            try:
                case.validate_response(response, checks=[response_schema_conformance])
            except Exception as exc:  # collected and reported below
                problems.append(f"{where}: does not conform: {str(exc)[:300]}")

    try:
        run()
    except Unsatisfiable:
        pass  # nothing of this mode exists for the operation (an operation with no inputs has no invalid ones)


def fuzz(doc: dict[str, Any], base_url: str, tokens: list[str]) -> list[str]:
    """Run every operation; return the problems found (empty: none)."""
    schema = schemathesis.openapi.from_dict(doc)
    problems: list[str] = []
    session = requests.Session()
    for result in schema.get_all_operations():
        operation = result.ok()
        # Valid requests with each tenant's credentials, invalid ones with the first's.
        for mode, token in [*((GenerationMode.POSITIVE, t) for t in tokens), (GenerationMode.NEGATIVE, tokens[0])]:
            headers = {"Authorization": f"Bearer {token}", "X-Internal-Secret": SECRET}
            fuzz_operation(operation, mode, headers, base_url, session, problems)
    return problems


@pytest.mark.slow
async def test_schemathesis_finds_no_5xx_and_every_error_in_shape(settings, nursery, services):
    bridge = FakeBridge()
    await nursery.start(bridge.run)
    # A configured appliance: a feature whose setting is missing answers 503 naming it, not what is fuzzed here.
    settings = settings.model_copy(update={
        "baileys_url": bridge.url, "encryption_key": SecretStr(Fernet.generate_key().decode()),
        "google_client_id": "fuzz-client", "google_client_secret": SecretStr("fuzz-secret"),
        "google_redirect_uri": "http://127.0.0.1/api/gmail/oauth/callback",
    })
    stop = trio.Event()
    handle = await nursery.start(serve_api, settings, stop)
    base = handle.status().rsplit(" ", 1)[1]
    tenant_a, _, token_a = await make_tenant(services)
    _, _, token_b = await make_tenant(services)
    async with httpx.AsyncClient(base_url=base) as http:
        created = await http.post("/api/leads", json={"name": "Ada", "phone": "+15551234567"},
                                  headers={"Authorization": f"Bearer {token_a}"})
        assert created.status_code == 201
        doc = (await http.get("/api/openapi.json")).json()
    assert len(doc["paths"]) >= 10
    problems = await trio.to_thread.run_sync(fuzz, doc, base, [token_a, token_b])
    stop.set()
    assert not problems, "\n".join(problems[:40])

"""Login limits, session rotation and revocation, password change, users and API tokens."""

from __future__ import annotations

import pytest
import trio

from appliance.accounts.login_limits import ACCOUNT, ADDRESS, LoginLimits, delay_after
from appliance.accounts.store import _hasher
from tests.conftest import bearer, make_tenant
from tests.helpers import FakeClock

PASSWORD = "correct horse battery"


@pytest.fixture
def client(client):
    """The test client without its cookie jar: each request sends exactly the session it is given."""
    client.cookie_jar = None
    return client


def session_of(response) -> str:
    return response.headers["Set-Cookie"].split("appliance_session=", 1)[1].split(";", 1)[0]


def cookie(token: str) -> dict[str, str]:
    return {"Cookie": f"appliance_session={token}"}


async def login(client, email: str, password: str, headers: dict[str, str] | None = None):
    return await client.post("/api/auth/login", json={"email": email, "password": password}, headers=headers or {})


async def test_failed_logins_of_one_account_are_slowed_then_429_with_retry_after(client, services):
    _, email, _ = await make_tenant(services, password=PASSWORD)
    for _ in range(ACCOUNT.free):
        assert (await login(client, email, "wrong")).status_code == 401
    throttled = await login(client, email, PASSWORD)  # even the right password must wait its turn
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) >= 1
    body = await throttled.get_json()
    assert body["success"] is False and "too many failed logins" in body["error"]
    # The real user gets in once the delay (here 1 s) has passed: no long lockout.
    with trio.fail_after(5):
        while (response := await login(client, email, PASSWORD)).status_code == 429:
            await trio.sleep(0.2)
    assert response.status_code == 200
    assert (await login(client, email, "wrong")).status_code == 401  # success cleared the account's count


async def test_delays_grow_exponentially_and_are_capped_so_a_user_is_never_locked_out_for_long(services):
    assert [delay_after(n, ACCOUNT) for n in range(ACCOUNT.free, ACCOUNT.free + 4)] == [1, 2, 4, 8]
    assert delay_after(1000, ACCOUNT) == 60 and delay_after(1000, ADDRESS) == 900
    clock = FakeClock()
    limits = LoginLimits(services.redis, services.keys, clock)
    for _ in range(50):  # an attacker keeps failing from many addresses
        await limits.failed("victim@example.test", f"10.0.0.{_}")
    assert await limits.retry_after("victim@example.test", "10.9.9.9") == 60
    clock.advance(60)
    assert await limits.retry_after("victim@example.test", "10.9.9.9") == 0
    # One address failing against many accounts is held back for longer.
    for n in range(ADDRESS.free + 6):
        await limits.failed(f"user{n}@example.test", "192.0.2.7")
    assert await limits.retry_after("fresh@example.test", "192.0.2.7") == 64


async def test_login_rotates_the_session_and_logout_revokes_its_own(client, services):
    _, email, _ = await make_tenant(services, password=PASSWORD)
    first = session_of(await login(client, email, PASSWORD))
    assert (await client.get("/api/auth/me", headers=cookie(first))).status_code == 200
    second_response = await login(client, email, PASSWORD, headers=cookie(first))
    second = session_of(second_response)
    assert second != first
    assert (await client.get("/api/auth/me", headers=cookie(first))).status_code == 401  # rotated away
    other = session_of(await login(client, email, PASSWORD))  # another browser
    assert (await client.post("/api/auth/logout", json={}, headers=cookie(second))).status_code == 200
    assert (await client.get("/api/auth/me", headers=cookie(second))).status_code == 401
    assert (await client.get("/api/auth/me", headers=cookie(other))).status_code == 200  # only its own


async def test_password_change_revokes_every_other_session_and_keeps_api_tokens(client, services):
    _, email, api_token = await make_tenant(services, password=PASSWORD)
    mine = session_of(await login(client, email, PASSWORD))
    elsewhere = session_of(await login(client, email, PASSWORD))
    wrong = await client.post("/api/auth/password", json={"current_password": "nope", "new_password": "x" * 12},
                              headers=cookie(mine))
    assert wrong.status_code == 403
    short = await client.post("/api/auth/password", json={"current_password": PASSWORD, "new_password": "x"},
                              headers=cookie(mine))
    assert short.status_code == 422 and "new_password" in (await short.get_json())["fields"]
    changed = await client.post("/api/auth/password",
                                json={"current_password": PASSWORD, "new_password": "a new long password"},
                                headers=cookie(mine))
    assert changed.status_code == 200
    assert (await client.get("/api/auth/me", headers=cookie(mine))).status_code == 200
    assert (await client.get("/api/auth/me", headers=cookie(elsewhere))).status_code == 401
    assert (await client.get("/api/auth/me", headers=bearer(api_token))).status_code == 200
    assert (await login(client, email, PASSWORD)).status_code == 401
    assert (await login(client, email, "a new long password")).status_code == 200


async def test_users_and_tokens_are_managed_within_the_callers_business(client, services):
    business, email, token = await make_tenant(services, password=PASSWORD)
    _, _, other_token = await make_tenant(services)
    added = await client.post("/api/users", json={"email": "second@acme.example.test", "password": "long enough 1"},
                              headers=bearer(token))
    assert added.status_code == 201
    dup = await client.post("/api/users", json={"email": "second@acme.example.test", "password": "long enough 1"},
                            headers=bearer(token))
    assert dup.status_code == 409
    users = (await (await client.get("/api/users", headers=bearer(token))).get_json())["users"]
    assert sorted(u["email"] for u in users) == sorted([email, "second@acme.example.test"])
    assert len((await (await client.get("/api/users", headers=bearer(other_token))).get_json())["users"]) == 1

    created = await (await client.post("/api/tokens", json={}, headers=bearer(token))).get_json()
    new_id, new_secret = created["token"]["id"], created["token"]["token"]
    assert (await client.get("/api/auth/me", headers=bearer(new_secret))).status_code == 200
    listed = (await (await client.get("/api/tokens", headers=bearer(token))).get_json())["tokens"]
    assert new_id in [t["id"] for t in listed] and all("token" not in t for t in listed)
    assert (await client.delete(f"/api/tokens/{new_id}", headers=bearer(other_token))).status_code == 404
    assert (await client.get("/api/auth/me", headers=bearer(new_secret))).status_code == 200
    assert (await client.delete(f"/api/tokens/{new_id}", headers=bearer(token))).status_code == 200
    assert (await client.get("/api/auth/me", headers=bearer(new_secret))).status_code == 401


def test_argon2_parameters_are_the_stated_ones():
    params = _hasher.hash("x").split("$")[3]
    assert params == "m=65536,t=3,p=4"

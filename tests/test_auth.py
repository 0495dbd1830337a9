from __future__ import annotations

from tests.conftest import bearer, make_tenant


async def test_every_api_route_but_health_and_login_needs_credentials(client, services):
    for method, path in [("GET", "/api/leads"), ("POST", "/api/leads"), ("GET", "/api/leads/1"),
                         ("PATCH", "/api/leads/1"), ("DELETE", "/api/leads/1"), ("GET", "/api/auth/me"),
                         ("POST", "/api/auth/logout"), ("GET", "/api/calls"), ("GET", "/api/jobs/stats"),
                         ("GET", "/api/jobs/x"), ("POST", "/api/jobs/x/retry"),
                         ("GET", "/api/whatsapp/conversations"), ("GET", "/api/whatsapp/conversations/x/messages"),
                         ("POST", "/api/whatsapp/conversations/x/read"), ("POST", "/api/whatsapp/send")]:
        response = await client.open(path, method=method, json={})
        assert response.status_code == 401, (method, path)
        body = await response.get_json()
        assert body["success"] is False and "authentication required" in body["error"]


async def test_bearer_token_identifies_the_user(client, services):
    business_id, email, token = await make_tenant(services)
    response = await client.get("/api/auth/me", headers=bearer(token))
    assert response.status_code == 200
    assert await response.get_json() == {"success": True, "user_id": (await response.get_json())["user_id"],
                                         "business_id": business_id, "email": email}


async def test_wrong_token_and_wrong_scheme_are_401(client, services):
    assert (await client.get("/api/auth/me", headers=bearer("nope"))).status_code == 401
    response = await client.get("/api/auth/me", headers={"Authorization": "Basic abc"})
    assert response.status_code == 401
    assert "Bearer" in (await response.get_json())["error"]


async def test_login_sets_a_secure_httponly_cookie_and_logout_revokes_it(client, services):
    _, email, _ = await make_tenant(services, password="s3cret-pass")
    bad = await client.post("/api/auth/login", json={"email": email, "password": "wrong"})
    assert bad.status_code == 401
    response = await client.post("/api/auth/login", json={"email": email.upper(), "password": "s3cret-pass"})
    assert response.status_code == 200
    cookie = response.headers["Set-Cookie"]
    assert "appliance_session=" in cookie and "HttpOnly" in cookie and "Secure" in cookie
    assert "SameSite=Lax" in cookie
    token = cookie.split("appliance_session=", 1)[1].split(";", 1)[0]
    headers = {"Cookie": f"appliance_session={token}"}
    assert (await client.get("/api/auth/me", headers=headers)).status_code == 200
    # Cookie-authenticated POST must be JSON (CSRF): a form post is refused.
    form = await client.post("/api/leads", form={"name": "x"}, headers=headers)
    assert form.status_code == 403
    assert (await client.post("/api/auth/logout", json={}, headers=headers)).status_code == 200
    assert (await client.get("/api/auth/me", headers=headers)).status_code == 401


async def test_login_validation_names_the_field(client, services):
    response = await client.post("/api/auth/login", json={"email": "a@b.c"})
    assert response.status_code == 422
    assert "password" in (await response.get_json())["fields"]

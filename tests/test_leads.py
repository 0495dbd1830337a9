from __future__ import annotations

from tests.conftest import bearer, make_tenant


async def test_create_read_update_delete(client, services):
    _, _, token = await make_tenant(services)
    created = await client.post("/api/leads", json={"name": "Ada", "phone": "+44 (20) 7946-0958"},
                                headers=bearer(token))
    assert created.status_code == 201
    lead = (await created.get_json())["lead"]
    assert lead["phone"] == "+442079460958" and lead["status"] == "new"
    got = await client.get(f"/api/leads/{lead['id']}", headers=bearer(token))
    assert (await got.get_json())["lead"]["name"] == "Ada"
    patched = await client.patch(f"/api/leads/{lead['id']}", json={"status": "qualified", "notes": "call back"},
                                 headers=bearer(token))
    assert patched.status_code == 200
    body = (await patched.get_json())["lead"]
    assert body["status"] == "qualified" and body["notes"] == "call back" and body["name"] == "Ada"
    assert (await client.delete(f"/api/leads/{lead['id']}", headers=bearer(token))).status_code == 200
    assert (await client.get(f"/api/leads/{lead['id']}", headers=bearer(token))).status_code == 404


async def test_validation_errors_are_422_naming_the_field(client, services):
    _, _, token = await make_tenant(services)
    cases = [({"name": "x", "email": "not-an-email"}, "email"), ({"name": "x", "status": "maybe"}, "status"),
             ({"name": "x", "phone": "call me"}, "phone"), ({"name": "x", "colour": "red"}, "colour"),
             ({"name": "x" * 201}, "name")]
    for payload, field in cases:
        response = await client.post("/api/leads", json=payload, headers=bearer(token))
        assert response.status_code == 422, payload
        body = await response.get_json()
        assert body["success"] is False and field in body["fields"] and field in body["error"]
    empty = await client.post("/api/leads", json={}, headers=bearer(token))
    assert empty.status_code == 422 and "at least one of name, phone or email" in (await empty.get_json())["error"]
    not_object = await client.post("/api/leads", json=[1, 2], headers=bearer(token))
    assert not_object.status_code == 400
    broken = await client.post("/api/leads", data="{not json", headers={**bearer(token),
                               "Content-Type": "application/json"})
    assert broken.status_code == 400


async def test_pagination_and_search(client, services):
    _, _, token = await make_tenant(services)
    for i in range(7):
        await client.post("/api/leads", json={"name": f"Person {i}", "email": f"p{i}@example.com"},
                          headers=bearer(token))
    await client.post("/api/leads", json={"name": "100%_literal"}, headers=bearer(token))
    page = await (await client.get("/api/leads?per_page=3&page=2", headers=bearer(token))).get_json()
    assert page["total"] == 8 and len(page["leads"]) == 3 and page["page"] == 2
    found = await (await client.get("/api/leads?q=p3@", headers=bearer(token))).get_json()
    assert [lead["name"] for lead in found["leads"]] == ["Person 3"]
    # LIKE wildcards in q are literal characters, not patterns.
    literal = await (await client.get("/api/leads?q=%25_", headers=bearer(token))).get_json()
    assert [lead["name"] for lead in literal["leads"]] == ["100%_literal"]
    bad = await client.get("/api/leads?per_page=abc", headers=bearer(token))
    assert bad.status_code == 400 and "per_page" in (await bad.get_json())["error"]
    bad_status = await client.get("/api/leads?status=nope", headers=bearer(token))
    assert bad_status.status_code == 400 and "status" in (await bad_status.get_json())["error"]


async def test_tenant_a_cannot_read_change_or_delete_tenant_b_leads(client, services):
    _, _, token_a = await make_tenant(services)
    _, _, token_b = await make_tenant(services)
    created = await client.post("/api/leads", json={"name": "B's lead", "phone": "+15550001"},
                                headers=bearer(token_b))
    lead_id = (await created.get_json())["lead"]["id"]
    assert (await client.get(f"/api/leads/{lead_id}", headers=bearer(token_a))).status_code == 404
    assert (await client.patch(f"/api/leads/{lead_id}", json={"name": "stolen"},
                               headers=bearer(token_a))).status_code == 404
    assert (await client.delete(f"/api/leads/{lead_id}", headers=bearer(token_a))).status_code == 404
    listed = await (await client.get("/api/leads", headers=bearer(token_a))).get_json()
    assert listed["total"] == 0
    still = await (await client.get(f"/api/leads/{lead_id}", headers=bearer(token_b))).get_json()
    assert still["lead"]["name"] == "B's lead"

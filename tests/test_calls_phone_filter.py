"""``GET /api/calls?phone=``: one number's calls, from or to it, of the caller's business only."""

from __future__ import annotations

from appliance.calls import store as calls
from tests.conftest import bearer, make_tenant


async def test_calls_of_one_number(services, client):
    business_id, _, token = await make_tenant(services)
    other_business, _, _ = await make_tenant(services)

    def seed(session) -> None:
        calls.record_incoming(session, business_id, "CA-in", "+15551230000", "+15550009999")
        calls.record_incoming(session, business_id, "CA-out", "+15550009999", "+15551230000")
        calls.record_incoming(session, business_id, "CA-else", "+15557777777", "+15550009999")
        calls.record_incoming(session, other_business, "CA-theirs", "+15551230000", "+15550008888")

    await services.db.run(seed)
    answer = await client.get("/api/calls", query_string={"phone": "+1 555 123 0000"}, headers=bearer(token))
    body = await answer.get_json()
    assert answer.status_code == 200
    assert sorted(c["call_sid"] for c in body["calls"]) == ["CA-in", "CA-out"] and body["total"] == 2
    bad = await client.get("/api/calls", query_string={"phone": "call me"}, headers=bearer(token))
    assert bad.status_code == 400 and "phone" in (await bad.get_json())["error"]

from __future__ import annotations

import httpx
import trio

from appliance.redis import is_durable
from appliance.services import open_services
from appliance.web.app import create_app
from appliance.web.serve import serve_api


async def test_health_ok_and_metrics(client, services):
    response = await client.get("/api/health")
    assert response.status_code == 200
    durable = await is_durable(services.redis)  # the shared test Redis: on CI, setup.sh turned AOF on
    assert await response.get_json() == {"status": "ok", "db": "ok", "redis": "ok", "redis_durable": durable}
    metrics = await client.get("/metrics")
    text = (await metrics.get_data()).decode()
    assert metrics.status_code == 200 and 'appliance_http_requests_total{method="GET",route="/api/health"' in text


async def test_redis_down_is_503_naming_redis_and_recovers_by_itself(settings, own_redis):
    settings = settings.model_copy(update={"redis_url": own_redis.url})
    async with open_services(settings) as services:
        app = create_app(services)
        async with app.test_app() as test_app:
            client = test_app.test_client()
            assert (await client.get("/api/health")).status_code == 200
            own_redis.stop()
            response = await client.get("/api/health")
            body = await response.get_json()
            assert response.status_code == 503
            assert body["db"] == "ok" and body["redis"].startswith("down") and body["status"] == "down: redis"
            own_redis.start()
            await own_redis.wait_up()
            with trio.fail_after(10):
                while (await client.get("/api/health")).status_code != 200:
                    await trio.sleep(0.05)


async def test_database_down_is_503_naming_db(settings):
    settings = settings.model_copy(update={"database_url": "postgresql+psycopg://nobody@127.0.0.1:1/none"})
    async with open_services(settings) as services:
        app = create_app(services)
        async with app.test_app() as test_app:
            response = await test_app.test_client().get("/api/health")
            body = await response.get_json()
            assert response.status_code == 503 and body["db"].startswith("down") and body["redis"] == "ok"


async def test_real_hypercorn_socket_serves_and_drains(settings, nursery):
    stop = trio.Event()
    handle = await nursery.start(serve_api, settings, stop)
    status = handle.status()
    url = status.rsplit(" ", 1)[1]
    assert await handle.healthy()
    async with httpx.AsyncClient(base_url=url) as http:
        response = await http.get("/api/health")
        assert response.status_code == 200 and response.json()["redis"] == "ok"
        assert (await http.get("/api/leads")).status_code == 401
    # Over the raw socket: the body is refused from its Content-Length before a byte of it is read.
    host, port = url.removeprefix("http://").split(":")
    stream = await trio.open_tcp_stream(host, int(port))
    async with stream:
        await stream.send_all(b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                              b"Content-Length: %d\r\n\r\n" % (settings.max_body_bytes + 1))
        reply = b""
        with trio.fail_after(5):
            while b"\r\n\r\n" not in reply:
                reply += await stream.receive_some()
    assert reply.startswith(b"HTTP/1.1 413 ")
    stop.set()

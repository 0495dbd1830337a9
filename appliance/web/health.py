"""``/api/health`` (PostgreSQL and Redis, 503 naming what is down) and ``/metrics``."""

from __future__ import annotations

import logging
import time

import trio
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from quart import Blueprint, Quart, g, request

from appliance.jobs.metrics import render as render_job_metrics
from appliance.redis import REDIS_DOWN, is_durable
from appliance.web.context import job_queue, services

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)
CHECK_TIMEOUT = 2.0

REQUESTS = Counter("appliance_http_requests_total", "HTTP requests", ["method", "route", "status"])
IN_PROGRESS = Gauge("appliance_http_requests_in_progress", "HTTP requests being served (this one included)")
LATENCY = Histogram("appliance_http_request_seconds", "HTTP request latency", ["method", "route"])


async def _check(name: str, probe, results: dict[str, str]) -> None:
    try:
        with trio.fail_after(CHECK_TIMEOUT):
            await probe()
        results[name] = "ok"
    except trio.TooSlowError:
        results[name] = f"down: no answer within {CHECK_TIMEOUT:g}s"
    except Exception as exc:  # any failure of the probe means "down"
        results[name] = f"down: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")


@bp.get("/api/health")
async def health():
    svc = services()
    results: dict[str, str] = {}
    durable: list[bool] = []

    async def redis_probe() -> None:
        await svc.redis.ping()
        durable.append(await is_durable(svc.redis))

    # Both probes at once: the answer takes as long as the slower, not the sum. A hung database is cut off
    # at the deadline (Database.run), so the answer comes within CHECK_TIMEOUT whatever is down.
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_check, "db", svc.db.ping, results)
        nursery.start_soon(_check, "redis", redis_probe, results)
    down = sorted(name for name, state in results.items() if state != "ok")
    body = {"status": "ok" if not down else "down: " + ", ".join(down), "db": results["db"],
            "redis": results["redis"], "redis_durable": bool(durable and durable[0])}
    if down:
        log.warning("health: %s", body)
    return body, (503 if down else 200)


@bp.get("/metrics")
async def metrics():
    body = generate_latest()
    queue = job_queue()
    try:
        with trio.fail_after(CHECK_TIMEOUT):
            body += render_job_metrics(await queue.stats(), await queue.durations()).encode()
    except (*REDIS_DOWN, trio.TooSlowError) as exc:
        log.warning("metrics: job figures left out, redis unreachable: %s", exc)
    return body, 200, {"Content-Type": CONTENT_TYPE_LATEST}


def install_request_metrics(app: Quart) -> None:
    @app.before_request
    async def _start() -> None:
        g.request_started = time.perf_counter()
        IN_PROGRESS.inc()

    @app.teardown_request
    async def _finished(_exc: BaseException | None) -> None:
        if getattr(g, "request_started", None) is not None:
            IN_PROGRESS.dec()

    @app.after_request
    async def _observe(response):
        route = request.url_rule.rule if request.url_rule else "unmatched"
        REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        started = getattr(g, "request_started", None)
        if started is not None:
            LATENCY.labels(request.method, route).observe(time.perf_counter() - started)
        return response

"""The jobs page: a dead job with its error and traceback, retried from the page, then runs to completion;
queue depths and jobs/s over the last hour drawn from the scheduler's series."""

from __future__ import annotations

import time
import uuid

import pytest

from appliance.jobs.queue import JobQueue
from appliance.jobs.series import STEP, JobSeries

pytestmark = pytest.mark.slow  # the real appliance as child processes, and Chromium


def wait_status(tenant, job_id: str, status: str) -> dict:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        job = tenant.api.get(f"/api/jobs/{job_id}", params={"wait": 5}).json()["job"]
        if job["status"] == status:
            return job
    raise AssertionError(f"job {job_id} never became {status}: {job}")


def test_a_dead_job_is_retried_from_the_page_and_runs(page, bench, tenant):
    key = uuid.uuid4().hex

    async def seed(services):
        series = JobSeries(services.redis, services.keys)
        now = time.time()
        for back in range(6, 0, -1):  # a few minutes of history for the chart
            await services.redis.incrby(services.keys.stat("finished"), back * 7)
            await series.sample(now - back * STEP)
        return await JobQueue(services.redis, services.keys).enqueue("diagnostics.fail_once", {"key": key})

    job_id = bench.seed(seed)
    dead = wait_status(tenant, job_id, "dead")
    assert "fails on purpose" in dead["error"]

    p = page.page
    p.goto("/jobs")
    row = p.locator(f"#dead-jobs tr[data-job='{job_id}']")
    row.wait_for()
    assert "first run" in row.inner_text() and "fails on purpose" in row.inner_text()
    row.locator("summary", has_text="Traceback").click()
    assert "RuntimeError" in row.locator("pre.trace").inner_text()
    p.locator("#jobs-chart canvas").wait_for()
    legend = p.locator("#jobs-chart .u-legend").inner_text()
    assert "jobs/s" in legend and "low" in legend
    page.shoot("jobs")

    row.get_by_role("button", name="Retry").click()
    row.wait_for(state="detached")  # gone from the dead list
    finished = wait_status(tenant, job_id, "finished")
    assert finished["result"] == {"key": key, "attempt": 1}
    p.locator("#totals").wait_for()

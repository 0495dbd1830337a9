"""The fault matrix, bounded (benchmarks/faults.py has the whole of it): under load, SIGKILL a worker and
SIGKILL-and-restart Redis; nothing accepted is lost or run twice, and what is refused meanwhile is a 503."""

from __future__ import annotations

import pytest
import trio

from benchmarks.faults import matrix


@pytest.mark.slow
async def test_sigkilled_worker_and_restarted_redis_lose_nothing_under_load():
    rows = await trio.to_thread.run_sync(matrix, ["SIGKILL worker", "SIGKILL + restart Redis"], 4.0, 10.0)
    for row in rows:
        assert row["accepted"] > 40, row
        assert row["lost"] == 0 and row["doubled"] == 0, row
        answers = row["answers while down"]
        assert set(answers) <= {"503", "enqueue refused"}, row  # never a 500, never a hang
        assert row["recovery s"] < 30, row

"""A small time series of the job runner for the CRM's chart: every ``STEP`` seconds the scheduler records
the queue depths, the running count and the finished-jobs counter in one sorted set, keeping an hour.

One Lua script takes the sample, so two schedulers record each slot once and the numbers of one sample are
read at one instant. Jobs per second are derived on read, from the counter's rise between samples.
"""

from __future__ import annotations

import json
from typing import Any

from coredis.tokens import PureToken

from appliance.keys import QUEUES, Keys
from appliance.redis import Redis

STEP = 10  # seconds between samples
KEEP = 3600  # seconds of history

# KEYS: series, queue:<q> for each of QUEUES, running, stat:finished
# ARGV: now, step, keep. Returns 1 when a sample was taken, 0 when this slot already has one.
SAMPLE = """
local now, step, keep = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local slot = math.floor(now / step) * step
if redis.call('ZCOUNT', KEYS[1], slot, slot) > 0 then return 0 end
local n = #KEYS
local queued = {}
for i = 2, n - 2 do queued[i - 1] = redis.call('LLEN', KEYS[i]) end
local sample = cjson.encode({t = slot, queued = queued, running = redis.call('ZCARD', KEYS[n - 1]),
                             finished = tonumber(redis.call('GET', KEYS[n]) or '0')})
redis.call('ZADD', KEYS[1], slot, sample)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', slot - keep)
return 1
"""


class JobSeries:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._sample = redis.register_script(SAMPLE)

    async def sample(self, now: float) -> bool:
        keys = [self.keys.job_series, *(self.keys.queue(q) for q in QUEUES), self.keys.running,
                self.keys.stat("finished")]
        return bool(await self._sample(keys=keys, args=[repr(now), str(STEP), str(KEEP)]))

    async def read(self, now: float, seconds: float = KEEP) -> dict[str, Any]:
        """``{"step", "points": [{"t", "queued": {queue: n}, "running", "jobs_per_second"}]}``, oldest first."""
        raw = await self.redis.zrange(self.keys.job_series, now - seconds, "+inf", sortby=PureToken.BYSCORE)
        samples = [json.loads(item) for item in raw]
        points = []
        for before, sample in zip([None, *samples], samples, strict=False):
            rate = 0.0
            if before is not None and sample["t"] > before["t"]:
                rate = max(0.0, (sample["finished"] - before["finished"]) / (sample["t"] - before["t"]))
            queued = sample["queued"] if isinstance(sample["queued"], list) else []
            points.append({"t": sample["t"], "queued": dict(zip(QUEUES, queued, strict=False)),
                           "running": sample["running"], "jobs_per_second": round(rate, 3)})
        return {"step": STEP, "points": points}

"""The idle worker's own blocking-pop connection on real Redis: database selection, timeouts, error replies,
a lost server and a cancelled wait (each leaves the next pop working)."""

from __future__ import annotations

import pytest
import trio

from appliance.jobs.blocking import BlockingConnection
from appliance.redis import REDIS_DOWN, RedisError, open_redis
from tests.conftest import REDIS_URL


async def test_pops_from_the_database_in_the_url_and_times_out_with_none(redis_prefix):
    url = REDIS_URL.rsplit("/", 1)[0] + "/3"
    key = f"{redis_prefix}blocking"
    async with open_redis(url) as other_db:
        await other_db.lpush(key, ["first", "second"])
        on_db3, on_db0 = BlockingConnection(url), BlockingConnection(REDIS_URL)
        try:
            assert await on_db3.brpop([f"{key}:empty", key], 1) == (key, "first")
            assert await on_db0.brpop([key], 0.05) is None  # another database: nothing there
            assert await on_db3.brpop([key], 1) == (key, "second")
            assert await on_db3.brpop([key], 0.05) is None
        finally:
            await other_db.delete([key])
            await on_db3.aclose()
            await on_db0.aclose()


async def test_an_error_reply_is_raised_and_the_next_pop_works(services):
    key = services.keys.prefix + "not-a-list"
    await services.redis.set(key, "x")
    waiting = BlockingConnection(REDIS_URL)
    with pytest.raises(RedisError, match="WRONGTYPE"):
        await waiting.brpop([key], 0.05)
    await services.redis.delete([key])
    await services.redis.lpush(key, ["job"])
    assert await waiting.brpop([key], 1) == (key, "job")
    await waiting.aclose()


async def test_a_cancelled_wait_leaves_nothing_behind(services):
    key = services.keys.prefix + "cancelled"
    waiting = BlockingConnection(REDIS_URL)
    with trio.move_on_after(0.05) as scope:
        await waiting.brpop([key], 5)
    assert scope.cancelled_caught
    # The cancelled BRPOP's connection was closed: a push now is not popped by that dead wait.
    await services.redis.lpush(key, ["job"])
    assert await waiting.brpop([key], 1) == (key, "job")
    await waiting.aclose()


async def test_a_server_lost_mid_wait_is_redis_down_and_the_next_pop_reconnects(own_redis):
    waiting = BlockingConnection(own_redis.url)
    async with trio.open_nursery() as nursery:
        failed = trio.Event()

        async def wait() -> None:
            with pytest.raises(REDIS_DOWN):
                await waiting.brpop(["k"], 30)
            failed.set()

        nursery.start_soon(wait)
        async with open_redis(own_redis.url) as client:  # the pop is waiting once Redis lists it blocked
            while int((await client.info("clients"))["blocked_clients"]) < 1:
                await trio.sleep(0.01)
        own_redis.stop()
        with trio.fail_after(10):
            await failed.wait()
    with pytest.raises(REDIS_DOWN):  # down: the next pop cannot connect
        await waiting.brpop(["k"], 0.05)
    own_redis.start()
    await own_redis.wait_up()
    async with open_redis(own_redis.url) as client:
        await client.lpush("k", ["back"])
    assert await waiting.brpop(["k"], 1) == ("k", "back")
    await waiting.aclose()

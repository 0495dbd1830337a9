"""A business's agent settings: the settings API's new call limits, the CLI, and the config built from them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import trio

from appliance.agent.config import AgentConfig
from appliance.agent.store import business_agent
from appliance.agent.tools import realtime_tools
from tests.conftest import bearer, make_tenant

ROOT = Path(__file__).resolve().parent.parent


async def test_call_limits_through_the_settings_api(services, client):
    _, _, token = await make_tenant(services)
    ok = await client.patch("/api/settings", json={"agent_silence_seconds": 15, "agent_max_call_seconds": 900},
                            headers=bearer(token))
    assert ok.status_code == 200
    settings = (await ok.get_json())["settings"]
    assert (settings["agent_silence_seconds"], settings["agent_max_call_seconds"]) == (15, 900)
    bad = await client.patch("/api/settings", json={"agent_silence_seconds": 1}, headers=bearer(token))
    assert bad.status_code == 422 and "agent_silence_seconds" in (await bad.get_json())["error"]


async def test_the_cli_sets_what_the_agent_then_uses(services, settings):
    business_id, _, _ = await make_tenant(services)
    env = {"DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url, "PATH": "/usr/bin:/bin",
           "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "appliance", "agent", "set", "--business", str(business_id),
            "--greeting", "Shalom, Acme here", "--voice", "marin", "--tools", "save_lead,transfer_call",
            "--transfer-number", "+972 50 000 0000", "--silence", "30"]
    done = await trio.run_process(argv, env=env, capture_stdout=True, capture_stderr=True, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["agent_greeting"] == "Shalom, Acme here"
    bad = await trio.run_process([*argv[:7], "--voice-agent", "robot"], env=env, capture_stdout=True,
                                 capture_stderr=True, check=False)
    assert bad.returncode == 2 and b"voice_agent" in bad.stderr
    config = AgentConfig.for_business(settings, await services.db.run(business_agent, business_id))
    assert (config.greeting, config.voice, config.silence_timeout) == ("Shalom, Acme here", "marin", 30)
    assert config.transfer_number == "+972500000000" and config.max_duration == settings.agent_max_duration
    assert [t["name"] for t in realtime_tools(config)] == ["save_lead", "transfer_call"]

"""``appliance loadtest calls|webhooks``: load generators that print what they measured as JSON."""

from __future__ import annotations

import argparse
from typing import Any

from appliance.settings import Settings


async def run(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    if args.kind == "calls":
        from appliance.loadtest.calls import run_calls

        pids = [int(p) for p in args.server_pid.split(",")] if args.server_pid else None
        return await run_calls(settings, args.calls, args.seconds, args.url, pids)
    from appliance.loadtest.webhooks import run_webhooks

    return await run_webhooks(settings, args.messages, args.duplicates, args.url, concurrency=args.in_flight)

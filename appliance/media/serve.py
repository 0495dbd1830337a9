"""``appliance media``: the media ASGI app on Hypercorn's trio worker, drained call by call on stop."""

from __future__ import annotations

from functools import partial

import trio
from hypercorn.trio import serve as hypercorn_serve

from appliance import hypercorn_patch
from appliance.media.app import MediaApp
from appliance.nursery.role import RoleHandle, tcp_accepts
from appliance.services import open_services
from appliance.serving import hypercorn_config
from appliance.settings import Settings

MAX_WS_MESSAGE = 64 * 1024


async def serve_media(settings: Settings, stop: trio.Event, *,
                      task_status: trio.TaskStatus[RoleHandle] = trio.TASK_STATUS_IGNORED) -> None:
    async with open_services(settings) as services, trio.open_nursery() as nursery:
        # Everything the role loads (the agents' modules, the ORM, a pooled connection) is loaded before
        # the port listens: a call the kernel accepts is one the role is ready for.
        app = MediaApp(services)
        await app.warm_up()
        hypercorn_patch.apply()  # this role's per-frame path, direct writes included (see the module)
        # Calls are drained by the app itself; Hypercorn then only closes what is left.
        config = hypercorn_config(settings.bind_host, settings.media_port, grace=2,
                                  processes=settings.media_processes)
        config.websocket_max_message_size = MAX_WS_MESSAGE
        closed = trio.Event()
        serve = partial(hypercorn_serve, app, config, shutdown_trigger=closed.wait)  # type: ignore[arg-type]
        binds = await nursery.start(serve)  # (MediaApp is a plain ASGI callable; hypercorn types it narrowly)
        port = int(binds[0].rsplit(":", 1)[1]) if binds else settings.media_port
        task_status.started(RoleHandle(
            status=lambda: f"{len(app.live)} calls on {', '.join(binds)}",
            healthy=partial(tcp_accepts, settings.bind_host, port),
        ))
        await stop.wait()
        await app.drain(settings.shutdown_grace)
        closed.set()

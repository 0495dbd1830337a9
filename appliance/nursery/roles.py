"""Role name → serve function ``(settings, stop, *, task_status)``. Imported lazily: a role loads only its own."""

from __future__ import annotations

import trio

from appliance.nursery.role import RoleHandle
from appliance.settings import Settings


async def api(settings: Settings, stop: trio.Event, *, task_status: trio.TaskStatus[RoleHandle]) -> None:
    from appliance.web.serve import serve_api

    await serve_api(settings, stop, task_status=task_status)


async def media(settings: Settings, stop: trio.Event, *, task_status: trio.TaskStatus[RoleHandle]) -> None:
    from appliance.media.serve import serve_media

    await serve_media(settings, stop, task_status=task_status)


async def worker(settings: Settings, stop: trio.Event, *, task_status: trio.TaskStatus[RoleHandle]) -> None:
    from appliance.jobs.worker import serve_worker

    await serve_worker(settings, stop, task_status=task_status)


async def scheduler(settings: Settings, stop: trio.Event, *, task_status: trio.TaskStatus[RoleHandle]) -> None:
    from appliance.jobs.scheduler import serve_scheduler

    await serve_scheduler(settings, stop, task_status=task_status)


# The one place role names are spelled: the order the supervisor starts them in, and which run as N copies.
ROLES = {"api": api, "media": media, "worker": worker, "scheduler": scheduler}
# Run as N processes (N = API_PROCESSES, MEDIA_PROCESSES, WORKERS; api and media share their port through
# SO_REUSEPORT): children role-1..N under the supervisor (a role of one process keeps its plain name, workers
# are always numbered), instances appliance-<role>@N of a template unit under systemd. The rest run once.
REPLICATED = ("api", "media", "worker")
SINGLE = tuple(name for name in ROLES if name not in REPLICATED)


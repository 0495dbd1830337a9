"""Job functions register here with their policy: ``@job("name", queue=..., max_retries=..., timeout=...)``.

A job function takes a :class:`JobContext` first and its JSON arguments as keywords. ``async def`` jobs
run on Trio; plain ``def`` jobs run in a worker thread (Gmail's client library is synchronous).
"""

from __future__ import annotations

import inspect
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from appliance.keys import QUEUES

DEFAULT_TIMEOUT = 300.0
DEFAULT_RETRIES = 3
BACKOFF_BASE = 2.0
BACKOFF_CAP = 3600.0


class JobError(Exception):
    pass


class UnknownJobError(JobError):
    pass


class JobArgumentsError(JobError):
    pass


class JobStateError(JobError):
    pass


class JobNotFoundError(JobStateError):
    pass


@dataclass(frozen=True)
class JobSpec:  # frozen, yet cached_property works: it writes to __dict__ directly
    name: str
    fn: Callable[..., Any]
    queue: str = "default"
    max_retries: int = DEFAULT_RETRIES
    timeout: float = DEFAULT_TIMEOUT

    @cached_property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.fn)

    @cached_property
    def signature(self) -> inspect.Signature:  # computed once: binding runs for every job
        return inspect.signature(self.fn)

    def bind(self, ctx: JobContext, args: dict[str, Any]) -> inspect.BoundArguments:
        try:
            return self.signature.bind(ctx, **args)
        except TypeError as exc:
            raise JobArgumentsError(f"arguments {sorted(args)} no longer match {self.name}: {exc}") from None


@dataclass
class JobContext:
    """What a running job may use: the role's services, its own id and attempt number."""

    job_id: str
    attempt: int
    services: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


REGISTRY: dict[str, JobSpec] = {}


def job(name: str, *, queue: str = "default", max_retries: int = DEFAULT_RETRIES,
        timeout: float = DEFAULT_TIMEOUT) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    if queue not in QUEUES:
        raise ValueError(f"queue must be one of {QUEUES}")

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in REGISTRY and REGISTRY[name].fn is not fn:
            raise ValueError(f"job {name} is registered twice")
        REGISTRY[name] = JobSpec(name, fn, queue, max_retries, timeout)
        return fn

    return register


def lookup(name: str) -> JobSpec:
    load_catalog()
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY)) or "none"
        raise UnknownJobError(f"unknown job {name!r}; known jobs: {known}") from None


def load_catalog() -> None:
    from appliance.jobs import catalog  # noqa: F401 - importing registers every job


def dumps(value: Any, what: str) -> str:
    try:
        return json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise JobArgumentsError(f"{what} must be JSON (str, number, bool, null, list, dict): {exc}") from None


def retry_delay(attempt: int, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter: uniform in [base^attempt / 2, base^attempt], capped."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE ** attempt)
    return (rng or random).uniform(ceiling / 2, ceiling)

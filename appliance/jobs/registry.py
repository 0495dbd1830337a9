"""Job declarations: :class:`JobSpec` (name, ``"module:function"``, policy), :class:`Periodic`, :class:`Catalog`.

A job function takes a :class:`JobContext` first and its JSON arguments as keywords. ``async def`` jobs
run on Trio; plain ``def`` jobs run in a worker thread. Every job is declared in :mod:`appliance.jobs.catalog`.
"""

from __future__ import annotations

import importlib
import inspect
import json
import random
from collections.abc import Callable, Iterable
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
    """A job's name, where its code is (``"module:function"``) and its policy. Declaring one imports nothing:
    producers read the policy; only a worker resolves :attr:`fn`."""

    name: str
    target: str
    queue: str = "default"
    max_retries: int = DEFAULT_RETRIES
    timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        if self.queue not in QUEUES:
            raise ValueError(f"{self.name}: queue must be one of {QUEUES}")
        if ":" not in self.target:
            raise ValueError(f"{self.name}: target must be 'module:function', got {self.target!r}")

    @cached_property
    def fn(self) -> Callable[..., Any]:
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)

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


@dataclass(frozen=True)
class Periodic:
    """A job the scheduler enqueues once every ``seconds`` (once per period, however many schedulers run)."""

    job: str
    seconds: float
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class JobContext:
    """What a running job may use: the role's services, its own id and attempt number."""

    job_id: str
    attempt: int
    services: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


class Catalog:
    """Job declarations by name: a handle passed to the queue, the worker and the scheduler."""

    def __init__(self, jobs: Iterable[JobSpec], periodic: Iterable[Periodic] = ()) -> None:
        self.jobs: dict[str, JobSpec] = {}
        for spec in jobs:
            if spec.name in self.jobs:
                raise ValueError(f"job {spec.name} is declared twice")
            self.jobs[spec.name] = spec
        self.periodic = tuple(periodic)
        for entry in self.periodic:
            self.lookup(entry.job)

    def lookup(self, name: str) -> JobSpec:
        try:
            return self.jobs[name]
        except KeyError:
            known = ", ".join(sorted(self.jobs)) or "none"
            raise UnknownJobError(f"unknown job {name!r}; known jobs: {known}") from None

    def get(self, name: str) -> JobSpec | None:
        return self.jobs.get(name)


def dumps(value: Any, what: str) -> str:
    try:
        return json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise JobArgumentsError(f"{what} must be JSON (str, number, bool, null, list, dict): {exc}") from None


def retry_delay(attempt: int, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter: uniform in [base^attempt / 2, base^attempt], capped."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE ** attempt)
    return (rng or random).uniform(ceiling / 2, ceiling)

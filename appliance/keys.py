"""Every Redis key the appliance uses, in one place. All start with the configured prefix (``appliance:``)."""

from __future__ import annotations

from dataclasses import dataclass

QUEUES = ("high", "default", "low")


@dataclass(frozen=True)
class Keys:
    prefix: str = "appliance:"

    def queue(self, name: str) -> str:
        """LIST of job ids waiting in a priority queue (LPUSH in, RPOP out: FIFO)."""
        return f"{self.prefix}queue:{name}"

    def job(self, job_id: str) -> str:
        """HASH: one job's record."""
        return f"{self.prefix}job:{job_id}"

    @property
    def running(self) -> str:
        """ZSET of running job ids scored by lease expiry (epoch seconds)."""
        return f"{self.prefix}running"

    @property
    def scheduled(self) -> str:
        """ZSET of delayed or retrying job ids scored by due time."""
        return f"{self.prefix}scheduled"

    @property
    def dead(self) -> str:
        """ZSET of dead-lettered job ids scored by time of death."""
        return f"{self.prefix}dead"

    @property
    def failed(self) -> str:
        """ZSET of failed attempts (job ids) scored by time, trimmed."""
        return f"{self.prefix}failed"

    @property
    def wakeup(self) -> str:
        """LIST used only to wake idle workers (one token per enqueue), never holds jobs."""
        return f"{self.prefix}wakeup"

    @property
    def idle(self) -> str:
        """ZSET of workers blocked waiting for work (scored by lease seconds): an enqueue hands one a job."""
        return f"{self.prefix}idle"

    def inbox(self, worker_id: str) -> str:
        """LIST of job rows handed to one idle worker, already leased to it (scripts build the same name)."""
        return f"{self.prefix}inbox:{worker_id}"

    def unique(self, key: str) -> str:
        """STRING: job id holding a unique key while queued or running."""
        return f"{self.prefix}unique:{key}"

    @property
    def workers(self) -> str:
        """ZSET of worker ids scored by last heartbeat."""
        return f"{self.prefix}workers"

    def worker(self, worker_id: str) -> str:
        """HASH: a live worker's pid, host and load, expiring when it stops beating."""
        return f"{self.prefix}worker:{worker_id}"

    def lock(self, name: str) -> str:
        """STRING: a lease lock's holder token, with a TTL."""
        return f"{self.prefix}lock:{name}"

    def stat(self, name: str) -> str:
        """STRING counter."""
        return f"{self.prefix}stat:{name}"

    def idempotency(self, name: str) -> str:
        """STRING: a side effect already done (for example a WhatsApp reply sent)."""
        return f"{self.prefix}done:{name}"

    def login_failures(self, scope: str, who: str) -> str:
        """HASH {n, last}: failed logins of one account (scope "account") or one client address ("address")."""
        return f"{self.prefix}login-failures:{scope}:{who}"

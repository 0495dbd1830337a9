"""Write inbound WhatsApp messages in batches when many arrive together, with no timer and no extra task.

Each job adds its message to the pending list and takes the lock; whoever holds the lock writes everything
pending in one transaction and hands each job its result. While one batch is in the database, the next
one gathers behind the lock, so a flood turns into few transactions and a lone message waits for nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import trio

from appliance.db import Database
from appliance.services import Services
from appliance.whatsapp.inbound import Stored, store_incoming_many
from appliance.whatsapp.incoming import Incoming


@dataclass(eq=False)
class _Item:
    business_id: int
    message: Incoming
    done: trio.Event = field(default_factory=trio.Event)
    result: Stored | None = None
    error: BaseException | None = None


class InboundBatcher:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.pending: list[_Item] = []
        self.lock = trio.Lock()
        self.batches = 0  # transactions written (the tests compare it with the messages stored)

    async def store(self, business_id: int, message: Incoming) -> Stored:
        """What became of the message (see inbound.Stored)."""
        item = _Item(business_id, message)
        self.pending.append(item)
        async with self.lock:
            if not item.done.is_set():
                batch, self.pending = self.pending, []
                try:
                    with trio.CancelScope(shield=True):  # the batch carries other jobs' messages too
                        results = await self.db.run(store_incoming_many, [(i.business_id, i.message) for i in batch])
                except Exception as exc:  # every job of the batch fails and retries
                    for other in batch:
                        other.error = exc
                        other.done.set()
                else:
                    self.batches += 1
                    for other, result in zip(batch, results, strict=True):
                        other.result = result
                        other.done.set()
        if item.error is not None:
            raise item.error
        assert item.result is not None
        return item.result


def inbound_batcher(services: Services) -> InboundBatcher:
    """The role's one batcher (one per worker process), kept on its Services."""
    return services.local.setdefault("whatsapp.batcher", InboundBatcher(services.db))

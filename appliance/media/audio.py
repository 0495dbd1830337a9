"""A bounded trio memory channel that drops the oldest item when full, counting what it dropped.

Live audio loses its value with age: when the consumer falls behind, the stalest frame goes so the
producer (a socket's receive loop) never blocks and the listener hears the newest audio.
"""

from __future__ import annotations

from typing import Generic, TypeVar

import trio

T = TypeVar("T")
FRAME_SECONDS = 0.02  # Twilio sends 20 ms of 8 kHz mu-law per media message


def frames_for(seconds: float) -> int:
    return max(1, round(seconds / FRAME_SECONDS))


class DropOldest(Generic[T]):
    def __init__(self, capacity: int) -> None:
        self.send_channel, self.receive_channel = trio.open_memory_channel[T](capacity)
        self.dropped = 0

    def put(self, item: T) -> bool:
        """Queue ``item`` now; returns False when an older item had to go to make room."""
        try:
            self.send_channel.send_nowait(item)
            return True
        except trio.WouldBlock:
            self.receive_channel.receive_nowait()
            self.dropped += 1
            self.send_channel.send_nowait(item)
            return False

    def flush(self) -> int:
        """Discard everything queued (barge-in); returns how many items went."""
        flushed = 0
        while True:
            try:
                self.receive_channel.receive_nowait()
            except trio.WouldBlock:
                return flushed
            flushed += 1

    async def get(self) -> T:
        return await self.receive_channel.receive()

    def close(self) -> None:
        self.send_channel.close()

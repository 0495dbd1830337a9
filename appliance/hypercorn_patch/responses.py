"""HTTP/1.1 responses: a sized response's head and body in one write.

- ``H11Protocol._send_h11_event`` writes a response's head, its body and its end (``b""`` for a sized
  body) as three writes, each through ``protocol_send``'s lock and shielded ``send_all``. Patched: the head
  of a response with a ``content-length`` is held and goes out with its body in one write (a streamed
  response, without one, still sends its head at once); empty writes are skipped. Api role, 20 webhook
  posts in flight: CPU per post 670-690 -> 600 µs, 1,415-1,492 -> 1,625-1,634 posts/s (A/B, 2 each).
"""

from __future__ import annotations

from typing import Any

import h11
from hypercorn.events import RawData
from hypercorn.protocol.h11 import H11Protocol


async def _send_h11_event(self: H11Protocol, event: Any) -> None:
    try:
        data = self.connection.send(event)
    except h11.LocalProtocolError:
        if self.connection.their_state != h11.ERROR:
            raise
        return
    held = self.__dict__.pop("_held_head", b"")
    if isinstance(event, h11.Response) and any(name == b"content-length" for name, _ in event.headers):
        self.__dict__["_held_head"] = held + data  # its body follows at once: one write for both
        return
    if held or data:
        await self.send(RawData(data=held + data))

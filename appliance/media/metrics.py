"""Prometheus figures of the media role."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import REGISTRY, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, Metric

CALLS_ACTIVE = Gauge("appliance_media_calls_active", "Media streams in progress")
CALLS_ENDED = Counter("appliance_media_calls_ended_total", "Media streams ended, by reason", ["reason"])
GHOSTS = Counter("appliance_media_ghost_sessions_total", "Sockets closed for sending no valid start")
BAD_MESSAGES = Counter("appliance_media_bad_messages_total", "Media messages skipped, by kind", ["kind"])
WEBHOOKS = Counter("appliance_media_webhooks_total", "Twilio webhooks, by route and outcome",
                   ["route", "outcome"])


class FrameCounts:
    """Audio frames by direction: plain integers bumped per frame (a Counter's lock costs more than the
    frame's own bookkeeping), read by Prometheus at scrape time. One Trio thread writes them."""

    def __init__(self) -> None:
        self.inbound = self.outbound = self.dropped = 0

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily("appliance_media_frames", "Audio frames", labels=["direction"])
        for direction, value in (("in", self.inbound), ("out", self.outbound), ("dropped", self.dropped)):
            family.add_metric([direction], value)
        yield family


FRAMES = FrameCounts()
REGISTRY.register(FRAMES)

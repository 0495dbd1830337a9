"""Prometheus figures of the media role."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

CALLS_ACTIVE = Gauge("appliance_media_calls_active", "Media streams in progress")
CALLS_ENDED = Counter("appliance_media_calls_ended_total", "Media streams ended, by reason", ["reason"])
FRAMES = Counter("appliance_media_frames_total", "Audio frames", ["direction"])
FRAMES_IN, FRAMES_OUT, FRAMES_DROPPED = (FRAMES.labels(d) for d in ("in", "out", "dropped"))  # bound once: per frame
GHOSTS = Counter("appliance_media_ghost_sessions_total", "Sockets closed for sending no valid start")
BAD_MESSAGES = Counter("appliance_media_bad_messages_total", "Media messages skipped, by kind", ["kind"])
WEBHOOKS = Counter("appliance_media_webhooks_total", "Twilio webhooks, by route and outcome",
                   ["route", "outcome"])

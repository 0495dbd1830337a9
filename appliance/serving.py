"""Hypercorn's configuration for the roles that listen (api, media): one place for what they share."""

from __future__ import annotations

import logging

from hypercorn.config import Config


def hypercorn_config(host: str, port: int, grace: float) -> Config:
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.graceful_timeout = grace
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    return config

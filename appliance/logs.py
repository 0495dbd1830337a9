"""Logging for every role: one line per record on stderr, which journald reads line by line."""

from __future__ import annotations

import logging
import sys


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("hypercorn.access", "httpx", "httpcore", "alembic.runtime.plugins", "coredis"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

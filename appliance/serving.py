"""What the api and media roles share to serve HTTP: Hypercorn's settings and the listening socket.

Several processes of one role can share a port: each opens its own listener with ``SO_REUSEPORT`` and the
kernel spreads new connections over them (``API_PROCESSES``, ``MEDIA_PROCESSES``). Hypercorn is handed the
socket as ``fd://`` so it uses ours as it is.
"""

from __future__ import annotations

import logging
import socket

from hypercorn.config import Config

BACKLOG = 1024  # a burst of calls or webhooks connecting at once must not overflow the accept queue


def listen_socket(host: str, port: int, *, shared: bool, backlog: int = BACKLOG) -> socket.socket:
    """A bound, listening TCP socket; ``shared`` lets other processes of the role bind the same port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if shared:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def hypercorn_config(host: str, port: int, grace: float, *, processes: int = 1) -> Config:
    """Hypercorn's settings for a role listening on ``host:port``, with ``processes`` sharing the port."""
    config = Config()
    sock = listen_socket(host, port, shared=processes > 1)
    config.bind = [f"fd://{sock.detach()}"]  # Hypercorn owns (and closes) the descriptor from here on
    config.backlog = BACKLOG
    config.graceful_timeout = grace
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    return config

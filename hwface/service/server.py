"""Run the lookup app with uvicorn on a socket bound before start-up, so ``port=0`` picks a free port."""

from __future__ import annotations

import ipaddress
import socket
from typing import Callable

from hwface.errors import HwfaceError


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine (``127.0.0.0/8``, ``::1``, ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (0: a free port).

    Raises
    ------
    HwfaceError
        The address cannot be bound (in use, not this machine's).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise HwfaceError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(1024)
    return sock


def serve(app, host: str = "127.0.0.1", port: int = 0, on_ready: Callable[[str], None] = print) -> None:
    """Serve ``app`` until interrupted; ``on_ready`` gets ``http://host:port`` once connections are accepted."""
    import uvicorn

    sock = bind(host, port)
    actual = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                            http="httptools", loop="uvloop"))
    on_ready(f"http://{host if ':' not in host else f'[{host}]'}:{actual}")
    server.run(sockets=[sock])

"""Several Sanic workers on one port, each with its own listening socket (SO_REUSEPORT).

Sanic 21.12 (Rasa 3.6's) binds one socket in the parent and every worker accepts
on it. Linux wakes the worker that went to sleep last, so keep-alive clients
pile onto one worker: `kefu run --workers 2` with 2 to 8 customers served one
worker's rate (16-17 msgs/s with the caches off, bench/throughput.py), and only
16 customers reached the second worker (33.5). Here the parent's socket only
holds the port (bound, never listening) and each worker listens on a socket of
its own in the same SO_REUSEPORT group, so the kernel spreads new connections
evenly by address. One worker (Sanic's own `serve`) is unchanged.
"""

from __future__ import annotations

import socket
from ipaddress import ip_address
from typing import Any

_installed = False


def _reusable(family: int) -> socket.socket:
    sock = socket.socket(family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    return sock


def _family(host: str) -> int:
    try:
        return socket.AF_INET6 if ip_address(host).version == 6 else socket.AF_INET
    except ValueError:  # a host name: resolved as Sanic's bind_socket would (first address)
        return socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)[0][0]


def hold_port(host: str, port: int, *, backlog: int = 100) -> socket.socket:
    """The parent's socket: takes the port for the group, never accepts (not listening).

    Sanic's `bind_socket` signature; `backlog` is unused here, each worker's own socket listens with it.
    """
    sock = _reusable(_family(host))
    sock.bind((host, port))
    return sock


def own_socket(held: socket.socket, backlog: int) -> socket.socket:
    """A worker's listening socket on the held address, in the same SO_REUSEPORT group."""
    sock = _reusable(held.family)
    sock.bind(held.getsockname()[:2])
    sock.listen(backlog)
    return sock


def install() -> None:
    """Patches Sanic's multi-worker runner (idempotent; a no-op where the OS has no SO_REUSEPORT)."""
    global _installed
    if _installed or not hasattr(socket, "SO_REUSEPORT"):
        return
    from sanic.server import runners

    serve = runners.serve

    def serve_on_own_socket(*args: Any, sock: Any = None, backlog: int = 100, **kwargs: Any) -> Any:
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            held, sock = sock, own_socket(sock, backlog)
            held.close()  # this worker's inherited copy; the parent keeps the port
        return serve(*args, sock=sock, backlog=backlog, **kwargs)

    runners.bind_socket = hold_port
    runners.serve = serve_on_own_socket
    _installed = True

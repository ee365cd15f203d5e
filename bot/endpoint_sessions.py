"""Rasa's requests to its endpoints (the action server, a model server, an NLG server) on kept connections.

Rasa 3.6 opens a new aiohttp `ClientSession` for every request
(`EndpointConfig.request` and the model server pull do `async with
endpoint.session()`): a new TCP connection, and the endpoint's host looked up
again on a thread, for every custom action of every message. On kefu's
order-status conversation that was 4.2 of the 8.8 ms of CPU per message the Rasa
side of the action-server calls took (py-spy at 500 Hz, one customer, caches on).

Installed by `bot.speedups.install()`: `EndpointConfig.session()` hands out one
session per event loop and endpoint settings (headers, basic auth) that stays
open, with Rasa's timeout; everything else about the request stays Rasa's. An
idle connection is closed by this side after 2 s, before Sanic's action server
(keep-alive 5 s) closes it, so a request never goes out on a connection the
server is dropping. The sessions' connections are closed when the process exits.
"""

from __future__ import annotations

import asyncio
import atexit
import weakref
from typing import Any, Dict, Tuple

IDLE_CONNECTION_S = 2.0  # below the 5 s Sanic (the action server, rasa_sdk) keeps an idle connection

_sessions: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Dict[Tuple, Any]]" = weakref.WeakKeyDictionary()


class _Kept:
    """`async with` gives the kept session and leaves it open."""

    def __init__(self, session: Any):
        self.session = session

    async def __aenter__(self) -> Any:
        return self.session

    async def __aexit__(self, *exc: Any) -> None:
        return None


def _key(endpoint: Any) -> Tuple:
    return (tuple(sorted((endpoint.headers or {}).items())),
            tuple(sorted((endpoint.basic_auth or {}).items())))


def _kept_session(original: Any) -> Any:
    def session(self):
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return original(self)  # called outside a loop: Rasa's own, closed by its `async with`
        per_loop = _sessions.setdefault(loop, {})
        key = _key(self)
        kept = per_loop.get(key)
        if kept is None or kept.closed:
            import aiohttp
            from rasa.utils.endpoints import DEFAULT_REQUEST_TIMEOUT

            # Rasa's settings (rasa/utils/endpoints.py EndpointConfig.session), on a connector that keeps connections.
            auth = aiohttp.BasicAuth(self.basic_auth["username"], self.basic_auth["password"]) if self.basic_auth else None
            kept = per_loop[key] = aiohttp.ClientSession(
                headers=self.headers, auth=auth, timeout=aiohttp.ClientTimeout(total=DEFAULT_REQUEST_TIMEOUT),
                connector=aiohttp.TCPConnector(keepalive_timeout=IDLE_CONNECTION_S))
        return _Kept(kept)

    session.__wrapped__ = original
    return session


def _close_all() -> None:
    for per_loop in list(_sessions.values()):
        for kept in per_loop.values():
            try:
                kept.connector.close()
            except Exception:  # noqa: BLE001 - the loop is gone at exit; nothing left to release
                pass


def install() -> None:
    """Idempotent."""
    from rasa.utils.endpoints import EndpointConfig

    if hasattr(EndpointConfig.session, "__wrapped__"):
        return
    EndpointConfig.session = _kept_session(EndpointConfig.session)
    atexit.register(_close_all)

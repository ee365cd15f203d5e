"""The Redis that replicas share (KEFU_REDIS_URL), for retry dedupe and rate limits; None without it.

One asyncio client per event loop (redis-py's asyncio connections belong to the
loop that opened them). Short timeouts: a Redis outage must not stall messages,
so callers treat a Redis error as "unknown" and fall back to their per-process state.
"""

from __future__ import annotations

import asyncio
import os
from typing import Dict, Optional

import redis.asyncio as aioredis

ENV = "KEFU_REDIS_URL"
_clients: Dict[int, aioredis.Redis] = {}


def redis_url(environ=os.environ) -> Optional[str]:
    return environ.get(ENV, "").strip() or None


def client(url: Optional[str] = None) -> Optional[aioredis.Redis]:
    url = url or redis_url()
    if not url:
        return None
    key = id(asyncio.get_running_loop())
    if key not in _clients:
        _clients[key] = aioredis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5,
                                               health_check_interval=5)
    return _clients[key]

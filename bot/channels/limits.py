"""Limits every channel applies to a customer's message: its length, and how often one sender may write.

- Message length: `KEFU_MAX_MESSAGE_CHARS` (default 5000 characters).
- Rate per sender: GCRA (a smooth token bucket) allowing `KEFU_RATE_PER_MINUTE`
  messages a minute (default 30) with bursts of `KEFU_RATE_BURST` (default 10).
  `KEFU_RATE_PER_MINUTE=0` switches it off. Per process by default; with
  KEFU_REDIS_URL the bucket is in Redis (one Lua call, Redis's clock), so all
  replicas share it. If Redis does not answer, the message is allowed (a
  limiter must not turn a Redis outage into a bot outage) and the per-process
  bucket applies.

`check()` answers None (go ahead) or a `Refusal` the channel turns into its own
form: HTTP 413/429 with Retry-After (REST), a polite message (socket.io), a
dropped event after the 200 the platform needs (Slack, WeChat).
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from typing import Callable, Optional, Text

from redis.exceptions import RedisError

from bot import metrics
from bot.channels import shared_state
from bot.channels.ttl import TTLDict

logger = logging.getLogger(__name__)

# KEYS[1] bucket; ARGV: interval_ms, tolerance_ms. Returns 0 (allowed) or ms to wait.
GCRA_LUA = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - tolerance
if now < allow_at then return allow_at - now end
redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now + 1000)
return 0
"""


@dataclass(frozen=True)
class Refusal:
    status: int            # 413 too long, 429 too fast
    reason: Text
    retry_after_s: int = 0

    def headers(self):
        return {"Retry-After": str(self.retry_after_s)} if self.status == 429 else {}


@dataclass(frozen=True)
class LimitSettings:
    max_message_chars: int = 5000
    rate_per_minute: float = 30.0
    burst: int = 10

    @classmethod
    def from_env(cls, environ=os.environ) -> "LimitSettings":
        return cls(int(environ.get("KEFU_MAX_MESSAGE_CHARS", cls.max_message_chars)),
                   float(environ.get("KEFU_RATE_PER_MINUTE", cls.rate_per_minute)),
                   int(environ.get("KEFU_RATE_BURST", cls.burst)))


class Limiter:
    def __init__(self, settings: Optional[LimitSettings] = None, redis_url: Optional[Text] = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings or LimitSettings.from_env()
        self.redis_url = redis_url
        self._clock = clock
        self._tat: TTLDict[Text, float] = TTLDict(3600, clock=clock)

    @property
    def interval_s(self) -> float:
        return 60.0 / self.settings.rate_per_minute

    async def check(self, channel: Text, sender: Optional[Text], text: Optional[Text]) -> Optional[Refusal]:
        refusal = await self._check(channel, sender, text)
        if refusal is not None:
            metrics.REFUSALS.labels(channel, str(refusal.status)).inc()
        return refusal

    async def _check(self, channel: Text, sender: Optional[Text], text: Optional[Text]) -> Optional[Refusal]:
        if text is not None and len(text) > self.settings.max_message_chars:
            return Refusal(413, f"message longer than {self.settings.max_message_chars} characters")
        if self.settings.rate_per_minute <= 0 or not sender:
            return None
        wait_s = await self._shared_wait(f"{channel}:{sender}")
        if wait_s is None:
            wait_s = self._local_wait(f"{channel}:{sender}")
        if wait_s > 0:
            return Refusal(429, "too many messages from this sender", max(1, math.ceil(wait_s)))
        return None

    def _local_wait(self, key: Text) -> float:
        now = self._clock()
        tolerance = self.interval_s * self.settings.burst
        tat = max(self._tat.get(key) or now, now)
        new_tat = tat + self.interval_s
        allow_at = new_tat - tolerance
        if now < allow_at:
            return allow_at - now
        self._tat.set(key, new_tat)
        return 0.0

    async def _shared_wait(self, key: Text) -> Optional[float]:
        client = shared_state.client(self.redis_url)
        if client is None:
            return None
        interval_ms = int(self.interval_s * 1000)
        try:
            wait_ms = await client.eval(GCRA_LUA, 1, f"kefu:rate:{key}", interval_ms, interval_ms * self.settings.burst)
        except (RedisError, OSError) as e:
            logger.warning("rate limit: Redis unavailable (%s); using this process's bucket", e)
            return None
        return int(wait_ms) / 1000.0


_default: Optional[Limiter] = None


def default_limiter() -> Limiter:
    """One limiter per process, from the environment (what the channels use)."""
    global _default
    if _default is None:
        _default = Limiter(redis_url=shared_state.redis_url())
    return _default

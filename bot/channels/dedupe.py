"""Platform retry dedupe: has this message id been received already, by this process or any replica?

Slack and WeChat retry a webhook they think failed; with several replicas the
retry may land on another one. Per process a TTL dict remembers the ids (the
default, no Redis needed); with KEFU_REDIS_URL the first replica to `SET NX`
the id in Redis claims it for all. When Redis does not answer the process falls
back to its own memory (a retry may then be answered twice, never lost).
"""

from __future__ import annotations

import logging
from typing import Optional, Text

from redis.exceptions import RedisError

from bot.channels import shared_state
from bot.channels.ttl import TTLDict

logger = logging.getLogger(__name__)


class Dedupe:
    def __init__(self, namespace: Text, ttl_s: float, redis_url: Optional[Text] = None) -> None:
        self.namespace = namespace
        self.ttl_s = ttl_s
        self.redis_url = redis_url
        self._seen: TTLDict[Text, bool] = TTLDict(ttl_s)

    async def first_time(self, key: Text) -> bool:
        """True for the first delivery of `key` (which is then claimed), False for a retry."""
        if key in self._seen:
            return False
        self._seen.set(key, True)
        client = shared_state.client(self.redis_url)
        if client is None:
            return True
        try:
            claimed = await client.set(f"kefu:dedupe:{self.namespace}:{key}", "1", nx=True, ex=max(1, int(self.ttl_s)))
        except (RedisError, OSError) as e:
            logger.warning("dedupe: Redis unavailable (%s); using this process's memory for %s", e, key)
            return True
        return bool(claimed)

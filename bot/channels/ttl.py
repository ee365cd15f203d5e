"""A dict whose entries expire: remembers platform message ids long enough to spot retries."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Callable, Generic, Hashable, Optional, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TTLDict(Generic[K, V]):
    """Entries live `ttl_s` seconds from when they were set; beyond `max_items` the oldest go first.

    Per process: with several Sanic workers each worker has its own (see README).
    """

    def __init__(self, ttl_s: float, max_items: int = 100_000, clock: Callable[[], float] = time.monotonic):
        if ttl_s <= 0 or max_items <= 0:
            raise ValueError("ttl_s and max_items must be positive")
        self.ttl_s = ttl_s
        self.max_items = max_items
        self._clock = clock
        self._items: "OrderedDict[K, tuple[float, V]]" = OrderedDict()

    def _expire(self) -> None:
        now = self._clock()
        while self._items:
            key, (expires, _) = next(iter(self._items.items()))
            if expires > now and len(self._items) <= self.max_items:
                break
            del self._items[key]

    def get(self, key: K) -> Optional[V]:
        self._expire()
        entry = self._items.get(key)
        return None if entry is None else entry[1]

    def set(self, key: K, value: V) -> None:
        self._items.pop(key, None)
        self._items[key] = (self._clock() + self.ttl_s, value)
        self._expire()

    def __contains__(self, key: object) -> bool:
        self._expire()
        return key in self._items

    def __len__(self) -> int:
        self._expire()
        return len(self._items)

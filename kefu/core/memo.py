"""`Memo`: the last results of a pure function, for serving inputs that repeat.

At peak hour the same short texts come again and again ("hi", "thanks",
"yes", "bye"), and dialogue states repeat far more than texts do. A loaded
model answers them the same way every time, so the serving adapters
(bot/components, bot/speedups) keep their last answers here instead of
running a transformer or TED again. Bounded (least recently used out),
lock-guarded (a Sanic worker is one thread, a test or a batch job may not
be), and off with size 0. Size: `runtime.inference_cache_size()`.

Only for functions whose answer depends on nothing but the key and a model
that does not change while the memo lives: the memo belongs to the loaded
model's component, so a new model starts empty.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Generic, Hashable, List, Optional, Sequence, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Memo(Generic[K, V]):
    def __init__(self, size: int, observe: Optional[Callable[[int, int], None]] = None) -> None:
        """`observe(hits, misses)` is told the outcome of every lookup (e.g. a metrics counter)."""
        if size < 0:
            raise ValueError(f"a memo's size must be >= 0, got {size}")
        self.size = size
        self.hits = 0
        self.misses = 0
        self._values: "OrderedDict[K, V]" = OrderedDict()
        self._lock = threading.Lock()
        self._observe = observe

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, key: object) -> bool:
        """Whether `key`'s value is remembered (a peek: not counted, not moved up)."""
        with self._lock:
            return key in self._values

    def map(self, keys: Sequence[K], compute: Callable[[List[K]], Sequence[V]]) -> List[V]:
        """The value of every key, in order: remembered ones from here, the others from one call of `compute`.

        `compute` gets the distinct missing keys (in first-seen order) and returns their values in that order.
        """
        if self.size == 0:
            self._count(0, len(keys))
            return list(compute(list(keys)))
        found = {}
        with self._lock:
            for key in keys:
                if key in self._values:
                    self._values.move_to_end(key)
                    found[key] = self._values[key]
        missing = list(dict.fromkeys(k for k in keys if k not in found))
        if missing:
            values = list(compute(missing))
            if len(values) != len(missing):
                raise ValueError(f"compute returned {len(values)} values for {len(missing)} keys")
            found.update(zip(missing, values))
            with self._lock:
                for key, value in zip(missing, values):
                    self._values[key] = value
                    self._values.move_to_end(key)
                while len(self._values) > self.size:
                    self._values.popitem(last=False)
        self._count(len(keys) - len(missing), len(missing))
        return [found[k] for k in keys]

    def _count(self, hits: int, misses: int) -> None:
        self.hits += hits
        self.misses += misses
        if self._observe is not None:
            self._observe(hits, misses)

    def get(self, key: K, compute: Callable[[], V]) -> V:
        """The value of one key, computed by `compute()` when it is not remembered."""
        return self.map([key], lambda _: [compute()])[0]

    def clear(self) -> None:
        with self._lock:
            self._values.clear()

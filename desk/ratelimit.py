"""Failed sign-ins per user name and per client address, in a sliding window (in memory: one desk process).

Both keys count, so guessing many passwords for one name and trying one
password on many names from one address are both slowed down; a success clears
the name's count. Blocked attempts get 429 with Retry-After.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from typing import Callable, Deque, Dict, Iterable


class LoginLimiter:
    def __init__(self, attempts: int, window_s: float, clock: Callable[[], float] = time.monotonic):
        self.attempts = attempts
        self.window_s = window_s
        self.clock = clock
        self._failures: Dict[str, Deque[float]] = defaultdict(deque)

    def _recent(self, key: str) -> Deque[float]:
        times = self._failures[key]
        cutoff = self.clock() - self.window_s
        while times and times[0] <= cutoff:
            times.popleft()
        return times

    def retry_after(self, keys: Iterable[str]) -> float:
        """Seconds until another attempt is allowed (0: allowed now)."""
        wait = 0.0
        for key in keys:
            times = self._recent(key)
            if len(times) >= self.attempts:
                wait = max(wait, times[0] + self.window_s - self.clock())
        return wait

    def failed(self, keys: Iterable[str]) -> None:
        now = self.clock()
        for key in keys:
            self._recent(key).append(now)
        if len(self._failures) > 10000:  # forget idle keys so a scan cannot grow memory without bound
            for key in [k for k, v in self._failures.items() if not v]:
                del self._failures[key]

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)

"""A thread-safe sliding-window rate limiter, one per DingTalk API.

DingTalk counts calls per app and API in one-second windows. A token bucket would let up to twice
the limit through inside one of DingTalk's fixed windows; a sliding log of send times guarantees
that no interval of `period_s` sees more than `calls` requests, so no fixed window can either.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class SlidingWindowLimiter:
    """Allow at most `calls` acquisitions in any interval of `period_s` seconds."""

    def __init__(
        self,
        calls: int,
        period_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if calls < 1:
            raise ValueError("a rate limit needs at least one call per period")
        self.calls = calls
        self.period_s = period_s
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()
        self.waited_s = 0.0

    def acquire(self) -> None:
        """Block until one more call fits in the window, then record it."""
        while True:
            with self._lock:
                now = self._clock()
                while self._sent and now - self._sent[0] >= self.period_s:
                    self._sent.popleft()
                if len(self._sent) < self.calls:
                    self._sent.append(now)
                    return
                # at least a microsecond, so float rounding can never spin
                wait = max(1e-6, self._sent[0] + self.period_s - now)
                self.waited_s += wait
            self._sleep(wait)

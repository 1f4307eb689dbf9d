"""The DingTalk platform's limits: access tokens and their expiry, per-API QPS windows (90018),
the monthly quota of metered calls (90020) and the per-IP ban. Each is thread-safe on its own."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import deque

from attendance_pipeline.simulators.scaffold import Tally

logger = logging.getLogger(__name__)


class Tokens:
    """One current access token at a time, renewed on request; each lives ``ttl_s``."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._expiry: dict[str, float] = {}  # token -> monotonic expiry
        self._current: str | None = None

    def issue(self) -> tuple[str, int]:
        """The current token (a new one once it expired), its lifetime extended; and the TTL."""
        now = time.monotonic()
        with self._lock:
            token = self._current
            if token is None or self._expiry.get(token, 0.0) <= now:
                token = secrets.token_hex(16)
                self._current = token
            self._expiry[token] = now + self.ttl_s
            return token, int(self.ttl_s)

    def valid(self, token: str | None) -> bool:
        if not token:
            return False
        with self._lock:
            expiry = self._expiry.get(token)
        return expiry is not None and expiry > time.monotonic()

    def expire_all(self) -> None:
        with self._lock:
            self._expiry.clear()
            self._current = None


class QpsWindows:
    """At most ``qps`` calls per API in each wall-clock second."""

    def __init__(self, qps: int) -> None:
        self.qps = qps
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[int, int]] = {}  # api -> (second, calls)

    def take(self, api: str) -> bool:
        """Whether one more call of ``api`` fits into this second (and count it)."""
        second = int(time.monotonic())
        with self._lock:
            window, used = self._windows.get(api, (second, 0))
            if window != second:
                window, used = second, 0
            if used >= self.qps:
                return False
            self._windows[api] = (window, used + 1)
            return True


class MonthlyQuota:
    """Metered calls per calendar month; a call reserves a slot and gives it back if it fails."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._used = Tally()  # "YYYY-MM" -> served metered calls

    def reserve(self, month: str) -> bool:
        return self._used.take(month, self.limit)

    def release(self, month: str) -> None:
        self._used.bump(month, -1)

    def used(self, month: str) -> int:
        return self._used.get(month)

    def clear(self) -> None:
        self._used.clear()


class IpBans:
    """More than ``limit`` calls from one IP within ``window_s`` bans it for ``ban_s``."""

    def __init__(self, limit: int, window_s: float, ban_s: float) -> None:
        self.limit, self.window_s, self.ban_s = limit, window_s, ban_s
        self._lock = threading.Lock()
        self._calls: dict[str, deque[float]] = {}
        self._banned_until: dict[str, float] = {}

    def banned(self, ip: str) -> bool:
        """Count one call from ``ip``; whether it is (now) banned."""
        now = time.monotonic()
        with self._lock:
            until = self._banned_until.get(ip)
            if until is not None:
                if now < until:
                    return True
                del self._banned_until[ip]
            calls = self._calls.setdefault(ip, deque())
            calls.append(now)
            while calls and calls[0] <= now - self.window_s:
                calls.popleft()
            if len(calls) > self.limit:
                self._banned_until[ip] = now + self.ban_s
                calls.clear()
                logger.debug("dingtalk sim: banning %s for %.0f s", ip, self.ban_s)
                return True
        return False

    def unban(self) -> None:
        """Lift every ban and forget the call history."""
        with self._lock:
            self._calls.clear()
            self._banned_until.clear()

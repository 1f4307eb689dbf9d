"""Bounded retries and per-thread sessions for HTTP calls: the one retry mechanism of the project.

The DingTalk client and the PM adapters both call through `call_with_retries` (tenacity, wrapped
once here); each keeps only how to read its own system's replies. An attempt either returns, or
raises `Retryable` for what another attempt may fix (with the wait the system asked for, if it
named one), or raises its own error for what retrying will not fix, which passes straight through.

- **Bounds**: at most `max_attempts` counted attempts and `max_seconds` in all. A `Retryable` with
  `counts=False` (DingTalk's per-second rate limit, whose only cure is waiting out the second) does
  not use up an attempt; the time bound still stops it. With `wait_past_deadline=False` a wait
  that would end past `max_seconds` is not started; with True only attempts are checked against
  the clock, so a long pause the system demands (DingTalk's five-minute IP ban) is still waited.
- **Waits**: a wait the system asked for (Retry-After, a ban's `wait`, the rate-limit second) is
  honoured in full plus a little jitter; otherwise exponential backoff from `backoff_initial_s`,
  capped at `backoff_max_s`, spread by ±25 % so that worker threads do not retry in step.
- **Giving up** raises `RetriesExhausted` with the last problem; callers turn it into their own
  error and redact their secrets from it.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception_type

T = TypeVar("T")


class Retryable(Exception):
    """An attempt failed in a way another attempt may fix.

    `wait_s`: how long the system asked to be left alone (None: back off). `counts=False`: the
    attempt does not use up one of `max_attempts`.
    """

    def __init__(self, reason: str, *, wait_s: float | None = None, counts: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait_s = wait_s
        self.counts = counts


class RetriesExhausted(Exception):
    """The bounds were reached; `last` is the last attempt's problem."""

    def __init__(self, last: Retryable, attempts: int, elapsed_s: float) -> None:
        self.last = last
        self.attempts = attempts
        self.elapsed_s = elapsed_s
        plural = "" if attempts == 1 else "s"
        super().__init__(
            f"gave up after {attempts} attempt{plural} in {elapsed_s:.1f} s; "
            f"last problem: {last.reason}"
        )


@dataclass(frozen=True)
class RetryBounds:
    """How long and how often to try, and how to wait in between."""

    max_attempts: int
    max_seconds: float
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 8.0
    wait_past_deadline: bool = False


def call_with_retries(
    attempt: Callable[[], T],
    bounds: RetryBounds,
    *,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[int, Retryable], None] | None = None,
) -> T:
    """`attempt()` until it returns; `Retryable` is retried within `bounds`, anything else raises.

    `on_retry(attempt_number, problem)` runs before each wait (for logs and counters).
    """
    started = time.monotonic()
    counted = 0

    def give_up(state: RetryCallState) -> bool:
        nonlocal counted
        problem = _problem(state)
        if problem is None or problem.counts:
            counted += 1
        if counted >= bounds.max_attempts:
            return True
        ahead = 0.0 if bounds.wait_past_deadline else state.upcoming_sleep
        return time.monotonic() - started + ahead >= bounds.max_seconds

    def before_sleep(state: RetryCallState) -> None:
        problem = _problem(state)
        if on_retry is not None and problem is not None:
            on_retry(state.attempt_number, problem)

    retrying = Retrying(
        stop=give_up,
        wait=lambda state: _wait(bounds, state),
        retry=retry_if_exception_type(Retryable),
        sleep=sleep,
        reraise=True,
        before_sleep=before_sleep,
    )
    try:
        for each in retrying:
            with each:
                return attempt()
    except Retryable as exc:
        attempts = int(retrying.statistics.get("attempt_number", 0))
        raise RetriesExhausted(exc, attempts, time.monotonic() - started) from None
    raise AssertionError("unreachable")  # pragma: no cover


def _problem(state: RetryCallState) -> Retryable | None:
    exc = state.outcome.exception() if state.outcome else None
    return exc if isinstance(exc, Retryable) else None


def _wait(bounds: RetryBounds, state: RetryCallState) -> float:
    problem = _problem(state)
    if problem is not None and problem.wait_s is not None:
        return problem.wait_s + random.uniform(0, min(1.0, problem.wait_s * 0.1 + 0.05))
    backoff = bounds.backoff_initial_s * 2 ** (state.attempt_number - 1)
    return min(bounds.backoff_max_s, backoff) * random.uniform(0.75, 1.25)


class ThreadSessions:
    """One `requests.Session` per thread (a session is not safe to share between threads).

    `configure` sets up each new session (auth, default headers).
    """

    def __init__(self, configure: Callable[[requests.Session], None] | None = None) -> None:
        self._configure = configure
        self._local = threading.local()

    def get(self) -> requests.Session:
        """This thread's session, made on first use."""
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            if self._configure is not None:
                self._configure(session)
            self._local.session = session
        return session

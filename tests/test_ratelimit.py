"""The sliding-window limiter never lets more than N calls into any window."""

import threading
import time

from attendance_pipeline.dingtalk.ratelimit import SlidingWindowLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_no_fixed_or_sliding_window_sees_more_than_the_limit():
    clock = FakeClock()
    limiter = SlidingWindowLimiter(20, 1.0, clock=clock, sleep=clock.sleep)
    sent = []
    for i in range(200):
        if i % 7 == 0:
            clock.now += 0.013  # uneven arrivals
        limiter.acquire()
        sent.append(clock.now)
    for start in sent:
        assert sum(1 for t in sent if start <= t < start + 1.0) <= 20
    for second in range(int(sent[-1]) + 1):
        assert sum(1 for t in sent if second <= t < second + 1) <= 20
    # ...and it does not throttle below the limit: 200 calls take about 9-10 s, not more.
    assert sent[-1] <= 10.0


def test_threads_share_one_limit():
    limiter = SlidingWindowLimiter(10, 0.2)
    stamps: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(10):
            limiter.acquire()
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stamps.sort()
    assert len(stamps) == 40
    for i, start in enumerate(stamps):
        within = [t for t in stamps[i:] if t < start + 0.2 - 1e-3]
        assert len(within) <= 10

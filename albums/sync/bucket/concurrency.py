"""How many requests a run keeps in flight: as many as make it faster, never more than the
ceiling (ALBUMS_SYNC_WORKERS), fewer when the bucket asks to slow down.

On loopback a dozen requests in flight keep two cores busy and more only add threads; a
bucket 50-100 ms away needs several times as many, each waiting on the network, to keep the
link busy (issue 29). Neither is known before the run, and both change during it, so the
limit is found by measuring, the way TCP finds its window:

- The run's completions are counted over periods of at least PERIOD_SECONDS and of at
  least `limit` completions (so a period spans a round trip of every request in flight).
- From START, the limit doubles while a period after a step is at least GAIN faster than
  the one before it (a far bucket is found in a few periods, as TCP's slow start finds a
  window). From the first step that did not pay (taken back, the limit then held for HOLD
  periods) or the first slow-down, steps are by STEP only, and tried again after each
  hold, since the link may have changed.
- An answer that asks to slow down (503 SlowDown, 429: counted by the endpoint watch, which
  also retries that request after a pause) halves the limit, not below FLOOR, at most once
  a BACKOFF_GAP, and holds it for HOLD periods.

Memory follows the limit, not the run: each request in flight holds at most one small file
(under 1 MiB) in memory; larger files are read as they are sent.
"""

import math
import threading
import time
from collections.abc import Callable

START = 10  # the first limit: what served every loopback figure in bench/
FLOOR = 2
FIRST_STEP = 2.0  # each step up multiplies the limit by this, until one does not pay
STEP = 1.5  # then by this (at least one more)
GAIN = 0.10  # a step up pays when the next period is this much faster
HOLD = 4  # periods without a step up after one that did not pay, or after a back-off
# A quarter of a second: 100 ms away, 10 in flight finish 10 requests in about that, and the
# climb to 64 takes a second rather than two (1,000 small photos at 100 ms: 6.7-6.9 s
# against 7.4-7.5 s with half a second; the same at 0 and 50 ms, bench/RESULTS-wan.md).
PERIOD_SECONDS = 0.25
BACKOFF_GAP = 1.0  # seconds: the throttled answers of one burst halve the limit once


class Concurrency:
    """The limit of requests in flight for one run (see the module docstring). `finished`
    is called from the run's thread as each request's result comes back; `throttled` gives
    the count of answers so far that asked to slow down (the endpoint watch's)."""

    def __init__(
        self,
        ceiling: int,
        *,
        start: int = START,
        throttled: Callable[[], int] = lambda: 0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.ceiling = ceiling
        self.limit = max(1, min(start, ceiling))
        self.peak = self.limit  # the most it allowed: the run's threads and connections
        self._throttled = throttled
        self._throttles_seen = throttled()
        self._clock = clock
        self._lock = threading.Lock()
        self._period_start = clock()
        self._done = 0
        self._rate: float | None = None  # completions a second in the last period
        self._stepped_from: int | None = None  # the limit before a step not yet judged
        self._hold = 0
        self._step = FIRST_STEP
        self._backed_off_at = float("-inf")

    def finished(self) -> None:
        """One more request came back."""
        with self._lock:
            now = self._clock()
            throttles = self._throttled()
            if throttles > self._throttles_seen:
                self._throttles_seen = throttles
                if now - self._backed_off_at >= BACKOFF_GAP:
                    self._back_off(now)
                return
            self._done += 1
            elapsed = now - self._period_start
            if elapsed >= PERIOD_SECONDS and self._done >= self.limit:
                self._end_period(self._done / elapsed, now)

    def _end_period(self, rate: float, now: float) -> None:
        previous, self._rate = self._rate, rate
        self._done, self._period_start = 0, now
        if self._stepped_from is not None:
            stepped_from, self._stepped_from = self._stepped_from, None
            if previous is not None and rate < previous * (1 + GAIN):
                self.limit, self._hold = stepped_from, HOLD  # it did not pay: back
                self._step = STEP
                return
        if self._hold:
            self._hold -= 1
        elif self.limit < self.ceiling:
            self._stepped_from = self.limit
            step = math.ceil(self.limit * self._step)
            self.limit = min(self.ceiling, max(self.limit + 1, step))
            self.peak = max(self.peak, self.limit)

    def _back_off(self, now: float) -> None:
        self.limit = max(min(FLOOR, self.ceiling), self.limit // 2)
        self._backed_off_at = now
        self._stepped_from, self._hold, self._step = None, HOLD, STEP
        self._done, self._period_start, self._rate = 0, now, None

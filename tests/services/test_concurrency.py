"""The rules that set how many requests a run keeps in flight (albums.sync.bucket.concurrency),
against a simulated link: each request takes a round trip, and the link carries at most so
many requests a second, whatever is in flight."""

from albums.sync.bucket.concurrency import FLOOR, HOLD, PERIOD_SECONDS, START, Concurrency


class Link:
    """A simulated clock and link: `limit` requests in flight finish at min(limit / rtt,
    capacity) a second. Counts the answers that asked to slow down."""

    def __init__(self, *, rtt: float, capacity: float):
        self.rtt = rtt
        self.capacity = capacity
        self.now = 0.0
        self.throttles = 0

    def clock(self) -> float:
        return self.now

    def used(self, concurrency: Concurrency) -> float:
        """The share of the link the limit uses."""
        return min(concurrency.limit / self.rtt, self.capacity) / self.capacity

    def run(self, concurrency: Concurrency, seconds: float) -> list[int]:
        """Requests finishing for `seconds`; the limit after each one."""
        limits = []
        end = self.now + seconds
        while self.now < end:
            rate = min(concurrency.limit / self.rtt, self.capacity)
            self.now += 1 / rate
            concurrency.finished()
            limits.append(concurrency.limit)
        return limits


def controller(link: Link, ceiling: int) -> Concurrency:
    return Concurrency(ceiling, throttled=lambda: link.throttles, clock=link.clock)


def test_a_far_bucket_gets_more_requests_in_flight_while_that_makes_it_faster():
    """100 ms away, a link that carries 400 requests a second: 40 in flight fill it."""
    link = Link(rtt=0.1, capacity=400)
    concurrency = controller(link, ceiling=128)

    limits = link.run(concurrency, seconds=20)

    assert limits[0] == START
    assert link.used(concurrency) >= 0.95
    assert min(limits[len(limits) // 2 :]) >= 38  # and it stays so: 95 % of the link
    # Within a few seconds: each step is one period of at least half a second.
    reached = next(i for i, limit in enumerate(limits) if limit >= 38)
    assert reached < 400 * 4


def test_a_near_bucket_keeps_about_the_limit_it_started_with():
    """Loopback: the CPU carries 300 requests a second from 5 in flight on; more add nothing."""
    link = Link(rtt=5 / 300, capacity=300)
    concurrency = controller(link, ceiling=128)

    limits = link.run(concurrency, seconds=30)

    assert max(limits) <= START * 2  # a probe now and then, taken back
    assert sum(limit == START for limit in limits) > len(limits) * 0.6


def test_the_ceiling_is_never_passed():
    link = Link(rtt=0.1, capacity=10_000)
    concurrency = controller(link, ceiling=16)

    limits = link.run(concurrency, seconds=10)

    assert max(limits) == 16 == concurrency.peak


def test_a_ceiling_below_the_start_is_where_it_starts():
    assert Concurrency(4).limit == 4 and Concurrency(1).limit == 1


def test_slow_down_answers_halve_it_once_a_burst_then_it_grows_again():
    link = Link(rtt=0.1, capacity=400)
    concurrency = controller(link, ceiling=128)
    link.run(concurrency, seconds=10)
    before = concurrency.limit

    link.throttles += 1
    concurrency.finished()
    after_one = concurrency.limit
    for _ in range(20):  # the rest of the burst: every request in flight met a 503
        link.throttles += 1
        concurrency.finished()

    assert after_one == concurrency.limit == before // 2
    # Held for a few periods, then it finds the link again.
    held = link.run(concurrency, seconds=HOLD * PERIOD_SECONDS)
    assert max(held) == before // 2
    link.run(concurrency, seconds=20)
    assert link.used(concurrency) >= 0.95


def test_it_never_goes_below_the_floor():
    link = Link(rtt=0.1, capacity=400)
    concurrency = controller(link, ceiling=128)
    for _ in range(10):
        link.throttles += 1
        link.now += 2  # each a burst of its own
        concurrency.finished()

    assert concurrency.limit == FLOOR


def test_it_doubles_until_a_step_does_not_pay_then_steps_by_half():
    """A link that 64 in flight fill (100 ms, 640 a second): 10, 20, 40, 64 in three
    periods of half a second; once a step has not paid, it goes up by half at most."""
    link = Link(rtt=0.1, capacity=640)
    concurrency = controller(link, ceiling=64)

    limits = link.run(concurrency, seconds=2)

    assert sorted(set(limits)) == [START, 2 * START, 4 * START, 64]

    narrow = Link(rtt=0.1, capacity=300)  # 30 in flight fill it: 80 does not pay
    concurrency = controller(narrow, ceiling=128)
    limits = narrow.run(concurrency, seconds=30)
    last_double = limits.index(8 * START)
    assert max(limits[last_double:]) == 8 * START  # never tried again
    assert max(limits[limits.index(4 * START, last_double) :]) <= 4 * START * 1.5

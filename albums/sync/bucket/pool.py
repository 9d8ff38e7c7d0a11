"""Run a function over a stream of items on a thread pool, a bounded window at a time."""

import queue
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future

TICK_SECONDS = 1.0  # how often the caller's thread wakes while it waits (lease, progress)


def in_pool(
    pool: Executor,
    fn: Callable,
    items: Iterable,
    *,
    window: int | Callable[[], int],
    on_wait: Callable[[], None],
    stop: Callable[[], bool] = lambda: False,
) -> Iterator[tuple[object, Future]]:
    """Run `fn` over `items` on `pool` with at most `window` in flight (a number, or a
    function giving it as it stands: see albums.sync.bucket.concurrency), yielding (item,
    future) as each finishes, and calling `on_wait` at least every TICK_SECONDS meanwhile.

    Stops taking new items once `stop()`, and drops the items handed to the pool that have
    not started yet: they are as if never taken. If taking the next item raises, the items in
    flight are still yielded, then the error is raised: what already went to the bucket gets
    recorded. Ctrl-C is taken the same way, wherever the caller's thread is (waiting here or
    handling what was yielded): nothing new starts, what is in flight finishes and is
    yielded, then KeyboardInterrupt is raised; a second Ctrl-C raises it at once. Memory holds
    the window, never the stream. An `items` that has run out is asked again each time an
    item finishes, until none is in flight: an iterator may give items back that way
    (BucketPool.deletes does, for batches it sends again one key at a time).
    """
    items = iter(items)
    limit = window if callable(window) else lambda: window
    pending: dict[Future, object] = {}
    # Each future puts itself here when done: one wake-up per finished item, where waiting
    # on all of `pending` at once would register with every future in flight each time.
    finished: queue.SimpleQueue[Future] = queue.SimpleQueue()
    broken: list[BaseException] = []  # what stopped `items`, raised once `pending` is done
    with CtrlC() as ctrl_c:

        def stopping() -> bool:
            return bool(broken) or ctrl_c.pressed or stop()

        def fill():
            while len(pending) < limit() and not stopping():
                try:
                    item = next(items)
                except StopIteration:
                    return
                except (Exception, KeyboardInterrupt) as exc:
                    broken.append(exc)
                    return
                future = pool.submit(fn, item)
                pending[future] = item
                future.add_done_callback(finished.put)

        fill()
        while pending:
            if stopping():
                for future in [future for future in pending if future.cancel()]:
                    del pending[future]  # its callback still comes: passed over below
                if not pending:
                    break
            try:
                future = finished.get(timeout=TICK_SECONDS)
            except queue.Empty:
                on_wait()
                continue
            except KeyboardInterrupt as exc:  # where CtrlC could not take the signal
                if any(isinstance(earlier, KeyboardInterrupt) for earlier in broken):
                    raise  # a second Ctrl-C: stop now
                broken.append(exc)
                continue
            on_wait()
            if future in pending:
                yield pending.pop(future), future
                fill()
        if ctrl_c.pressed and not broken:
            broken.append(KeyboardInterrupt())
    if broken:
        raise broken[0]


class CtrlC:
    """While in effect, the first Ctrl-C (SIGINT) only sets `pressed`, so that the uploads in
    flight finish and are recorded, however busy the thread is when it comes; the second
    raises KeyboardInterrupt as usual. Signals reach the main thread only: elsewhere (a web
    request, a worker's thread) this does nothing."""

    def __init__(self):
        self.pressed = False
        self._previous = None

    def __enter__(self) -> "CtrlC":
        main = threading.current_thread() is threading.main_thread()
        if main and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._previous = signal.signal(signal.SIGINT, self._pressed)
        return self

    def _pressed(self, signum, frame) -> None:
        if self.pressed:
            raise KeyboardInterrupt
        self.pressed = True

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

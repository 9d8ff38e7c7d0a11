"""Ctrl-C during a run: what is in flight finishes and is handed back, wherever it comes."""

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from albums.sync.bucket.pool import in_pool


def ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.2)  # the handler runs on this thread, between two bytecodes of the sleep's caller


def test_ctrl_c_while_a_result_is_handled_lets_the_work_in_flight_finish():
    release = threading.Event()

    def work(n: int) -> int:
        if n:
            release.wait(10)
        return n

    handled = []
    with ThreadPoolExecutor(4) as pool, pytest.raises(KeyboardInterrupt):
        for n, future in in_pool(pool, work, range(100), window=4, on_wait=lambda: None):
            if n == 0:
                ctrl_c()  # while this thread is busy with a result, not waiting in the pool
                release.set()
            handled.append(future.result())
    assert sorted(handled) == [0, 1, 2, 3]  # the four in flight, nothing started after
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_ctrl_c_stops_at_once():
    release = threading.Event()
    handled = []
    with ThreadPoolExecutor(2) as pool:
        try:
            with pytest.raises(KeyboardInterrupt):
                for n, _ in in_pool(pool, lambda n: release.wait(10) if n else n, range(10),
                                    window=2, on_wait=lambda: None):  # fmt: skip
                    handled.append(n)
                    ctrl_c()
                    ctrl_c()
        finally:
            release.set()
    assert handled == [0]  # the other one in flight was not waited for
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

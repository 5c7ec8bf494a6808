"""Ctrl-C while the main thread waits on workers: noted, then raised between two waits."""
import os
import signal
import threading

import pytest

from augment.interrupts import POLL_SECONDS, ctrl_c_noted, wait_in_steps


def test_ctrl_c_inside_is_noted_not_raised_and_raised_again_after(ctrl_c_default):
    with ctrl_c_noted() as interrupted:
        assert not interrupted()
        signal.raise_signal(signal.SIGINT)  # a KeyboardInterrupt here would fail the test
        assert interrupted()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)


def test_a_caller_that_ignores_ctrl_c_keeps_ignoring_it(ctrl_c_default):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with ctrl_c_noted() as interrupted:
        signal.raise_signal(signal.SIGINT)
        assert not interrupted()
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_a_caller_s_own_handler_stays_in_place(ctrl_c_default):
    heard = []

    def own(number, frame):
        heard.append(number)

    signal.signal(signal.SIGINT, own)
    with ctrl_c_noted() as interrupted:
        signal.raise_signal(signal.SIGINT)
        assert not interrupted() and heard == [signal.SIGINT]
    assert signal.getsignal(signal.SIGINT) is own


def test_outside_the_main_thread_nothing_changes(ctrl_c_default):
    seen = []

    def run():
        with ctrl_c_noted() as interrupted:  # signal.signal would raise here
            seen.append(interrupted())

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert seen == [False] and signal.getsignal(signal.SIGINT) is signal.default_int_handler


def answer_on_third_ask(asked: list):
    def get(timeout):
        asked.append(timeout)
        if len(asked) < 3:
            raise TimeoutError
        return "result"
    return get


def test_waiting_in_steps_asks_again_until_the_answer_comes():
    asked = []
    assert wait_in_steps(answer_on_third_ask(asked), lambda: False, TimeoutError) == "result"
    assert asked == [POLL_SECONDS] * 3


def test_waiting_in_steps_stops_once_ctrl_c_came():
    asked = []
    with pytest.raises(KeyboardInterrupt):
        wait_in_steps(answer_on_third_ask(asked), lambda: len(asked) == 2, TimeoutError)
    assert len(asked) == 2


def test_waiting_in_steps_waits_through_its_timeouts_only():
    def broken(timeout):
        raise ValueError("the source broke")

    with pytest.raises(ValueError, match="the source broke"):
        wait_in_steps(broken, lambda: False, TimeoutError)


def test_work_on_threads_comes_back_in_order_with_a_bounded_look_ahead():
    import time

    from augment.interrupts import in_order

    begun, lock = [], threading.Lock()

    def work(number):
        with lock:
            begun.append(number)
        time.sleep(0.05 if number % 3 == 0 else 0.001)  # later items often finish first
        return number * 10

    results = []
    for result in in_order(work, range(12), workers=2, ahead=3):
        with lock:
            assert len(begun) <= len(results) + 1 + 3  # never more than 3 begun past the one awaited
        results.append(result)
    assert results == [number * 10 for number in range(12)]


def test_an_error_of_the_work_comes_in_its_turn_and_stopping_early_begins_nothing_more():
    from augment.interrupts import in_order

    def work(number):
        if number == 2:
            raise ValueError("two")
        return number

    results = in_order(work, range(10), workers=2, ahead=2)
    assert [next(results), next(results)] == [0, 1]
    with pytest.raises(ValueError, match="two"):
        next(results)
    begun = []
    stopped = in_order(begun.append, range(100), workers=1, ahead=2)
    next(stopped)
    stopped.close()
    assert len(begun) <= 3


def process_and_square(number: int) -> tuple[int, int]:
    """Work for a worker process: which process did it, and the answer."""
    return os.getpid(), number * number


def test_work_for_processes_is_done_by_them_and_comes_back_in_order():
    """For work that holds Python's lock (dlib): the same order and look-ahead, other processes."""
    from augment.interrupts import in_order

    results = list(in_order(process_and_square, range(8), workers=2, ahead=2, processes=True))
    assert [square for _, square in results] == [number * number for number in range(8)]
    assert os.getpid() not in {pid for pid, _ in results}

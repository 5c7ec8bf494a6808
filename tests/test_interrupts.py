import signal
import threading

import pytest

from augment.interrupts import ctrl_c_noted


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

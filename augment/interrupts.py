"""Ctrl-C while the main thread waits on other threads or processes."""
from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import itertools
import signal
import threading
from typing import Callable, Iterable, Iterator, TypeVar

from augment.processes import package_on_search_path, quiet_worker, worker_context

# How often a wait that defers Ctrl-C looks whether it came.
POLL_SECONDS = 0.1

T = TypeVar("T")
R = TypeVar("R")


@contextlib.contextmanager
def ctrl_c_noted() -> Iterator[Callable[[], bool]]:
    """While inside, Ctrl-C is only noted; yields a function that says whether it came.

    Python raises KeyboardInterrupt wherever the main thread happens to be. Inside a wait on a
    ``threading.Condition`` (a pool's results, a queue) it can strike between the lock's release
    and its re-acquisition, and the program then ends with "RuntimeError: release unlocked lock"
    and a traceback instead of its orderly stop. Inside this context, code waits in steps of
    ``POLL_SECONDS`` and raises KeyboardInterrupt itself, at a point of its choosing, once the
    function says Ctrl-C came. Where Python's default handler is not the one in place (Ctrl-C
    ignored, a handler of the caller's, or not the main thread, where none can be set) nothing
    changes and the function stays False. ``wait_in_steps`` is such a wait.
    """
    came: list[int] = []
    own = (threading.current_thread() is threading.main_thread()
           and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
    if own:
        signal.signal(signal.SIGINT, lambda number, frame: came.append(number))
    try:
        yield lambda: bool(came)
    finally:
        if own:
            signal.signal(signal.SIGINT, signal.default_int_handler)


def wait_in_steps(get: Callable[[float], T], interrupted: Callable[[], bool],
                  not_yet: type[BaseException] | tuple[type[BaseException], ...]) -> T:
    """``get(POLL_SECONDS)`` again until it returns, ``not_yet`` being what it raises when that time
    runs out; KeyboardInterrupt as soon as ``interrupted()`` (from ``ctrl_c_noted``) says Ctrl-C came."""
    while not interrupted():
        try:
            return get(POLL_SECONDS)
        except not_yet:
            pass
    raise KeyboardInterrupt


def in_order(work: Callable[[T], R], items: Iterable[T], workers: int, ahead: int, processes: bool = False
             ) -> Iterator[R]:
    """``work(item)`` for every item, run by ``workers`` threads and yielded in the items' order,
    at most ``ahead`` items begun before their turn (so finished work waiting for an earlier item
    stays bounded). Work that releases Python's lock (decoding, TensorFlow, OpenCV) overlaps.
    With ``processes`` the workers are processes (``augment.processes``), for work that holds the
    lock, as dlib's detectors do: ``work`` must then be a module's function, and it and the items
    must pickle; each process loads what it needs once.

    Ctrl-C raises KeyboardInterrupt at the next wait for a result; work not yet begun is
    dropped, and what is under way is finished first. An exception of ``work`` is raised in turn
    (a worker process that died: ``BrokenProcessPool``).
    """
    pending = iter(items)
    pool = (concurrent.futures.ProcessPoolExecutor(workers, mp_context=worker_context(), initializer=quiet_worker)
            if processes else concurrent.futures.ThreadPoolExecutor(workers))
    with ctrl_c_noted() as interrupted:
        try:
            with package_on_search_path() if processes else contextlib.nullcontext():  # processes start here
                begun = collections.deque(pool.submit(work, item) for item in itertools.islice(pending, max(ahead, 1)))
            while begun:
                result = wait_in_steps(begun.popleft().result, interrupted, concurrent.futures.TimeoutError)
                begun.extend(pool.submit(work, item) for item in itertools.islice(pending, 1))
                yield result
        finally:  # Ctrl-C, an error, or a consumer that stopped early: nothing more is begun
            pool.shutdown(wait=True, cancel_futures=True)

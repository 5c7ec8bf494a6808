"""Worker processes started cleanly, for work that Python's lock would keep on one core (dlib's
detectors hold it): a process per core, each loading its models once.

Workers start from a fresh server process, never by forking the caller: a fork copies OpenCV's
running thread pool (and TensorFlow's) in a broken state and can hang.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.context
import os
import signal
from pathlib import Path
from typing import Iterator

import cv2


def worker_context(preload: tuple[str, ...] = ()) -> multiprocessing.context.BaseContext:
    """Start workers from a server process that has imported the ``preload`` modules once
    (spawned afresh where the platform has no such server)."""
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if "forkserver" in methods and preload:
        context.set_forkserver_preload(list(preload))
    return context


def quiet_worker() -> None:
    """What every worker does first: leave Ctrl-C to the main process, which stops the pool and
    says what was kept (it reaches every process of the terminal's group, and each worker would
    print a traceback), and keep OpenCV to one thread, as the workers already fill the cores."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cv2.setNumThreads(1)


@contextlib.contextmanager
def package_on_search_path() -> Iterator[None]:
    """PYTHONPATH led by the folder this project's packages were imported from, while a pool starts.

    Before Python 3.12.8 the server process imports the preloaded modules without this
    process's ``sys.path`` (CPython issue gh-117378): run from a copy of the project other than
    the installed one, the workers would silently run the installed copy's code. The server
    takes its environment when it starts, so the variable is put back right after.
    """
    saved = os.environ.get("PYTHONPATH")
    here = str(Path(__file__).resolve().parent.parent)
    os.environ["PYTHONPATH"] = os.pathsep.join([here, saved] if saved else [here])
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved

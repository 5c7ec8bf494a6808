"""Worker processes started cleanly, for work that Python's lock would keep on one core (dlib's
detectors hold it): a process per core, each loading its models once.

Workers start from a fresh server process, never by forking the caller: a fork copies OpenCV's
running thread pool (and TensorFlow's) in a broken state and can hang.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.context
import multiprocessing.forkserver
import os
import pickle
import signal
import tempfile
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


def start_server(preload: tuple[str, ...]) -> None:
    """Start the server that ``worker_context(preload)`` starts workers from now, in the background,
    rather than with the first pool: its imports (a third to half a second) then overlap what the
    caller does before it needs workers. Nothing where the platform has no such server."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        worker_context(preload)  # for its setting of what the server imports
        with package_on_search_path():
            multiprocessing.forkserver.ensure_running()


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


@contextlib.contextmanager
def pickled(value: object, folder: Path) -> Iterator[Path]:
    """``value`` pickled to a temporary file in ``folder``, for worker processes to read as they
    start (``unpickled``); the file is removed afterwards.

    Handed to a pool as its workers' start-up arguments, a large value is pickled once for each
    worker and written through that worker's pipe while the calling process waits: the generator's
    28 built-in styles (29 MB) held it up 0.1-0.15 s a worker, each worker starting after the last.
    The file is named as ``images.staged`` names its temporary files (``.NAME.part``), so the
    output folder of a run killed outright is cleared of it by the next run; and it stays off the
    system's temporary folder, which may be memory, however large the styles.
    """
    folder.mkdir(parents=True, exist_ok=True)
    # Closed before the workers open it: Windows opens a file that is open for writing no second time.
    handle, name = tempfile.mkstemp(dir=folder, prefix=".workers.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as file:
            pickle.dump(value, file, protocol=pickle.HIGHEST_PROTOCOL)
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def unpickled(path: Path) -> object:
    """The value ``pickled`` left in ``path``."""
    with open(path, "rb") as file:
        return pickle.load(file)

"""TensorFlow and Keras, imported on first use and without their start-up chatter.

Importing TensorFlow costs seconds and prints C++ log lines (oneDNN notices, absl warnings)
that no environment variable suppresses, so it is imported here, lazily, with the process's
standard error pointed at /dev/null for the duration of the import only.
"""

from __future__ import annotations

import contextlib
import functools
import os
from types import ModuleType
from typing import Iterator


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null inside the block (C++ logs bypass ``sys.stderr``)."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@functools.cache
def tf() -> ModuleType:
    """The ``tensorflow`` module, imported once, quietly."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with quiet_stderr():
        import tensorflow
        tensorflow.get_logger().setLevel("ERROR")
        # The first op creates the oneDNN context, which logs once more.
        tensorflow.constant(0.0) + 1.0
    return tensorflow


@functools.cache
def keras() -> ModuleType:
    """The ``keras`` module (Keras 3 on the TensorFlow backend), imported once, quietly."""
    tf()
    with quiet_stderr():
        import keras as keras_module
    return keras_module

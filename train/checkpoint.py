"""Resuming an interrupted training run: the model and its optimizer saved after every epoch.

A checkpoint is a Keras ``.keras`` file (weights and optimizer state, so the learning-rate
schedule goes on where it stopped) with one more member, ``checkpoint.json``: the epochs done,
their history, and the run's identity (recipe and data), so that a checkpoint of another run is
never resumed by mistake.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from train.backend import keras
from train.model import save_keras_with

if TYPE_CHECKING:  # annotations only: TensorFlow is imported on first use (train.backend)
    from keras import Model
    from keras.callbacks import Callback

STATE = "checkpoint.json"


def read_checkpoint(path: Path) -> dict | None:
    """The state saved in a checkpoint file ({"run", "epochs_done", "history"}), or None if there is no usable one."""
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read(STATE))
    except (OSError, zipfile.BadZipFile, KeyError, json.JSONDecodeError):
        return None


def resume(model: Model, path: Path, run: dict) -> dict | None:
    """Load a checkpoint of this same ``run`` into the compiled ``model`` and return its state; None if there is none.

    ``run``: JSON-able facts that decide the training (recipe, data); a checkpoint saved for
    other facts is left alone.
    """
    state = read_checkpoint(path)
    if state is None or state.get("run") != json.loads(json.dumps(run)):
        return None
    model.optimizer.build(model.trainable_variables)  # so that its saved moments have somewhere to go
    model.load_weights(path)
    return state


def checkpoint_every_epoch(path: Path, run: dict, history: dict[str, list[float]] | None = None) -> Callback:
    """A Keras callback that saves the model, its optimizer and the history so far after every epoch.

    ``history``: the epochs of a resumed run before this one, carried into every save.
    """
    done = {key: list(values) for key, values in (history or {}).items()}

    class Checkpoint(keras().callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            for key, value in (logs or {}).items():
                done.setdefault(key, []).append(float(value))
            save_keras_with(self.model, path, STATE, {"run": run, "epochs_done": epoch + 1, "history": done})

    return Checkpoint()

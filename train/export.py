"""TFLite copies of a trained classifier (float32 and int8), checked against the Keras model.

The int8 model quantises weights and activations, calibrated on real views from the training
run, and keeps float input and output, so it takes the same 0-255 RGB batches as the Keras one.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from augment.images import write_atomic
from train.backend import quiet_stderr, tf

if TYPE_CHECKING:  # annotations only: TensorFlow is imported on first use (train.backend)
    from keras import Model


def convert(model: Model, calibration: np.ndarray | None = None) -> bytes:
    """The model as a TFLite flatbuffer: float32, or int8 when ``calibration`` images are given.

    ``calibration``: (n, size, size, 3) float32 0-255 images the quantiser measures ranges on.
    """
    with tempfile.TemporaryDirectory() as saved, quiet_stderr():
        model.export(saved, format="tf_saved_model", verbose=False)
        converter = tf().lite.TFLiteConverter.from_saved_model(saved)
        if calibration is not None:
            converter.optimizations = [tf().lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: ([image[None]] for image in calibration)
        return converter.convert()


def run_tflite(flatbuffer: bytes, batch: np.ndarray, threads: int = 2) -> np.ndarray:
    """Outputs of a TFLite model for a float32 batch (n, size, size, 3), in one invocation."""
    with warnings.catch_warnings(), quiet_stderr():
        warnings.simplefilter("ignore")  # the deprecation notice of tf.lite.Interpreter
        interpreter = tf().lite.Interpreter(model_content=flatbuffer, num_threads=threads)
        source = interpreter.get_input_details()[0]
        interpreter.resize_tensor_input(source["index"], batch.shape)
        interpreter.allocate_tensors()
    interpreter.set_tensor(source["index"], batch.astype(np.float32))
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).copy()


def export_tflite(model: Model, folder: Path, calibration: np.ndarray, check: np.ndarray, labels: np.ndarray) -> dict:
    """Write ``model.tflite`` and ``model_int8.tflite`` into ``folder``; report each one's agreement.

    ``check``/``labels``: held-out crops and their true label indices; each entry of the result
    has ``path``, ``bytes``, ``n``, ``agreement`` (same top label as Keras) and ``accuracy``.
    """
    expected = model(check, training=False).numpy().argmax(axis=1)
    result = {}
    for name, images in (("float32", None), ("int8", calibration)):
        flatbuffer = convert(model, images)
        path = folder / ("model.tflite" if images is None else "model_int8.tflite")
        write_atomic(path, flatbuffer)
        predicted = run_tflite(flatbuffer, check).argmax(axis=1)
        result[name] = {"path": str(path), "bytes": len(flatbuffer), "n": int(len(check)),
                        "agreement": float(np.mean(predicted == expected)) if len(check) else None,
                        "accuracy": float(np.mean(predicted == labels)) if len(check) else None}
    return result

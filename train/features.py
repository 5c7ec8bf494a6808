"""Images decoded once, views made in parallel by ``tf.data``, base features computed once per view.

The frozen MobileNetV2 gives the same features for the same view every epoch, so the cached
phase pushes each (image, view) pair through it exactly once and trains the head on the stored
vectors; views are rendered on ``tf.data`` worker threads while the network runs.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from augment.images import ImageError, load_rgb
from train.backend import tf
from train.data import Sample
from train.views import Jitter, plain_view, random_view

if TYPE_CHECKING:  # annotations only: TensorFlow is imported on first use (train.backend)
    from keras import Model
    from tensorflow.data import Dataset


def decode_images(paths: list[Path], workers: int = 4, progress: bool = True
                  ) -> tuple[list[np.ndarray | None], list[dict]]:
    """Every image as RGB uint8 (None where unreadable) and one ``{path, reason}`` per failure."""
    def load(path: Path) -> np.ndarray | str:
        try:
            return load_rgb(path)
        except ImageError as error:
            return str(error)

    with ThreadPoolExecutor(workers) as pool:  # decoding releases the GIL
        loaded = list(tqdm(pool.map(load, paths), total=len(paths), desc="decode", unit="img",
                           disable=not progress, leave=False))
    problems = [{"path": str(path), "reason": result} for path, result in zip(paths, loaded)
                if isinstance(result, str)]
    return [None if isinstance(result, str) else result for result in loaded], problems


def view_dataset(images: list[np.ndarray], boxes: list, size: int, views: list[tuple[int, int]],
                 seed: int, augment: bool, batch_size: int, jitter: Jitter = Jitter()) -> Dataset:
    """A ``tf.data.Dataset`` of (batch, size, size, 3) float32 views in the order of ``views``.

    ``views`` lists (image index, view number) pairs; a random view is seeded by the seed, the
    image and the view number, so a run is reproducible whatever the thread timing. Without
    ``augment`` every view is the plain face-box crop.
    """
    def render(pair: np.ndarray) -> np.ndarray:
        index, number = int(pair[0]), int(pair[1])
        if augment:
            rng = np.random.default_rng([seed, index, number])
            view = random_view(images[index], boxes[index], size, rng, jitter)
        else:
            view = plain_view(images[index], boxes[index], size)
        return view.astype(np.float32)

    pairs = np.asarray(views, np.int64).reshape(-1, 2)
    dataset = tf().data.Dataset.from_tensor_slices(pairs)
    dataset = dataset.map(lambda pair: tf().ensure_shape(tf().numpy_function(render, [pair], tf().float32),
                                                         (size, size, 3)),
                          num_parallel_calls=tf().data.AUTOTUNE, deterministic=True)
    return dataset.batch(batch_size).prefetch(tf().data.AUTOTUNE)


def compute_features(features_model: Model, dataset: Dataset, batches: int, description: str, progress: bool = True) -> np.ndarray:
    """Run a model over every batch of ``dataset`` with one compiled function; stack the outputs."""
    forward = tf().function(lambda batch: features_model(batch, training=False), reduce_retracing=True)
    outputs = [forward(batch).numpy() for batch in tqdm(dataset, total=batches, desc=description, unit="batch",
                                                       disable=not progress, leave=False)]
    width = features_model.output_shape[-1]
    return np.concatenate(outputs) if outputs else np.zeros((0, width), np.float32)


def samples_views(samples: list[Sample], count: int) -> list[tuple[int, int]]:
    """(index, view) pairs for ``count`` views of every sample, view-major so each round covers all."""
    return [(index, number) for number in range(count) for index in range(len(samples))]

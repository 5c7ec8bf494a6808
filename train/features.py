"""Images decoded once, views made in parallel by ``tf.data``, base features computed once per view.

The frozen MobileNetV2 gives the same features for the same view every epoch, so the cached
phase pushes each (image, view) pair through it exactly once and trains the head on the stored
vectors; views are rendered on ``tf.data`` worker threads while the network runs.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
from tqdm import tqdm

from augment.images import ImageError, load_rgb, write_atomic
from augment.interrupts import in_order
from train.backend import tf
from train.data import Sample
from train.views import Jitter, plain_view, random_view

# Batches of features a resumable run saves together: at the default 32 a batch, 1,024 views,
# 5 MB of MobileNetV2's 1,280 features each, and 5-15 s of work on two cores.
CHUNK_BATCHES = 32

if TYPE_CHECKING:  # annotations only: TensorFlow is imported on first use (train.backend)
    from keras import Model
    from tensorflow.data import Dataset


def decode_images(paths: list[Path], workers: int = 4, progress: bool = True,
                  reduce: Callable[[int, np.ndarray], np.ndarray] | None = None
                  ) -> tuple[list[np.ndarray | None], list[dict]]:
    """Every image as RGB uint8 (None where unreadable) and one ``{path, reason}`` per file that
    cannot be read. A file listed several times (a full picture, once per face) is decoded once.

    ``reduce(index, image)``, applied as each image is decoded, gives what is kept of it for
    ``paths[index]``: only one full-size image per worker is in memory at a time.
    """
    indices: dict[Path, list[int]] = {}
    for index, path in enumerate(paths):
        indices.setdefault(path, []).append(index)

    def load(path: Path) -> list[np.ndarray] | str:
        try:
            image = load_rgb(path)
        except ImageError as error:
            return str(error)
        return [image if reduce is None else reduce(index, image) for index in indices[path]]

    # Threads: decoding releases the GIL.
    loaded = list(tqdm(in_order(load, indices, workers, ahead=2 * workers), total=len(indices), desc="decode",
                       unit="img", disable=not progress, leave=False))
    images: list[np.ndarray | None] = [None] * len(paths)
    problems = []
    for (path, its_indices), result in zip(indices.items(), loaded):
        if isinstance(result, str):
            problems.append({"path": str(path), "reason": result})
        else:
            for index, image in zip(its_indices, result):
                images[index] = image
    return images, problems


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


def compute_features(features_model: Model, render: Callable[[list[tuple[int, int]]], Dataset],
                     views: list[tuple[int, int]], batch_size: int, description: str, store: Path | None = None,
                     progress: bool = True) -> np.ndarray:
    """The model's output (n, width) float32 for every view in ``views``, in order, by one compiled function.

    ``render(views)`` gives those views as a ``Dataset`` of batches of ``batch_size``. With
    ``store`` (a folder that only this run's features go into), the features are saved there
    CHUNK_BATCHES batches at a time as they are made, and a chunk found there is loaded instead
    of computed: a run interrupted in its longest phase goes on where it stopped, with the
    same numbers (chunks start on batch boundaries, so every batch is the one it would have been).
    """
    forward = tf().function(lambda batch: features_model(batch, training=False), reduce_retracing=True)
    step = CHUNK_BATCHES * batch_size
    parts = []
    with tqdm(total=math.ceil(len(views) / batch_size), desc=description, unit="batch", disable=not progress,
              leave=False) as bar:
        for start in range(0, len(views), step):
            chunk = views[start:start + step]
            path = store / f"{start // step:05d}.npy" if store is not None else None
            part = _stored_chunk(path, len(chunk))
            if part is None:
                outputs = []
                for batch in render(chunk):
                    outputs.append(forward(batch).numpy())
                    bar.update()
                part = np.concatenate(outputs)
                if path is not None:
                    buffer = io.BytesIO()
                    np.save(buffer, part)
                    write_atomic(path, buffer.getvalue())
            else:
                bar.update(math.ceil(len(chunk) / batch_size))
            parts.append(part)
    return np.concatenate(parts) if parts else np.zeros((0, features_model.output_shape[-1]), np.float32)


def _stored_chunk(path: Path | None, rows: int) -> np.ndarray | None:
    """A saved chunk of ``rows`` features, or None when there is none (or a damaged one) to load."""
    if path is None or not path.is_file():
        return None
    try:
        part = np.load(path)
    except (OSError, ValueError):
        return None
    return part if part.ndim == 2 and len(part) == rows else None


def samples_views(samples: list[Sample], count: int, first: int = 0) -> list[tuple[int, int]]:
    """(index, view) pairs for views ``first`` to ``first + count - 1`` of every sample, view-major
    so each round covers all."""
    return [(index, number) for number in range(first, first + count) for index in range(len(samples))]

"""Training the mask-aware face detector on generated scenes (``python -m augment scenes``).

    python -m detect train-detector --scenes dataset_scenes --model models/mask_detector.keras

Each step shows the network a random square cut of a scene at a random zoom, flipped at random;
the targets are rendered from the scene's boxes (``detect.targets``). Scenes are split 90/10 by
a hash of their name; the report (loss curves, validation AP and recall by size) goes to a
folder beside the model, as for the classifier. After every epoch the run is saved to
``unfinished/checkpoint.keras`` in that folder: run again with the same scenes and settings, an
interrupted training goes on from its last finished epoch, with the same cuts it would have seen.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from tqdm import tqdm

from augment.images import load_rgb, write_atomic
from detect.evaluate import evaluate_scenes, score_thresholds
from detect.faces import SCENE_DETECTOR, scene_faces
from detect.network import Detector, build_detector, focal_loss, regression_loss
from detect.targets import STRIDE, render_targets
from train.backend import keras, tf
from augment.dataset import LABELS, split_of
from train.checkpoint import checkpoint_every_epoch, resume
from train.data import DataError
from train.fit import epoch_bar, joined_history, run_folder, unfinished_work
from train.model import load_model_file, require_model_name, save_model_file
from train.report import plot_history

if TYPE_CHECKING:  # annotations only: TensorFlow is imported on first use (train.backend)
    from tensorflow.data import Dataset


# Scenes hold few faces large enough to fill a picture, and real portraits and selfies are
# nothing else: without close-up cuts, the detector boxed eyes as faces on them.
CLOSE_UP = 0.15
CLOSE_UP_MIN_HEIGHT = 60  # px in the scene: zoomed further, a face is a blur no photo has


@dataclass(frozen=True)
class DetectorRecipe:
    """Everything that decides a trained detector besides the scenes."""

    weights: str = "imagenet"
    alpha: float = 0.35
    side: int = 320  # training cuts are side x side pixels
    close_up: float = CLOSE_UP  # share of cuts zoomed onto one face (``training_cut``)
    inference_side: int = 512  # images are scaled so their longest side is this before detection
    epochs: int = 30
    batch_size: int = 16
    learning_rate: float = 1e-3
    seed: int = 0
    start_from: str | None = None  # a detector file whose weights to continue from


def load_scenes(scenes: Path) -> list[dict]:
    """The scene records of a scenes folder (its ``manifest.jsonl``), with paths made absolute."""
    manifest = scenes / "manifest.jsonl"
    if not manifest.is_file():
        raise DataError(f"{scenes}: no manifest.jsonl; make scenes with `python -m augment scenes`")
    records = []
    for number, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            record["path"] = scenes / record["image"]
            well_formed = all(len(item["box"]) == 4 and isinstance(item["label"], str) for item in record["objects"])
        except (json.JSONDecodeError, KeyError, TypeError):
            well_formed = False
        if not well_formed:  # a generator's dataset given for scenes, say
            raise DataError(f"{manifest}: line {number} is not a scene record (image, objects with box and label); "
                            "make scenes with `python -m augment scenes`")
        records.append(record)
    return records


def training_cut(image: np.ndarray, boxes: np.ndarray, side: int, rng: np.random.Generator,
                 close_up: float = CLOSE_UP) -> tuple[np.ndarray, np.ndarray]:
    """A random (side, side, 3) cut of a scene at a random zoom, maybe mirrored, and its boxes moved alike.

    A share ``close_up`` of cuts zoom onto one face of ``CLOSE_UP_MIN_HEIGHT`` px or more until
    it fills 60-110 % of the cut, as a portrait or a selfie does.
    """
    height, width = image.shape[:2]
    tall = [box for box in boxes if box[3] - box[1] >= CLOSE_UP_MIN_HEIGHT]
    if tall and rng.random() < close_up:
        x0, y0, x1, y1 = tall[int(rng.integers(len(tall)))]
        zoom = side * rng.uniform(0.6, 1.1) / (y1 - y0)
        left = side / 2 - (x0 + x1) / 2 * zoom + rng.uniform(-0.15, 0.15) * side
        top = side / 2 - (y0 + y1) / 2 * zoom + rng.uniform(-0.15, 0.15) * side
        matrix = np.array([[zoom, 0, left], [0, zoom, top]], np.float64)
        canvas = cv2.warpAffine(image, matrix, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                borderValue=(int(rng.integers(0, 256)),) * 3)
    else:
        zoom = side / max(height, width) * float(np.exp(rng.uniform(np.log(0.7), np.log(2.0))))
        scaled = cv2.resize(image, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_AREA if zoom < 1 else cv2.INTER_LINEAR)
        canvas = np.full((side, side, 3), rng.integers(0, 256), np.uint8)
        top = int(rng.integers(min(0, side - scaled.shape[0]), max(0, side - scaled.shape[0]) + 1))
        left = int(rng.integers(min(0, side - scaled.shape[1]), max(0, side - scaled.shape[1]) + 1))
        y0, x0 = max(top, 0), max(left, 0)
        y1, x1 = min(top + scaled.shape[0], side), min(left + scaled.shape[1], side)
        canvas[y0:y1, x0:x1] = scaled[y0 - top:y1 - top, x0 - left:x1 - left]
    moved = (boxes * zoom + np.array([left, top, left, top])).astype(np.float32)
    if rng.random() < 0.5:
        canvas = np.ascontiguousarray(canvas[:, ::-1])
        moved = np.stack([side - moved[:, 2], moved[:, 1], side - moved[:, 0], moved[:, 3]], axis=1)
    return canvas, moved


def scene_dataset(records: list[dict], recipe: DetectorRecipe, training: bool, skip: int = 0) -> Dataset:
    """``tf.data`` of (image batch, {heat, regression}) with targets rendered on worker threads.

    ``skip``: training cuts already seen (by an interrupted run); the stream starts after them.
    """
    grid = (recipe.side // STRIDE, recipe.side // STRIDE)
    cache: dict[int, np.ndarray] = {}

    def example(index: np.ndarray, epoch: np.ndarray):
        record = records[int(index)]
        if int(index) not in cache:
            cache[int(index)] = load_rgb(record["path"])
        boxes = np.array([o["box"] for o in record["objects"]], np.float32).reshape(-1, 4)
        labels = np.array([LABELS.index(o["label"]) for o in record["objects"]], np.int64)
        rng = np.random.default_rng([recipe.seed, int(index), int(epoch) if training else 0])
        image, moved = training_cut(cache[int(index)], boxes, recipe.side, rng, recipe.close_up)
        heat, regression, weight = render_targets(moved, labels, grid, len(LABELS))
        return image.astype(np.float32), heat, np.concatenate([regression, weight], axis=2)

    count = len(records)
    indices = np.arange(count)
    epochs = recipe.epochs if training else 1
    pairs = np.stack([np.concatenate([np.random.default_rng([recipe.seed, e]).permutation(indices)
                                      if training else indices for e in range(epochs)]),
                      np.repeat(np.arange(epochs), count)], axis=1)
    data = tf().data.Dataset.from_tensor_slices(pairs)
    if training:  # whole batches per epoch: the last one may wrap round to the first cuts
        data = data.repeat().skip(skip)

    def mapped(pair):
        image, heat, regression = tf().numpy_function(example, [pair[0], pair[1]],
                                                      [tf().float32, tf().float32, tf().float32])
        image.set_shape((recipe.side, recipe.side, 3))
        heat.set_shape((*grid, len(LABELS)))
        regression.set_shape((*grid, 5))
        return image, {"heat": heat, "regression": regression}

    data = data.map(mapped, num_parallel_calls=tf().data.AUTOTUNE, deterministic=True).batch(recipe.batch_size)
    return data.prefetch(tf().data.AUTOTUNE)


def train_detector(scenes: Path, model_path: Path, recipe: DetectorRecipe = DetectorRecipe(),
                   progress: bool = True) -> dict:
    """Train on a scenes folder and save the detector and its report; return the run summary."""
    started = time.perf_counter()
    require_model_name(model_path)
    records = load_scenes(scenes)
    keras().utils.set_random_seed(recipe.seed)  # before building: the new layers' first weights follow it
    model = build_detector(len(LABELS), recipe.weights, recipe.alpha, recipe.side)
    if recipe.start_from:
        model.set_weights(load_model_file(Path(recipe.start_from), "detector")[0].get_weights())
    train = [r for r in records if split_of(r["image"]) != "val"]
    val = [r for r in records if split_of(r["image"]) == "val"]
    steps = math.ceil(len(train) / recipe.batch_size)
    schedule = keras().optimizers.schedules.CosineDecay(recipe.learning_rate, steps * recipe.epochs, alpha=0.05)
    model.compile(optimizer=keras().optimizers.Adam(schedule),
                  loss={"heat": focal_loss, "regression": regression_loss},
                  loss_weights={"heat": 1.0, "regression": 1.0})
    folder = run_folder(model_path)
    names = "\n".join(record["image"] for record in records)
    run = {"recipe": asdict(recipe), "scenes": hashlib.sha256(names.encode()).hexdigest()}
    work = unfinished_work(folder, run)
    checkpoint = work / "checkpoint.keras"
    state = resume(model, checkpoint, run) or {"epochs_done": 0, "history": {}}
    first, earlier = state["epochs_done"], state["history"]
    if progress and first:
        tqdm.write(f"{checkpoint}: resuming after epoch {first} of {recipe.epochs}")
    callbacks = [checkpoint_every_epoch(checkpoint, run, earlier),
                 epoch_bar(recipe.epochs, "detector", progress, first)]
    later = model.fit(scene_dataset(train, recipe, True, skip=first * steps * recipe.batch_size),
                      epochs=recipe.epochs, initial_epoch=first, steps_per_epoch=steps,
                      validation_data=scene_dataset(val, recipe, False) if val else None, verbose=0,
                      shuffle=False, callbacks=callbacks).history
    history = joined_history(earlier, later)
    metadata = {"kind": "detector", "labels": list(LABELS), "input_side": recipe.inference_side, "alpha": recipe.alpha,
                "recipe": asdict(recipe), "scenes": str(scenes), "resize": "area-down-linear-up"}
    save_model_file(model, model_path, metadata)
    plot_history({k: v for k, v in history.items() if k in ("loss", "val_loss")}, folder / "curves.png")
    summary = {"model": str(model_path), "scenes": {"train": len(train), "val": len(val)},
               "seconds": round(time.perf_counter() - started, 1), "resumed_after_epoch": first,
               "history": {k: [float(x) for x in v] for k, v in history.items()}}
    if val:  # the held-out generated scenes, scored as real ones are
        detector = Detector(model, metadata)
        floor, operating = score_thresholds(SCENE_DETECTOR)
        summary["val"] = evaluate_scenes(scenes, lambda rgb: scene_faces(rgb, detector, floor), list(LABELS),
                                         SCENE_DETECTOR, progress, {Path(r["image"]).stem for r in val}, operating)
    write_atomic(folder / "metrics.json", json.dumps(summary, indent=1).encode())
    shutil.rmtree(work)  # the run is complete: a rerun trains afresh
    return summary

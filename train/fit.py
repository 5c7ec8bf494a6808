"""Training a mask classifier: cached head phase, optional fine-tuning, then the run's report.

    python -m train fit --data dataset_generated --model models/mask_classifier.keras

Phase 1 (frozen base): every training image is rendered as ``views`` random degraded views per
head, each pushed through MobileNetV2 once; each head trains on its own views' cached vectors
for ``epochs`` epochs of one view per image each, and the model averages the heads (the curves
drawn are the heads' mean). Phase 2 (``fine_tune_epochs`` > 0): the top blocks are
unfrozen and trained end to end on fresh views at a low learning rate.

The slow work (the features, and every fine-tuning epoch) is saved as it is done in
``unfinished/`` in the run folder: run the same command again on the same data and an
interrupted run goes on from there. The folder goes once the model and its report are written.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from augment.images import held, write_atomic
from train.backend import keras, tf
from train.checkpoint import checkpoint_every_epoch, resume
from train.data import DataError, Sample, copies_together, load_folders
from train.features import compute_features, decode_images, samples_views, view_dataset
from train.export import export_tflite
from train.metrics import classification_report
from train.model import HEAD_SEED_STEP, Classifier, Network, build_network, require_model_name, save_model_file
from train.report import plot_confusion, plot_history, worst_errors
from train.views import RESIZE, plain_view, reduced_for_views

if TYPE_CHECKING:  # annotations only: TensorFlow is imported on first use (train.backend)
    from keras.callbacks import Callback


@dataclass(frozen=True)
class Recipe:
    """Everything that decides a trained model besides the data."""

    weights: str = "imagenet"
    alpha: float = 1.0
    size: int = 224
    epochs: int = 20
    views: int = 2  # random views per training image and head, each through the base once
    heads: int = 3  # heads on the one base, each trained on its own views from its own start; averaged
    batch_size: int = 32
    learning_rate: float = 1e-3
    fine_tune_epochs: int = 0
    fine_tune_from: str = "block_13_expand"  # first unfrozen layer; BatchNorm layers stay frozen
    fine_tune_rate: float = 1e-5
    seed: int = 0


def run_folder(model_path: Path) -> Path:
    """Where a run's report goes: a folder beside the model, named after it."""
    return model_path.with_suffix("")


def unfinished_work(folder: Path, run: dict) -> Path:
    """The folder in ``folder`` that keeps the saved work of ``run`` (JSON-able facts that decide it).

    Work saved there by another run (other data or settings) is thrown away first.
    """
    work = folder / "unfinished"
    stamp = work / "run.json"
    try:
        same = json.loads(stamp.read_text()) == json.loads(json.dumps(run))
    except (OSError, ValueError):
        same = False
    if not same:
        shutil.rmtree(work, ignore_errors=True)
        write_atomic(stamp, json.dumps(run).encode())
    return work


def data_digest(samples: list[Sample]) -> str:
    """A fingerprint of the training data: every file's path, label, split, box, size and time of change."""
    digest = hashlib.sha256()
    for sample in samples:
        try:
            stat = sample.path.stat()
            version = (stat.st_size, stat.st_mtime_ns)
        except OSError:
            version = None
        digest.update(repr((str(sample.path), sample.label, sample.split, sample.box, version)).encode())
    return digest.hexdigest()


def joined_history(earlier: dict[str, list[float]], later: dict[str, list[float]]) -> dict[str, list[float]]:
    """Two Keras histories one after the other, per metric, keys in the order first seen (stable output files)."""
    return {key: list(earlier.get(key, [])) + list(later.get(key, [])) for key in dict.fromkeys([*earlier, *later])}


def epoch_bar(total: int, description: str, enabled: bool = True, done: int = 0) -> Callback:
    """A Keras callback that advances a tqdm bar per epoch, showing the latest losses; ``done`` epochs are already past."""
    class Bar(keras().callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.bar = tqdm(total=total, initial=done, desc=description, unit="epoch", leave=False,
                            disable=not enabled)

        def on_epoch_end(self, epoch, logs=None):
            self.bar.set_postfix({key: f"{value:.3f}" for key, value in (logs or {}).items()
                                  if key in ("loss", "val_accuracy")})
            self.bar.update()

        def on_train_end(self, logs=None):
            self.bar.close()

    return Bar()


def _labelled(samples: list[Sample], images: list, labels: list[str], split: str):
    """The decoded images, boxes, label indices and samples of one split, unreadable ones left out."""
    chosen = [(sample, image) for sample, image in zip(samples, images) if sample.split == split and image is not None]
    return ([image for _, image in chosen], [sample.box for sample, _ in chosen],
            np.array([labels.index(sample.label) for sample, _ in chosen], np.int64), [s for s, _ in chosen])


def class_weights(labels: np.ndarray) -> dict[int, float] | None:
    """Loss weights that give every label present in ``labels`` (label indices) the same total
    weight, so a model trained on a folder with five unmasked faces to each masked one does not
    learn to answer "unmasked"; None when the labels are balanced already (a generated dataset)."""
    counts = np.bincount(labels)
    present = counts[counts > 0]
    if len(present) == 0 or present.min() == present.max():
        return None
    return {label: float(len(labels) / (len(present) * count)) for label, count in enumerate(counts) if count}


def train_head(head: object, train_features: np.ndarray, train_labels: np.ndarray, val_features: np.ndarray,
               val_labels: np.ndarray, recipe: Recipe, images_per_epoch: int, seed: int, progress: bool = True,
               description: str = "head (cached)") -> dict[str, list[float]]:
    """Fit one head on cached features, shuffled by ``seed``; an epoch is one view's worth of
    samples per image. Labels are weighted to count alike (``class_weights``)."""
    data = tf().data.Dataset.from_tensor_slices((train_features, train_labels))
    data = data.shuffle(len(train_labels), seed=seed).repeat().batch(recipe.batch_size)
    validation = (val_features, val_labels) if len(val_labels) else None
    return _fit(head, data, validation, recipe.learning_rate, recipe.epochs,
                math.ceil(images_per_epoch / recipe.batch_size), description, progress,
                weights=class_weights(train_labels))


def mean_history(histories: list[dict[str, list[float]]]) -> dict[str, list[float]]:
    """Several heads' Keras histories as one: per metric, the mean of their values epoch by epoch."""
    return {key: [float(v) for v in np.mean([history[key] for history in histories], axis=0)]
            for key in histories[0]}


def fine_tune(network: Network, images: list, boxes: list, labels: np.ndarray, val_images: list, val_boxes: list,
              val_labels: np.ndarray, recipe: Recipe, progress: bool = True,
              checkpoint: tuple[Path, dict] | None = None) -> dict[str, list[float]]:
    """Unfreeze the base from ``recipe.fine_tune_from`` on (BatchNorm excepted) and train end to end.

    ``checkpoint``: as for ``_fit``; an interrupted fine-tuning goes on after its last saved epoch.
    """
    unfrozen = False
    for layer in network.base.layers:
        unfrozen = unfrozen or layer.name == recipe.fine_tune_from
        layer.trainable = unfrozen and not isinstance(layer, keras().layers.BatchNormalization)
    if not unfrozen:
        raise DataError(f"no layer named {recipe.fine_tune_from!r} in MobileNetV2")
    count = len(labels)
    # Fresh random views every epoch, numbered after the cached phase's views.
    cached = recipe.views * recipe.heads
    pairs = [(index, cached + epoch) for epoch in range(recipe.fine_tune_epochs) for index in range(count)]
    # Views and labels batched alike and zipped batch by batch: both keep their order.
    views = view_dataset(images, boxes, recipe.size, pairs, recipe.seed, True, recipe.batch_size)
    targets = tf().data.Dataset.from_tensor_slices(np.tile(labels, recipe.fine_tune_epochs)).batch(recipe.batch_size)
    data = tf().data.Dataset.zip((views, targets)).repeat().prefetch(tf().data.AUTOTUNE)
    validation = None
    if len(val_labels):
        val_views = view_dataset(val_images, val_boxes, recipe.size, [(i, 0) for i in range(len(val_labels))],
                                 recipe.seed, False, recipe.batch_size)
        val_targets = tf().data.Dataset.from_tensor_slices(val_labels).batch(recipe.batch_size)
        validation = tf().data.Dataset.zip((val_views, val_targets)).cache()
    return _fit(network.model, data, validation, recipe.fine_tune_rate, recipe.fine_tune_epochs,
                math.ceil(count / recipe.batch_size), "fine-tune", progress, checkpoint,
                class_weights(labels))


def _fit(model, data, validation, rate: float, epochs: int, steps: int, description: str,
         progress: bool, checkpoint: tuple[Path, dict] | None = None,
         weights: dict[int, float] | None = None) -> dict[str, list[float]]:
    """Compile for label indices with Adam at ``rate`` and fit ``epochs`` of ``steps``, each label's
    loss weighted by ``weights`` (None: alike); the history.

    ``checkpoint`` (path, run facts): save the model, its optimizer and the history there after
    every epoch, and first go on from such a save of the same run, past the batches it had seen.
    """
    model.compile(optimizer=keras().optimizers.Adam(rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    first, earlier, callbacks = 0, {}, []
    if checkpoint is not None:
        state = resume(model, *checkpoint) or {"epochs_done": 0, "history": {}}
        first, earlier = state["epochs_done"], state["history"]
        callbacks.append(checkpoint_every_epoch(*checkpoint, earlier))
    callbacks.append(epoch_bar(epochs, description, progress, first))
    later = model.fit(data.skip(first * steps), epochs=epochs, initial_epoch=first, steps_per_epoch=steps,
                      validation_data=validation, verbose=0, shuffle=False, callbacks=callbacks,
                      class_weight=weights).history
    return joined_history(earlier, later)


def _decoded(samples: list[Sample], labels: list[str], split_sources: dict[Path, str], size: int, progress: bool
             ) -> tuple[list[Sample], list[np.ndarray | None], list[dict], dict | None]:
    """Every sample's image, decoded and reduced for views of ``size`` (``reduced_for_views``, its
    box moved to match), with the samples so moved, the images that could not be read, and how
    copies of one picture were put in one split within the folders split by file names (None
    where there are none: a manifest gives its splits)."""
    reduced_boxes = [sample.box for sample in samples]

    def reduce(index: int, image: np.ndarray) -> np.ndarray:
        image, reduced_boxes[index] = reduced_for_views(image, samples[index].box, size)
        return image

    images, problems = decode_images([sample.path for sample in samples], progress=progress, reduce=reduce)
    samples = [replace(sample, box=box) for sample, box in zip(samples, reduced_boxes)]
    named = [folder for folder, source in split_sources.items() if source == "file names"]
    by_name = [i for i, sample in enumerate(samples) if any(folder in sample.path.parents for folder in named)]
    if not by_name:
        return samples, images, problems, None
    resplit, copies = copies_together([samples[i] for i in by_name], [images[i] for i in by_name], labels)
    for index, sample in zip(by_name, resplit):
        samples[index] = sample
    return samples, images, problems, copies


def train_heads(network: Network, splits: dict, recipe: Recipe, work: Path, progress: bool
                ) -> tuple[list[dict[str, list[float]]], float, float]:
    """Train each head of ``network`` on features of its own ``recipe.views`` random views of every
    training image (no two heads see the same view), validated on the plain val crops; the features
    are kept in ``work``, so an interrupted run goes on. Returns the heads' histories and the
    seconds spent on features and on the heads."""
    train_images, train_boxes, train_labels, train_samples = splits["train"]
    val_images, val_boxes, val_labels, _ = splits["val"]
    clock = time.perf_counter()
    val_features = compute_features(
        network.features, lambda views: view_dataset(val_images, val_boxes, recipe.size, views, recipe.seed, False,
                                                     recipe.batch_size),
        [(i, 0) for i in range(len(val_labels))], recipe.batch_size, "features (val)", work / "val_features",
        progress)
    features_s, head_s = time.perf_counter() - clock, 0.0
    histories = []
    for number, head in enumerate(network.heads):  # one head's features in memory at a time
        clock = time.perf_counter()
        which = f" {number + 1}/{recipe.heads}" if recipe.heads > 1 else ""
        pairs = samples_views(train_samples, recipe.views, first=number * recipe.views)
        train_features = compute_features(
            network.features, lambda views: view_dataset(train_images, train_boxes, recipe.size, views, recipe.seed,
                                                         True, recipe.batch_size),
            pairs, recipe.batch_size, f"features (train views{', head' + which if which else ''})",
            work / ("train_features" + (f"_{number + 1}" if number else "")), progress)
        features_s += time.perf_counter() - clock
        clock = time.perf_counter()
        histories.append(train_head(head, train_features, np.tile(train_labels, recipe.views), val_features,
                                    val_labels, recipe, len(train_labels), recipe.seed + HEAD_SEED_STEP * number,
                                    progress, f"head{which} (cached)"))
        head_s += time.perf_counter() - clock
    return histories, features_s, head_s


def _what_is_trained_on(samples: list[Sample], labels: list[str], split_sources: dict[Path, str]) -> str:
    """A line per folder: its labels' counts and how it was split; and the counts of all, when the
    labels' losses are weighted to count alike."""
    lines = []
    for folder, source in split_sources.items():
        counts = Counter(sample.label for sample in samples if folder in sample.path.parents)
        lines.append(f"{folder}: " + ", ".join(f"{label} {counts[label]}" for label in labels if counts[label])
                     + f" (split by the {source})")
    counts = Counter(sample.label for sample in samples)
    if len(set(counts.values())) > 1:
        lines.append("labels: " + ", ".join(f"{label} {counts[label]}" for label in labels)
                     + "; each one's loss weighted so that they count alike")
    return "\n".join(lines)


def fit(data: Path | list[Path], model_path: Path, recipe: Recipe = Recipe(), progress: bool = True,
        tflite: bool = False) -> dict:
    """Train on one or more labelled folders (``train.data.load_folders``), save the model and its
    run report; return the run summary.

    Raises ``DataError`` for unusable data and ``ModelError`` for unusable weights, before any
    long work starts, and ``images.FolderBusy`` while another run trains the same model.
    """
    started = time.perf_counter()
    require_model_name(model_path)
    folders = [data] if isinstance(data, Path) else list(data)
    samples, labels, split_sources = load_folders(folders)
    if progress:  # before minutes of work: a wrong folder shows in its labels
        tqdm.write(_what_is_trained_on(samples, labels, split_sources))
        if recipe.weights.lower() == "none":
            tqdm.write("warning: --weights none: the frozen base's random features do not tell masked faces from "
                       "unmasked ones (on real photos: 50 %, every face one label); for a model that works give "
                       "imagenet or a .weights.h5 file", file=sys.stderr)
    # Before building: a base without pretrained weights (``none``) starts from the seed's draws too.
    keras().utils.set_random_seed(recipe.seed)
    network = build_network(recipe.alpha, recipe.weights, recipe.size, len(labels), recipe.seed, heads=recipe.heads)
    samples, images, problems, copies = _decoded(samples, labels, split_sources, recipe.size, progress)
    splits = {name: _labelled(samples, images, labels, name) for name in ("train", "val", "test")}
    train_images, train_boxes, train_labels, _ = splits["train"]
    if len(set(train_labels.tolist())) < 2:
        raise DataError(f"{', '.join(map(str, folders))}: the training split needs images of at least two labels")
    timings = {"decode_s": time.perf_counter() - started}
    folder = run_folder(model_path)
    with held(folder):  # a second run of this model would throw away this one's saved work
        run = {"recipe": asdict(recipe), "data": data_digest(samples)}
        work = unfinished_work(folder, run)
        if progress and any(path.suffix in (".npy", ".keras") for path in work.rglob("*")):
            tqdm.write(f"{work}: going on with the work an interrupted run saved there")

        histories, timings["features_s"], timings["head_s"] = train_heads(network, splits, recipe, work, progress)
        history = mean_history(histories)
        phase_starts = []
        if recipe.fine_tune_epochs:
            clock = time.perf_counter()
            phase_starts.append(recipe.epochs)
            val_images, val_boxes, val_labels, _ = splits["val"]
            tuned = fine_tune(network, train_images, train_boxes, train_labels, val_images, val_boxes, val_labels,
                              recipe, progress, (work / "fine_tune.keras", run))
            history = joined_history(history, tuned)
            timings["fine_tune_s"] = time.perf_counter() - clock

        metadata = {"labels": labels, "input_size": recipe.size, "alpha": recipe.alpha, "resize": RESIZE,
                    "color": "RGB", "input_range": "0-255", "recipe": asdict(recipe),
                    "data": [str(folder) for folder in folders],
                    "split_from": {str(folder): source for folder, source in split_sources.items()}}
        save_model_file(network.model, model_path, metadata)
        crops = {name: _plain_crops(images, boxes, recipe.size) for name, (images, boxes, _, _) in splits.items()}
        metrics = evaluate_splits(Classifier(network.model, metadata), crops, splits, folder)
        timings["total_s"] = time.perf_counter() - started
        summary = {"model": str(model_path), "labels": labels, "split_from": metadata["split_from"],
                   "images": {name: len(split[2]) for name, split in splits.items()},
                   "unreadable": problems, "timings": {k: round(v, 2) for k, v in timings.items()}, "metrics": metrics}
        if copies is not None:
            summary["copies"] = copies
        if tflite:
            summary["tflite"] = export_tflite(network.model, folder, *_tflite_sets(crops, splits))
        write_atomic(folder / "labels.txt", ("\n".join(labels) + "\n").encode())
        write_atomic(folder / "metrics.json", json.dumps(summary, indent=1).encode())
        write_atomic(folder / "history.json", json.dumps({k: [float(v) for v in vs] for k, vs in history.items()},
                                                         indent=1).encode())
        plot_history(history, folder / "curves.png", phase_starts)
        shutil.rmtree(work)  # the run is complete: a rerun starts afresh
        return summary


def _plain_crops(images: list, boxes: list, size: int) -> np.ndarray:
    """The evaluation view of every image, (n, size, size, 3) uint8."""
    return (np.stack([plain_view(image, box, size) for image, box in zip(images, boxes)]) if images
            else np.zeros((0, size, size, 3), np.uint8))


def evaluate_splits(classifier: Classifier, crops: dict[str, np.ndarray], splits: dict, folder: Path) -> dict:
    """Metrics of every non-empty split on its plain face-box crops; plots for val and test."""
    metrics = {}
    for name, (_, _, true, _) in splits.items():
        if not len(true):
            continue
        probabilities = classifier.predict_resized(crops[name])
        metrics[name] = classification_report(true, probabilities.argmax(axis=1), classifier.labels, probabilities)
        if name in ("val", "test"):
            plot_confusion(metrics[name]["confusion"], classifier.labels, folder / f"confusion_{name}.png",
                           f"{name} split")
            worst_errors(list(crops[name]), true, probabilities, classifier.labels, folder / f"errors_{name}.png")
    return metrics


def _tflite_sets(crops: dict[str, np.ndarray], splits: dict, count: int = 128
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Calibration crops (training split) and check crops with labels (test, else val) for TFLite, as float32."""
    step = max(1, len(crops["train"]) // count)
    check = "test" if len(splits["test"][2]) else "val"
    return (crops["train"][::step][:count].astype(np.float32), crops[check].astype(np.float32),
            splits[check][2])

"""Scoring a saved classifier on any labelled folder of real photos.

    python -m train evaluate --model models/mask_classifier.keras --data DIR --report eval.json

Each image is taken as a face crop, or with ``detect`` its largest face is found first (by the
same face module the generator uses) and classified as ``detect`` classifies faces (two views,
``views.face_views``); images with no face found fall back to the whole image, and are counted.
A dataset made by ``python -m augment generate`` is framed by its manifest's face boxes instead:
its crops hold a face in a margin three face widths wide, and its full pictures several faces,
while the classifier learnt, and ``detect`` shows it, the face box.
"""

from __future__ import annotations

import json
import os
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from augment.faces import face_box, find_faces
from augment.geometry import Box, box_area
from augment.images import ImageError, load_rgb, write_atomic
from augment.interrupts import in_order
from train.data import DataError, Sample, load_samples
from train.features import decode_images
from train.metrics import classification_report
from train.model import load_classifier
from train.report import plot_confusion, worst_errors
from train.views import face_views


def largest_face_box(image: np.ndarray, detector: str = "auto") -> Box | None:
    """The box (x0, y0, x1, y1) of the largest face found in an RGB image, or None."""
    faces = find_faces(image, detector)
    if not faces:
        return None
    boxes = [face_box(face.landmarks) for face in faces]
    return max(boxes, key=box_area)


def largest_face_in_file(task: tuple[Path, str]) -> Box | None:
    """``largest_face_box`` of the image file in ``task`` (path, detector): a worker process's
    task. None too for a file that cannot be read; decoding it again says why."""
    path, detector = task
    try:
        return largest_face_box(load_rgb(path), detector)
    except ImageError:
        return None


def largest_faces(paths: list[Path], detector: str, workers: int, progress: bool = True) -> list[Box | None]:
    """``largest_face_in_file`` of every path, in that order, found by ``workers`` processes: dlib
    holds Python's lock, so threads would find faces one image at a time."""
    tasks = [(path, detector) for path in paths]
    found = in_order(largest_face_in_file, tasks, workers, ahead=2 * workers, processes=workers > 1)
    return list(tqdm(found, total=len(tasks), desc="faces", unit="img", disable=not progress, leave=False))


def _samples(folders: list[Path], known: list[str], one_per_image: bool) -> list[Sample]:
    """The labelled samples of ``folders``: a generated dataset's carry the manifest's boxes, one per
    face; with ``one_per_image``, one per image with no box. DataError for a label not in ``known``."""
    samples: list[Sample] = []
    for folder in folders:
        its_samples, labels, _ = load_samples(folder, at_least=1)
        unknown = sorted(set(labels) - set(known))
        if unknown:
            raise DataError(f"{folder}: folder(s) {', '.join(unknown)} are labels the model does not know "
                            f"({', '.join(known)})")
        if one_per_image:
            its_samples = list({sample.path: replace(sample, box=None) for sample in its_samples}.values())
        samples += its_samples
    return samples


def evaluate(model_path: Path, data: Path | list[Path], detect: bool = False, detector: str = "auto",
             errors: Path | None = None, progress: bool = True, workers: int | None = None) -> dict:
    """The report of one model on one or more labelled folders, each with one label folder or more
    (see the module docstring).

    Top level: ``n``, ``accuracy``, ``labels``, ``confusion`` (rows = true), ``per_class``,
    ``skipped`` (unreadable files with reasons), ``predictions`` (one per face: one per image but
    in a generated dataset's full pictures) and, with ``detect``, ``faces_found`` / ``whole_image``
    counts, without it ``manifest_boxes`` (the faces framed by a generated dataset's boxes).
    ``workers``: processes finding the faces with ``detect`` (default: one per core).
    """
    classifier = load_classifier(model_path)
    folders = [data] if isinstance(data, Path) else list(data)
    samples = _samples(folders, classifier.labels, one_per_image=detect)
    paths = [sample.path for sample in samples]
    true = np.array([classifier.labels.index(sample.label) for sample in samples])
    if detect:
        try:
            boxes = largest_faces(paths, detector, workers or os.cpu_count() or 1, progress)
        except BrokenProcessPool:
            raise DataError(f"{', '.join(map(str, folders))}: a process finding the faces died (too little "
                            "memory?)") from None
        samples = [replace(sample, box=box) for sample, box in zip(samples, boxes)]

    def views_of(index: int, image: np.ndarray) -> np.ndarray:
        # Kept instead of the photo as it is decoded: a folder of large photos need not fit in memory.
        return face_views(image, samples[index].box, classifier.size)

    decoded, skipped = decode_images(paths, progress=progress, reduce=views_of)
    kept = [i for i, image_views in enumerate(decoded) if image_views is not None]
    views = [decoded[i] for i in kept]
    probabilities = classifier.predict_views(views)
    true = true[kept]
    predicted = probabilities.argmax(axis=1)
    report = classification_report(true, predicted, classifier.labels, probabilities)
    report["skipped"] = skipped
    if detect:
        report["faces_found"] = sum(samples[i].box is not None for i in kept)
        report["whole_image"] = len(kept) - report["faces_found"]
    else:
        report["manifest_boxes"] = sum(samples[i].box is not None for i in kept)
    report["predictions"] = [
        {"path": str(paths[i]), "label": classifier.labels[t], "predicted": classifier.labels[p],
         "confidence": round(float(probabilities[k, p]), 4),
         **({"box": [round(v, 1) for v in samples[i].box]} if samples[i].box is not None else {})}
        for k, (i, t, p) in enumerate(zip(kept, true, predicted))
    ]
    if errors is not None:
        report["errors_shown"] = min(36, worst_errors([face[0] for face in views], true, probabilities,
                                                      classifier.labels, errors))
    return report


def write_report(report: dict, path: Path, confusion_plot: bool = True) -> None:
    """The report as JSON (atomically) and, beside it, its confusion matrix as a picture."""
    write_atomic(path, json.dumps(report, indent=1).encode())
    if confusion_plot and report["n"]:
        plot_confusion(report["confusion"], report["labels"], path.with_suffix(".confusion.png"), path.stem)

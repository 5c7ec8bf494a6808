"""Scoring detection on annotated scenes (PASCAL VOC): AP@0.5, recall by box size, found vs misclassified.

    python -m detect evaluate --model M --data DIR --report eval.json

``DIR`` holds ``images/`` and ``annotations/`` (one VOC ``.xml`` per image). A ground-truth box
is *found* when a detection overlaps it at IoU >= 0.3 (hand-drawn boxes hold more forehead and
chin than a detector's), *recalled* when that detection's label is also right. Detections are
matched one to one, best overlap first. AP uses IoU >= 0.5, VOC's all-point interpolation.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from augment.faces import Box, box_iou
from augment.images import ImageError, load_rgb
from detect.faces import LabelledFace, Labeller
from train.data import DataError

FOUND_IOU = 0.3
AP_IOU = 0.5
BUCKETS = (("<24", 0, 24), ("24-40", 24, 40), (">=40", 40, float("inf")))


@dataclass(frozen=True)
class Truth:
    """One annotated face: its box and class."""

    box: Box
    label: str

    @property
    def bucket(self) -> str:
        height = self.box[3] - self.box[1]
        return next(name for name, low, high in BUCKETS if low <= height < high)


def read_voc(path: Path) -> tuple[str, list[Truth]]:
    """The image file name and boxes of one VOC annotation; ``DataError`` naming the file if malformed."""
    try:
        root = ElementTree.parse(path).getroot()
        truths = []
        for item in root.iter("object"):
            box = item.find("bndbox")
            corners = tuple(float(box.find(key).text) for key in ("xmin", "ymin", "xmax", "ymax"))
            truths.append(Truth(corners, item.find("name").text.strip()))
        return root.find("filename").text.strip(), truths
    except (ElementTree.ParseError, AttributeError, TypeError, ValueError) as error:
        raise DataError(f"{path}: not a PASCAL VOC annotation ({error})") from None


def match(truths: list[Truth], faces: list[LabelledFace], threshold: float) -> dict[int, int]:
    """One-to-one matches {truth index: face index} at IoU >= threshold, highest overlap first."""
    pairs = sorted(((box_iou(t.box, f.box), i, j) for i, t in enumerate(truths) for j, f in enumerate(faces)),
                   reverse=True)
    matched, used = {}, set()
    for overlap, i, j in pairs:
        if overlap < threshold:
            break
        if i not in matched and j not in used:
            matched[i] = j
            used.add(j)
    return matched


def average_precision(scores: list[float], hits: list[bool], positives: int) -> float | None:
    """Area under the precision-recall curve (all points, precision made monotone), as VOC 2010+."""
    if positives == 0:
        return None
    order = np.argsort(-np.asarray(scores), kind="stable")
    hits_sorted = np.asarray(hits, dtype=float)[order]
    true_positives = np.cumsum(hits_sorted)
    recall = np.concatenate([[0.0], true_positives / positives, [1.0]])
    precision = np.concatenate([[1.0], true_positives / np.arange(1, len(hits_sorted) + 1), [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def ap_hits(truths: list[Truth], faces: list[LabelledFace], label: str) -> tuple[list[float], list[bool]]:
    """For AP of one class in one image: each detection of that class, its confidence and whether it is a hit."""
    targets = [t for t in truths if t.label == label]
    taken: set[int] = set()
    scores, hits = [], []
    for face in sorted((f for f in faces if f.label == label), key=lambda f: -f.confidence):
        overlaps = [box_iou(t.box, face.box) for t in targets]
        best = int(np.argmax(overlaps)) if overlaps else -1
        hit = best >= 0 and overlaps[best] >= AP_IOU and best not in taken
        if hit:
            taken.add(best)
        scores.append(face.confidence)
        hits.append(hit)
    return scores, hits


def evaluate_scenes(data: Path, find: Labeller, labels: list[str], detector: str, progress: bool = True,
                    names: set[str] | None = None) -> dict:
    """The report described in the module docstring for one VOC folder.

    ``find`` labels the faces of an image (``detect.faces.make_labeller``), ``labels`` are the
    labels it can give, ``detector`` names it in the report; ``names`` keeps only the
    annotations of those image stems.
    """
    annotations = sorted(path for path in (data / "annotations").glob("*.xml") if names is None or path.stem in names)
    if not annotations:
        raise DataError(f"{data}: no annotations/*.xml found")
    counts: dict[str, dict] = {}
    ap_parts: dict[str, tuple[list, list]] = {label: ([], []) for label in labels}
    skipped, seconds, images = [], 0.0, 0

    def tally(label: str, bucket: str, key: str, value: bool) -> None:
        table = counts.setdefault(label, {k: {b: [0, 0] for b, _, _ in BUCKETS} for k in ("found", "recall")})
        table[key][bucket][0] += value
        table[key][bucket][1] += 1

    for path in tqdm(annotations, desc=f"evaluate ({detector})", unit="img", disable=not progress):
        name, truths = read_voc(path)
        try:
            rgb = load_rgb(data / "images" / name)
        except ImageError as error:
            skipped.append({"path": str(data / "images" / name), "reason": str(error)})
            continue
        started = time.perf_counter()
        faces = find(rgb)
        seconds += time.perf_counter() - started
        images += 1
        matched = match(truths, faces, FOUND_IOU)
        for index, truth in enumerate(truths):
            found = index in matched
            tally(truth.label, truth.bucket, "found", found)
            if truth.label in labels:
                tally(truth.label, truth.bucket, "recall", found and faces[matched[index]].label == truth.label)
        for label in labels:
            scores, hits = ap_hits(truths, faces, label)
            ap_parts[label][0].extend(scores)
            ap_parts[label][1].extend(hits)

    classes = {}
    for label, table in sorted(counts.items()):
        known = label in labels
        positives = sum(total for _, total in table["found"].values())
        entry = {"n": positives, "ap50": average_precision(*ap_parts[label], positives) if known else None}
        for key in ("recall", "found"):
            if key == "recall" and not known:
                entry[key] = None
                continue
            shares = {bucket: (hit / total if total else None) for bucket, (hit, total) in table[key].items()}
            hit_all = sum(hit for hit, _ in table[key].values())
            entry[key] = {**shares, "all": hit_all / positives if positives else None}
        entry["n_by_size"] = {bucket: total for bucket, (_, total) in table["found"].items()}
        if known:
            found_all = sum(hit for hit, _ in table["found"].values())
            recalled = sum(hit for hit, _ in table["recall"].values())
            entry["missed_by_detector"] = positives - found_all
            entry["misclassified"] = found_all - recalled
        classes[label] = entry
    return {"detector": detector, "images": images,
            "ms_per_image": round(1000 * seconds / max(images, 1), 1), "classes": classes, "skipped": skipped}

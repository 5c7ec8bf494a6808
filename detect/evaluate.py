"""Scoring detection on annotated scenes (PASCAL VOC): AP@0.5, recall by box size, found vs misclassified.

    python -m detect evaluate --model M --data DIR --report eval.json

``DIR`` holds ``images/`` and ``annotations/`` (one VOC ``.xml`` per image). A ground-truth box
is *found* when a detection overlaps it at IoU >= 0.3 (hand-drawn boxes hold more forehead and
chin than a detector's), *recalled* when that detection's label is also right, and *recalled at
0.5* when the overlap is IoU >= 0.5 too. Detections are matched one to one, best overlap first;
only those scoring the operating threshold count for recall. AP uses IoU >= 0.5, VOC's all-point
interpolation, over every detection returned; the size-limited AP (faces ``AP_MIN_HEIGHT`` px or
taller) ignores smaller faces and unmatched detections smaller than that, as COCO's size ranges do.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from augment.geometry import Box, box_iou
from augment.images import ImageError, load_rgb
from detect.faces import SCENE_DETECTOR, SCENE_THRESHOLD, LabelledFace, Labeller
from train.data import DataError

FOUND_IOU = 0.3
AP_IOU = 0.5
AP_MIN_HEIGHT = 40
BUCKETS = (("<24", 0, 24), ("24-40", 24, 40), (">=40", AP_MIN_HEIGHT, float("inf")))
RECALLS = ("found", "recall", "recall50")
SIZED_AP = f"ap50_{AP_MIN_HEIGHT}px"
AP_FLOOR = 0.05  # maskdet's faces down to this score count for AP


def score_thresholds(detector: str, threshold: float | None = None) -> tuple[float, float]:
    """(floor, operating) scores for evaluating ``detector``: faces down to ``floor`` count for AP,
    those at ``operating`` (``threshold``, or the detector's default) for recall. dlib's
    detectors report no faces under their own cut, so for them the two are the same."""
    if detector != SCENE_DETECTOR:
        operating = 0.0 if threshold is None else threshold
        return operating, operating
    operating = SCENE_THRESHOLD if threshold is None else threshold
    return min(operating, AP_FLOOR), operating


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


def ap_hits(truths: list[Truth], faces: list[LabelledFace], label: str, min_height: float = 0.0
            ) -> tuple[list[float], list[bool]]:
    """For AP of one class in one image: each detection of that class, its confidence and whether it is a hit.

    With ``min_height``, faces shorter than that are not asked for: a detection on one (at
    IoU >= 0.5), or an unmatched detection shorter than that itself, is left out rather than counted.
    """
    def tall(box: Box) -> bool:
        return box[3] - box[1] >= min_height

    targets = [t for t in truths if t.label == label and tall(t.box)]
    ignored = [t for t in truths if not tall(t.box)]
    taken: set[int] = set()
    scores, hits = [], []
    for face in sorted((f for f in faces if f.label == label), key=lambda f: -f.confidence):
        overlaps = [box_iou(t.box, face.box) for t in targets]
        best = int(np.argmax(overlaps)) if overlaps else -1
        hit = best >= 0 and overlaps[best] >= AP_IOU and best not in taken
        if hit:
            taken.add(best)
        elif not tall(face.box) or any(box_iou(t.box, face.box) >= AP_IOU for t in ignored):
            continue
        scores.append(face.confidence)
        hits.append(hit)
    return scores, hits


def evaluate_scenes(data: Path, find: Labeller, labels: list[str], detector: str, progress: bool = True,
                    names: set[str] | None = None, threshold: float = 0.0) -> dict:
    """The report described in the module docstring for one VOC folder.

    ``find`` labels the faces of an image (``detect.faces.make_labeller``), ``labels`` are the
    labels it can give, ``detector`` names it in the report; ``names`` keeps only the
    annotations of those image stems; faces ``find`` scores under ``threshold`` count for AP only.
    """
    annotations = sorted(path for path in (data / "annotations").glob("*.xml") if names is None or path.stem in names)
    if not annotations:
        raise DataError(f"{data}: no annotations/*.xml found")
    counts: dict[str, dict] = {}
    ap_parts = {(label, height): ([], []) for label in labels for height in (0.0, AP_MIN_HEIGHT)}
    skipped, seconds, images = [], 0.0, 0

    def tally(label: str, bucket: str, key: str, value: bool) -> None:
        table = counts.setdefault(label, {k: {b: [0, 0] for b, _, _ in BUCKETS} for k in RECALLS})
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
        for (label, height), (scores, hits) in ap_parts.items():
            more_scores, more_hits = ap_hits(truths, faces, label, height)
            scores.extend(more_scores)
            hits.extend(more_hits)
        kept = [face for face in faces if face.score >= threshold]
        loose, strict = match(truths, kept, FOUND_IOU), match(truths, kept, AP_IOU)
        for index, truth in enumerate(truths):
            found = index in loose
            tally(truth.label, truth.bucket, "found", found)
            if truth.label in labels:
                tally(truth.label, truth.bucket, "recall", found and kept[loose[index]].label == truth.label)
                tally(truth.label, truth.bucket, "recall50", index in strict and kept[strict[index]].label == truth.label)

    classes = {label: _class_entry(table, ap_parts.get((label, 0.0)), ap_parts.get((label, AP_MIN_HEIGHT)))
               for label, table in sorted(counts.items())}
    return {"detector": detector, "images": images, "threshold": threshold,
            "ms_per_image": round(1000 * seconds / max(images, 1), 1), "classes": classes, "skipped": skipped}


def _class_entry(table: dict[str, dict[str, list[int]]], ap_all: tuple[list, list] | None,
                 ap_sized: tuple[list, list] | None) -> dict:
    """One class's report from its tallies (``table``: per recall kind, per size bucket, [hits,
    total]) and its AP parts (scores and hits; None for a class the detector cannot give, whose
    AP and recall are then None, and only "found" is measured)."""
    known = ap_all is not None
    positives = sum(total for _, total in table["found"].values())
    entry = {"n": positives,
             "ap50": average_precision(*ap_all, positives) if known else None,
             SIZED_AP: average_precision(*ap_sized, table["found"][BUCKETS[-1][0]][1]) if known else None}
    for key in RECALLS:
        if key != "found" and not known:
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
    return entry


def summary_lines(result: dict, labels: list[str]) -> list[str]:
    """``evaluate_scenes``' report as lines to print: per class AP, then found and recall by box size."""
    def shares(values: dict) -> str:
        return " ".join(f"{k} {v:.1%}" if v is not None else f"{k} -" for k, v in values.items())

    def precision(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    lines = [f"{result['detector']}: {result['images']} images, {result['ms_per_image']} ms per image, "
             f"recall at score >= {result['threshold']:g}"]
    for label, entry in result["classes"].items():
        if label not in labels:
            lines.append(f"  {label:<22} n {entry['n']:>4}  found {shares(entry['found'])}")
            continue
        lines.append(f"  {label:<22} n {entry['n']:>4}  AP50 {precision(entry['ap50'])} "
                     f"({SIZED_AP} {precision(entry[SIZED_AP])})  found {shares(entry['found'])}"
                     f" | recall {shares(entry['recall'])} | at IoU 0.5 {shares(entry['recall50'])}")
    return lines

"""Faces found and labelled in one RGB image: the detector from ``augment.faces``, the classifier from ``train``.

Boxes are ``(x0, y0, x1, y1)`` floats in the image's pixels, framed as dlib's HOG detector
frames faces, which is how the classifier's training views were framed too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from augment.faces import DETECTORS, Box, face_boxes
from train.model import Classifier, load_classifier
from train.views import plain_view

# The face detectors ``detect`` offers: dlib's (then the classifier labels each face), and the
# mask-aware detector trained on generated scenes, which finds and labels faces in one pass.
SCENE_DETECTOR = "maskdet"
FACE_DETECTORS = (*DETECTORS, SCENE_DETECTOR)
SCENE_THRESHOLD = 0.35  # the mask-aware detector's default score threshold


@dataclass(frozen=True)
class LabelledFace:
    """One face: where it is, what the classifier says, how sure it is, and the detector's score."""

    box: Box
    label: str
    confidence: float
    score: float

    def as_json(self) -> dict:
        return {"box": [round(float(v), 1) for v in self.box], "label": self.label,
                "confidence": round(self.confidence, 4), "score": round(self.score, 3)}


def classify_boxes(rgb: np.ndarray, boxes: list[tuple[Box, float]], classifier: Classifier) -> list[LabelledFace]:
    """Label every (box, detector score) of an image with one batched classifier call."""
    if not boxes:
        return []
    crops = np.stack([plain_view(rgb, box, classifier.size) for box, _ in boxes]).astype(np.float32)
    probabilities = classifier.predict_resized(crops)
    best = probabilities.argmax(axis=1)
    return [LabelledFace(tuple(float(v) for v in box), classifier.labels[k], float(p[k]), float(score))
            for (box, score), k, p in zip(boxes, best, probabilities)]


def label_faces(rgb: np.ndarray, classifier: Classifier, detector: str = "hog", upsample: int = 1,
                max_side: int | None = None, threshold: float = 0.0) -> list[LabelledFace]:
    """Find the faces of an RGB uint8 image and label each; faces the detector scores under ``threshold`` are dropped."""
    boxes = [(box, score) for box, score in face_boxes(rgb, detector, upsample, max_side) if score >= threshold]
    return classify_boxes(rgb, boxes, classifier)


Labeller = Callable[[np.ndarray], list[LabelledFace]]


def scene_faces(rgb: np.ndarray, scene_detector, threshold: float = SCENE_THRESHOLD,
                side: int | None = None) -> list[LabelledFace]:
    """The faces the mask-aware detector (``detect.network.Detector``) finds and labels; its score is the confidence."""
    return [LabelledFace(box, label, score, score) for box, label, score in scene_detector.detect(rgb, threshold, side)]


def make_labeller(detector: str, classifier_path: Path, detector_path: Path, upsample: int = 1,
                  threshold: float | None = None, max_side: int | None = None) -> tuple[Labeller, list[str]]:
    """A function from an RGB image to its labelled faces, and the labels it can give.

    dlib's detectors (``hog``, ``cnn``, ``auto``) find faces and the classifier at
    ``classifier_path`` labels them; ``maskdet`` loads the detector at ``detector_path`` and
    does both in one pass. Models load here, once per process, so errors come before any work.
    """
    if detector == SCENE_DETECTOR:
        from detect.network import load_detector

        scene_detector = load_detector(detector_path)
        cutoff = SCENE_THRESHOLD if threshold is None else threshold
        side = min(max_side or scene_detector.side, scene_detector.side)
        return (lambda rgb: scene_faces(rgb, scene_detector, cutoff, side)), scene_detector.labels
    if detector not in DETECTORS:
        raise ValueError(f"unknown face detector {detector!r}; choose from {', '.join(FACE_DETECTORS)}")
    classifier = load_classifier(classifier_path)
    return (lambda rgb: label_faces(rgb, classifier, detector, upsample, max_side, threshold or 0.0)), classifier.labels

"""Faces found and labelled in one RGB image: the detector from ``augment.faces``, the classifier from ``train``.

Boxes are ``(x0, y0, x1, y1)`` floats in the image's pixels. dlib's detectors frame faces as
HOG does, which is how the classifier's training views were framed too; the mask-aware detector
frames them as people draw them (``augment.scenes.annotation_box``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from augment.faces import DETECTORS, FACE_DETECTORS, SCENE_DETECTOR, face_boxes
from augment.geometry import Box
from augment.scenes import face_box_from_annotation
from train.model import Classifier, ModelError, load_classifier, read_metadata
from train.views import face_views

if TYPE_CHECKING:  # annotations only: the detector loads TensorFlow, which is imported on first use
    from detect.network import Detector

SCENE_THRESHOLD = 0.35  # the mask-aware detector's default score threshold
# ... and the one for faces to put masks on: a mask on a jacket poisons a training set more than
# a missed face costs it. With the either-label face score, 0.5 took 622 faces from data/raw's
# 514 photos, 71 of them no face to fitcheck; 0.6 takes 562 (29), about as many faces as the
# max-label score took at 0.5 (559, 16); with the mirrored look and the close-up looks, 564 (29).
GENERATION_THRESHOLD = 0.6
# How much the classifier's opinion weighs against maskdet's, by face height: nothing under
# 24 px, rising to half at 80 px and up. On small crops it is wrong more often than the detector
# (measured on detection_dev: unmasked recall under 24 px fell from 55 % to 38 % when it weighed
# in equally on every face; ramping from 24 to 80 px rather than stepping at 24 px raised AP50
# over all sizes from 0.539 to 0.561 masked and from 0.451 to 0.464 unmasked).
CLASSIFIER_RAMP = (24.0, 80.0)
CLASSIFIER_WEIGHT = 0.5


def classifier_weight(height: float) -> float:
    """The classifier's weight (0 to ``CLASSIFIER_WEIGHT``) in the fused label of a face ``height`` px tall."""
    low, high = CLASSIFIER_RAMP
    return CLASSIFIER_WEIGHT * float(np.clip((height - low) / (high - low), 0.0, 1.0))


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
    """Label every (box, detector score) of an image in one batch, each face from its two views (``face_views``)."""
    if not boxes:
        return []
    probabilities = classifier.predict_views([face_views(rgb, box, classifier.size) for box, _ in boxes])
    best = probabilities.argmax(axis=1)
    return [LabelledFace(tuple(float(v) for v in box), classifier.labels[k], float(p[k]), float(score))
            for (box, score), k, p in zip(boxes, best, probabilities)]


def label_faces(rgb: np.ndarray, classifier: Classifier, detector: str = "hog", upsample: int = 1,
                max_side: int | None = None, threshold: float = 0.0) -> list[LabelledFace]:
    """Find the faces of an RGB uint8 image and label each; faces the detector scores under ``threshold`` are dropped."""
    return label_found(rgb, face_boxes(rgb, detector, upsample, max_side), classifier, threshold)


def label_found(rgb: np.ndarray, boxes: list[tuple[Box, float]], classifier: Classifier, threshold: float = 0.0
                ) -> list[LabelledFace]:
    """Label the faces a detector found in an RGB uint8 image, (box, score) each; those it scores
    under ``threshold`` are dropped."""
    return classify_boxes(rgb, [(box, score) for box, score in boxes if score >= threshold], classifier)


Labeller = Callable[[np.ndarray], list[LabelledFace]]


@dataclass(frozen=True)
class DlibLabeller:
    """``label_faces`` with its settings: a dlib detector finds the faces, the classifier labels
    them. The two halves can run apart: ``finding(path)`` is the task of
    ``augment.faces.face_boxes_in_file`` in a worker process, ``label`` labels what it found."""

    classifier: Classifier
    detector: str
    upsample: int
    max_side: int | None
    threshold: float

    def __call__(self, rgb: np.ndarray) -> list[LabelledFace]:
        return label_faces(rgb, self.classifier, self.detector, self.upsample, self.max_side, self.threshold)

    def finding(self, path: Path) -> tuple[Path, str, int, int | None]:
        return path, self.detector, self.upsample, self.max_side

    def label(self, rgb: np.ndarray, boxes: list[tuple[Box, float]]) -> list[LabelledFace]:
        return label_found(rgb, boxes, self.classifier, self.threshold)


def fuse_opinions(detector_shares: np.ndarray, classifier_probabilities: np.ndarray,
                  classifier_weights: np.ndarray | float = CLASSIFIER_WEIGHT) -> np.ndarray:
    """Label probabilities from two opinions on the same faces: their normalised weighted geometric mean.

    Both are (n, labels) float arrays in the same label order, rows summing to 1;
    ``classifier_weights`` (n,) or a scalar in [0, 1] is the classifier's share of the say
    (0: the detector alone, 0.5: equal). A confident opinion outweighs a hesitant one: with equal
    say, a face one calls 95 % masked and the other 60 % unmasked comes out masked.
    """
    weight = np.broadcast_to(np.asarray(classifier_weights, dtype=np.float64), (len(detector_shares),))[:, None]
    log_mean = ((1.0 - weight) * np.log(np.clip(detector_shares, 1e-6, 1.0))
                + weight * np.log(np.clip(classifier_probabilities, 1e-6, 1.0)))
    fused = np.exp(log_mean - log_mean.max(axis=1, keepdims=True))
    return fused / fused.sum(axis=1, keepdims=True)


def scene_faces(rgb: np.ndarray, scene_detector: Detector, threshold: float = SCENE_THRESHOLD, side: int | None = None,
                classifier: Classifier | None = None, mirror: bool = True) -> list[LabelledFace]:
    """The faces the mask-aware detector (``detect.network.Detector``) finds, labelled.

    Without a classifier the detector's own label stands. With one, the classifier looks at each
    face too (cropped as it was trained, from the detector's hand-drawn-like box) and the two
    opinions are fused (``fuse_opinions``), the classifier's weight growing with the face's height
    (``classifier_weight``). ``score`` is the detector's face score; ``confidence`` is that score
    times the chosen label's probability, the chance of a face with that label. ``mirror``: the
    detector looks at the image mirrored too (``Detector.detect``).
    """
    found = scene_detector.detect(rgb, threshold, side, mirror)
    if not found:
        return []
    probabilities = np.stack([face.shares for face in found])
    weights = np.array([classifier_weight(face.box[3] - face.box[1]) for face in found])
    asked = np.flatnonzero(weights > 0)
    if classifier is not None and len(asked):
        opinion = classifier.predict_views([face_views(rgb, face_box_from_annotation(found[i].box), classifier.size)
                                            for i in asked])
        order = [classifier.labels.index(label) for label in scene_detector.labels]
        probabilities[asked] = fuse_opinions(probabilities[asked], opinion[:, order], weights[asked])
    best = probabilities.argmax(axis=1)
    return [LabelledFace(tuple(float(v) for v in face.box), scene_detector.labels[k], face.score * float(p[k]), face.score)
            for face, k, p in zip(found, best, probabilities)]


def scene_face_boxes(rgb: np.ndarray, detector_path: Path, threshold: float = GENERATION_THRESHOLD
                     ) -> list[tuple[Box, float]]:
    """The faces the mask-aware detector at ``detector_path`` finds, boxed as dlib's HOG boxes
    faces (for the landmark predictor), with their scores; the detector loads once per process."""
    from detect.network import load_detector

    return [(face_box_from_annotation(found.box), found.score) for found in load_detector(detector_path).detect(rgb, threshold)]


def make_labeller(detector: str, classifier_path: Path | None, detector_path: Path, upsample: int = 1,
                  threshold: float | None = None, max_side: int | None = None, mirror: bool = True
                  ) -> tuple[Labeller, list[str]]:
    """A function from an RGB image to its labelled faces, and the labels it can give.

    dlib's detectors (``hog``, ``cnn``, ``auto``) find faces and the classifier at
    ``classifier_path`` labels them; ``maskdet`` loads the detector at ``detector_path``, which
    finds and labels faces in one pass, and the classifier weighs in on each label unless
    ``classifier_path`` is None; ``mirror`` has it look at each image mirrored too. Models load
    here, once per process, so errors come before any work.
    """
    if detector == SCENE_DETECTOR:
        from detect.network import load_detector

        for path, kind in ((detector_path, "detector"), (classifier_path, "classifier")):
            if path is not None:  # both files checked before TensorFlow loads (seconds)
                read_metadata(path, kind)
        scene_detector = load_detector(detector_path)
        classifier = None if classifier_path is None else load_classifier(classifier_path)
        if classifier is not None and sorted(classifier.labels) != sorted(scene_detector.labels):
            raise ModelError(f"{classifier_path}: labels {classifier.labels} differ from the detector's "
                             f"{scene_detector.labels}")
        cutoff = SCENE_THRESHOLD if threshold is None else threshold
        side = min(max_side or scene_detector.side, scene_detector.side)
        return (lambda rgb: scene_faces(rgb, scene_detector, cutoff, side, classifier, mirror)), scene_detector.labels
    if detector not in DETECTORS:
        raise ValueError(f"unknown face detector {detector!r}; choose from {', '.join(FACE_DETECTORS)}")
    classifier = load_classifier(classifier_path)
    return DlibLabeller(classifier, detector, upsample, max_side, threshold or 0.0), classifier.labels

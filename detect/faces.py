"""Faces found and labelled in one RGB image: the detector from ``augment.faces``, the classifier from ``train``.

Boxes are ``(x0, y0, x1, y1)`` floats in the image's pixels, framed as dlib's HOG detector
frames faces, which is how the classifier's training views were framed too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from augment.faces import Box, face_boxes
from train.model import Classifier
from train.views import plain_view


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

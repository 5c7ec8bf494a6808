"""Drawing labelled faces on a picture, readable at any image size."""

from __future__ import annotations

import cv2
import numpy as np

from detect.faces import LabelledFace

GREEN, RED, AMBER = (0, 200, 0), (230, 30, 30), (240, 170, 0)


def colour_of(label: str) -> tuple[int, int, int]:
    """Green for a worn mask, red for none, amber for anything else (e.g. a mask worn wrong)."""
    name = label.lower()
    if name.startswith(("without", "no_", "no ")):
        return RED
    if name in ("with_mask", "mask", "masked"):
        return GREEN
    return AMBER


def draw_faces(rgb: np.ndarray, faces: list[LabelledFace], note: str | None = None) -> np.ndarray:
    """A copy of an RGB image with each face boxed and captioned "label 97%"; ``note`` top-left (e.g. FPS)."""
    out = rgb.copy()
    scale = max(out.shape[:2]) / 1000  # text and lines grow with the picture
    thickness = max(1, int(round(2 * scale)))
    for face in faces:
        colour = colour_of(face.label)
        x0, y0, x1, y1 = (int(round(v)) for v in face.box)
        cv2.rectangle(out, (x0, y0), (x1, y1), colour, thickness, cv2.LINE_AA)
        caption = f"{face.label.replace('_', ' ')} {face.confidence:.0%}"
        font = max(0.35, 0.6 * scale)
        (width, height), base = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, font, thickness)
        top = y0 - height - base - 4 if y0 - height - base - 4 >= 0 else y1  # below the box at the top edge
        cv2.rectangle(out, (x0, top), (x0 + width + 4, top + height + base + 4), colour, -1)
        cv2.putText(out, caption, (x0 + 2, top + height + 2), cv2.FONT_HERSHEY_SIMPLEX, font, (255, 255, 255),
                    thickness, cv2.LINE_AA)
    if note:
        font = max(0.5, 0.8 * scale)
        cv2.putText(out, note, (10, int(30 * max(scale, 1))), cv2.FONT_HERSHEY_SIMPLEX, font, (0, 0, 0),
                    thickness + 2, cv2.LINE_AA)
        cv2.putText(out, note, (10, int(30 * max(scale, 1))), cv2.FONT_HERSHEY_SIMPLEX, font, (255, 255, 0),
                    thickness, cv2.LINE_AA)
    return out

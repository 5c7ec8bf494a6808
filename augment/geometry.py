"""Plane geometry every stage shares: boxes, and affine maps of points.

A box is ``(x0, y0, x1, y1)`` in pixels, right and bottom edges exclusive. Points are float arrays
(N, 2) of (x, y). An affine map is a float64 (2, 3) matrix, as OpenCV's warps take it. Pure
functions; nothing here reads an image.
"""
from __future__ import annotations

import cv2
import numpy as np

Box = tuple[float, float, float, float]


def box_area(box: Box) -> float:
    """The area of a box (0 for an empty or inverted one)."""
    return max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0)


def intersection_area(a: Box, b: Box) -> float:
    """The area two boxes share."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    return width * height if width > 0 and height > 0 else 0.0


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes."""
    inter = intersection_area(a, b)
    return inter / (box_area(a) + box_area(b) - inter) if inter else 0.0


def share_covered(box: Box, by: Box) -> float:
    """The share of ``box``'s area that ``by`` covers (1.0 for an empty ``box``)."""
    area = box_area(box)
    return intersection_area(box, by) / area if area > 0 else 1.0


def smaller_box_covered(a: Box, b: Box) -> float:
    """The share of the smaller of two boxes that lies inside the other (1.0: one holds the other)."""
    inter = intersection_area(a, b)
    return inter / min(box_area(a), box_area(b)) if inter else 0.0


def crop_box(box: Box, margin: float, image_shape: tuple[int, ...] | None = None) -> tuple[int, int, int, int]:
    """Grow a box by ``margin`` (a fraction of its size) on each side; integer pixels, clipped to the image if given."""
    x0, y0, x1, y1 = box
    grow_x, grow_y = (x1 - x0) * margin, (y1 - y0) * margin
    out = [int(round(x0 - grow_x)), int(round(y0 - grow_y)), int(round(x1 + grow_x)), int(round(y1 + grow_y))]
    if image_shape is not None:
        height, width = image_shape[:2]
        out = [max(0, out[0]), max(0, out[1]), min(width, out[2]), min(height, out[3])]
    return tuple(out)


def box_corners(box: Box) -> np.ndarray:
    """A box's four corners, float64 (4, 2), clockwise from the top left."""
    x0, y0, x1, y1 = box
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def bounding_box(points: np.ndarray) -> Box:
    """The smallest box holding every point of (N, 2)."""
    points = np.asarray(points)
    return (float(points[:, 0].min()), float(points[:, 1].min()), float(points[:, 0].max()), float(points[:, 1].max()))


def fit_affine(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares affine (2, 3) taking points ``source`` (N >= 3, 2) onto ``target`` (N, 2)."""
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    design = np.hstack([source, np.ones((len(source), 1))])
    solution, *_ = np.linalg.lstsq(design, target, rcond=None)
    return solution.T


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine matrix to points (N, 2); float64 (N, 2)."""
    points = np.asarray(points, dtype=np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def rotation_onto_canvas(shape: tuple[int, ...], degrees: float) -> tuple[np.ndarray, tuple[int, int]]:
    """Affine (2, 3) that rotates an image of ``shape`` about its centre onto a canvas that holds
    all of it, and that canvas's (width, height). Positive ``degrees`` turn it anticlockwise on screen."""
    height, width = shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    new_width, new_height = int(height * sin + width * cos), int(height * cos + width * sin)
    matrix[0, 2] += new_width / 2 - width / 2
    matrix[1, 2] += new_height / 2 - height / 2
    return matrix, (new_width, new_height)

"""Training targets and box decoding for the centre-point face detector, as pure numpy.

The detector predicts, on a grid of ``STRIDE``-pixel cells, a heat map per label (the chance a
face of that label is centred in the cell), the face's width and height (log of pixels / stride)
and the centre's offset within the cell. Boxes are (x0, y0, x1, y1) in input pixels.
"""

from __future__ import annotations

import numpy as np

STRIDE = 8


def gaussian_radius(width: float, height: float) -> float:
    """Heat-map spread (in cells) for a face of this size: wide enough that near misses are not punished."""
    return max(0.7, 0.15 * np.sqrt(width * height) / STRIDE)


def render_targets(boxes: np.ndarray, labels: np.ndarray, grid: tuple[int, int], classes: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Targets for one image.

    ``boxes`` (n, 4) float in input pixels, ``labels`` (n,) int, ``grid`` (rows, cols).
    Returns ``heat`` (rows, cols, classes) float32 peaks of 1 at face centres,
    ``regression`` (rows, cols, 4) float32: log width, log height (in strides), offset x, y,
    and ``weight`` (rows, cols, 1) float32: 1 at the cells holding a face centre.
    """
    rows, cols = grid
    heat = np.zeros((rows, cols, classes), np.float32)
    regression = np.zeros((rows, cols, 4), np.float32)
    weight = np.zeros((rows, cols, 1), np.float32)
    ys, xs = np.mgrid[0:rows, 0:cols].astype(np.float32)
    for (x0, y0, x1, y1), label in zip(boxes, labels):
        width, height = x1 - x0, y1 - y0
        if width < 2 or height < 2:
            continue
        cx, cy = (x0 + x1) / 2 / STRIDE, (y0 + y1) / 2 / STRIDE
        col, row = int(cx), int(cy)
        if not (0 <= col < cols and 0 <= row < rows):
            continue
        sigma = gaussian_radius(width, height)
        peak = np.exp(-((xs - col) ** 2 + (ys - row) ** 2) / (2 * sigma ** 2))
        heat[:, :, label] = np.maximum(heat[:, :, label], peak)
        regression[row, col] = (np.log(width / STRIDE), np.log(height / STRIDE), cx - col, cy - row)
        weight[row, col] = 1.0
    return heat, regression, weight


def decode(heat: np.ndarray, regression: np.ndarray, threshold: float = 0.3, top: int = 100
           ) -> list[tuple[tuple[float, float, float, float], int, float, np.ndarray]]:
    """Boxes from one image's outputs: (box in input pixels, label index, score, shares), best first.

    ``score`` is the chance that a face of any label is centred in a cell, ``1 - prod(1 - heat)``
    over the labels: a real face the detector cannot place in one class (heats of 0.3 and 0.3)
    is still a face (0.51). A cell counts only where that score is the largest in its 3x3
    neighbourhood, so one face gives one box. ``shares`` (classes,) float32 are the labels' heats
    there scaled to sum to 1, the detector's odds between labels.
    """
    rows, cols, _ = heat.shape
    face = 1.0 - np.prod(1.0 - heat, axis=2)
    padded = np.pad(face, 1, constant_values=-1)
    neighbourhood = np.max([padded[dy:dy + rows, dx:dx + cols] for dy in range(3) for dx in range(3)], axis=0)
    peaks = np.argwhere((face >= neighbourhood) & (face >= threshold))
    found = []
    for row, col in peaks:
        scores = heat[row, col].astype(np.float32)
        label = int(scores.argmax())
        log_w, log_h, off_x, off_y = regression[row, col]
        cx, cy = (col + off_x) * STRIDE, (row + off_y) * STRIDE
        width, height = np.exp(log_w) * STRIDE, np.exp(log_h) * STRIDE
        found.append(((float(cx - width / 2), float(cy - height / 2), float(cx + width / 2), float(cy + height / 2)),
                      label, float(face[row, col]), scores / max(float(scores.sum()), 1e-6)))
    found.sort(key=lambda item: -item[2])
    return found[:top]

"""Things that hide part of a face in real photos, drawn on face crops for the detector's scenes.

Real masked faces are often partly hidden: sunglasses over the eyes, a cap or beanie over the
forehead, a hand, a phone or another person's head in front. Faces in the raw photos have none
of these, so a detector trained on them alone misses such faces. Each function takes an RGB
uint8 image, draws on a copy and returns it; landmarks are dlib's 68 points, (68, 2) float32 in
the image's pixels. Drawing is in float with anti-aliased edges.
"""

from __future__ import annotations

import cv2
import numpy as np

from augment.geometry import Box

LEFT_EYE, RIGHT_EYE = slice(36, 42), slice(42, 48)
BROWS = slice(17, 27)
JAW_LEFT, JAW_RIGHT = 0, 16
INNER_BROWS = (21, 22)  # the skin between them is bare under a mask, a cap or sunglasses


def _blend(image: np.ndarray, colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``image`` (H, W, 3) uint8 with ``colour`` ((3,) or (H, W, 3) float) laid over it by ``alpha`` (H, W) in [0, 1]."""
    out = image.astype(np.float32) * (1 - alpha[..., None]) + colour * alpha[..., None]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _soft(mask: np.ndarray, sigma: float) -> np.ndarray:
    """A uint8 0/255 mask as float alpha in [0, 1] with its edge blurred by ``sigma`` pixels."""
    alpha = mask.astype(np.float32) / 255
    return cv2.GaussianBlur(alpha, (0, 0), sigma) if sigma > 0.3 else alpha


def sunglasses(image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Dark lenses over both eyes, a frame, a bridge and arms running to the sides of the face."""
    eyes = [landmarks[LEFT_EYE].mean(axis=0), landmarks[RIGHT_EYE].mean(axis=0)]
    spacing = float(np.linalg.norm(eyes[1] - eyes[0]))
    angle = float(np.degrees(np.arctan2(eyes[1][1] - eyes[0][1], eyes[1][0] - eyes[0][0])))
    axes = (max(1, int(spacing * rng.uniform(0.4, 0.52))), max(1, int(spacing * rng.uniform(0.28, 0.4))))
    lenses = np.zeros(image.shape[:2], np.uint8)
    for eye in eyes:
        cv2.ellipse(lenses, (int(eye[0]), int(eye[1])), axes, angle, 0, 360, 255, -1, cv2.LINE_AA)
    frame = np.zeros_like(lenses)
    thickness = max(1, int(spacing * rng.uniform(0.03, 0.08)))
    for eye in eyes:
        cv2.ellipse(frame, (int(eye[0]), int(eye[1])), axes, angle, 0, 360, 255, thickness, cv2.LINE_AA)
    cv2.line(frame, tuple(int(v) for v in eyes[0]), tuple(int(v) for v in eyes[1]), 255, thickness, cv2.LINE_AA)
    for eye, side in zip(eyes, (landmarks[JAW_LEFT], landmarks[JAW_RIGHT])):
        cv2.line(frame, (int(eye[0]), int(eye[1])), (int(side[0]), int(eye[1])), 255, thickness, cv2.LINE_AA)
    tint = rng.uniform(5, 60) * rng.uniform(0.6, 1.4, 3)
    # A lens lets a little of the eye through and catches a highlight across its top.
    shade = np.full(image.shape, tint, np.float32)
    highlight = np.zeros_like(lenses)
    for eye in eyes:
        centre = (int(eye[0] - axes[0] * 0.3), int(eye[1] - axes[1] * 0.4))
        cv2.ellipse(highlight, centre, (max(1, axes[0] // 3), max(1, axes[1] // 5)), angle - 20, 0, 360, 255, -1)
    shade += _soft(highlight, spacing * 0.03)[..., None] * rng.uniform(40, 120)
    out = _blend(image, shade, _soft(lenses, 0.6) * rng.uniform(0.85, 0.97))
    return _blend(out, tint * 0.6, _soft(frame, 0.5))


def cap(image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A cap or knitted hat pulled down to a little above the brows, over the forehead and hair."""
    brows = landmarks[BROWS]
    spacing = float(np.linalg.norm(landmarks[RIGHT_EYE].mean(axis=0) - landmarks[LEFT_EYE].mean(axis=0)))
    edge = brows[:, 1].min() - spacing * rng.uniform(0.15, 0.6)
    sides = sorted((landmarks[JAW_LEFT][0], landmarks[JAW_RIGHT][0]))  # a mirrored face has them swapped
    left, right = sides[0] - spacing * rng.uniform(0.1, 0.5), sides[1] + spacing * rng.uniform(0.1, 0.5)
    # The brim or band follows the head's curve: lower at the sides than in the middle.
    xs = np.linspace(left, right, 24)
    sag = spacing * rng.uniform(0.0, 0.4)
    ys = edge + sag * ((xs - (left + right) / 2) / max((right - left) / 2, 1)) ** 2
    outline = np.concatenate([np.stack([xs, ys], axis=1), [[right, -image.shape[0]], [left, -image.shape[0]]]])
    region = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(region, [np.round(outline).astype(np.int32)], 255, cv2.LINE_AA)
    colour = rng.uniform(10, 230, 3)
    height, width = image.shape[:2]
    knit = rng.normal(0, rng.uniform(3, 18), (height, width, 1)).astype(np.float32)
    if rng.random() < 0.5:  # ribbed: vertical stripes
        knit += np.float32(rng.uniform(5, 15)) * np.sin(np.arange(width, dtype=np.float32) * rng.uniform(0.4, 1.2))[None, :, None]
    # Lit from above: darker towards the band, where it meets the face.
    rows = np.arange(height, dtype=np.float32)[:, None, None]
    shading = 1 - 0.25 * np.clip((rows - (edge - spacing)) / max(spacing, 1), 0, 1)
    return _blend(image, (colour + knit) * shading, _soft(region, spacing * 0.02))


def cover(image: np.ndarray, landmarks: np.ndarray, box: Box, rng: np.random.Generator,
          share: tuple[float, float] = (0.08, 0.3)) -> np.ndarray:
    """Something in front of part of the face in ``box``: a hand, a phone or another head's dark hair.

    It comes in from one side or from below and covers about ``share`` of the box; the hand's
    colour is the skin between the brows, since it is usually the person's own hand.
    """
    x0, y0, x1, y1 = box
    width, height = x1 - x0, y1 - y0
    reach = float(np.sqrt(rng.uniform(*share)))
    side = int(rng.integers(3))  # 0: from the left, 1: from the right, 2: from below
    if side == 2:
        cx, cy = x0 + width * rng.uniform(0.2, 0.8), y1
        axes = (width * reach * rng.uniform(0.6, 0.9), height * reach * 0.9)
    else:
        cx, cy = (x0 if side == 0 else x1), y0 + height * rng.uniform(0.3, 0.9)
        axes = (width * reach * 0.9, height * reach * rng.uniform(0.6, 0.9))
    region = np.zeros(image.shape[:2], np.uint8)
    kind = int(rng.integers(3))
    centre = (int(cx), int(cy))
    axes_int = (max(1, int(axes[0])), max(1, int(axes[1])))
    if kind == 1:  # a phone: a rounded dark slab
        cv2.rectangle(region, (int(cx - axes[0] * 0.6), int(cy - axes[1])), (int(cx + axes[0] * 0.6), int(cy + axes[1])),
                      255, -1, cv2.LINE_AA)
        colour = rng.uniform(10, 70, 3) if rng.random() < 0.7 else rng.uniform(100, 230, 3)
    else:
        cv2.ellipse(region, centre, axes_int, float(rng.uniform(-40, 40)), 0, 360, 255, -1, cv2.LINE_AA)
        if kind == 0:  # a hand, with fingers as bumps along its edge
            for _ in range(4):
                angle = rng.uniform(0, 2 * np.pi)
                tip = (int(cx + np.cos(angle) * axes[0]), int(cy + np.sin(angle) * axes[1]))
                cv2.ellipse(region, tip, (max(1, int(axes[0] * 0.25)), max(1, int(axes[1] * 0.12))),
                            float(np.degrees(angle)), 0, 360, 255, -1, cv2.LINE_AA)
            skin = landmarks[list(INNER_BROWS)].mean(axis=0)
            row = int(np.clip(skin[1], 0, image.shape[0] - 1))
            col = int(np.clip(skin[0], 0, image.shape[1] - 1))
            colour = image[row, col].astype(np.float32) * rng.uniform(0.8, 1.15)
        else:  # the back of another head
            colour = rng.uniform(5, 60) * rng.uniform(0.8, 1.2, 3)
    height_px, width_px = image.shape[:2]
    texture = rng.normal(0, rng.uniform(1, 5), (height_px, width_px, 1)).astype(np.float32)
    # Rounded, lit from above: darker towards its lower rim.
    ys, xs = np.mgrid[0:height_px, 0:width_px].astype(np.float32)
    rim = np.hypot((xs - cx) / max(axes[0], 1), (ys - cy) / max(axes[1], 1))
    shading = (1 - 0.3 * np.clip(rim, 0, 1.5) ** 2 * (ys > cy - axes[1] * 0.3))[..., None]
    return _blend(image, (colour + texture) * shading, _soft(region, max(width, height) * 0.01))


def occlude(image: np.ndarray, landmarks: np.ndarray, box: Box, rng: np.random.Generator,
            chances: tuple[float, float, float]) -> np.ndarray:
    """The face maybe given sunglasses, a cap and something in front of it, each with its chance in ``chances``."""
    glasses, hat, covered = rng.random(3) < np.asarray(chances)
    if glasses:
        image = sunglasses(image, landmarks, rng)
    if hat:
        image = cap(image, landmarks, rng)
    return cover(image, landmarks, box, rng) if covered else image

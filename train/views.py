"""Face crops as the classifier sees them: one resize rule everywhere, and random views for training.

Everything here is a pure function of uint8 RGB arrays (H, W, 3) and a numpy ``Generator``.

Real face crops are small (a median of 146-190 px, many under 128), JPEG-compressed, blurred,
framed loosely or tightly, and lit every way; generated crops are clean 256 px JPEGs framed by
one rule. ``random_view`` closes that gap: each training view is cut around the face box at a
random scale, aspect, offset and tilt, lit differently, then pushed down to a random lower
resolution, blurred, compressed and enlarged again, as a small real photo is.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Stored with every model, so evaluation and detection resize exactly as training did.
RESIZE = "area-down-linear-up"


def resize_face(image: np.ndarray, size: int) -> np.ndarray:
    """A face crop (H, W, 3) uint8 squeezed to (size, size, 3) uint8.

    Area averaging when shrinking (no aliasing), bilinear when enlarging: OpenCV's area filter
    enlarges like nearest neighbour, whose blocky small faces cost a classifier dearly.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    height, width = image.shape[:2]
    method = cv2.INTER_AREA if height >= size and width >= size else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=method)


@dataclass(frozen=True)
class Jitter:
    """How far training views stray from the face box, and how badly they are degraded."""

    scale: tuple[float, float] = (0.7, 3.5)  # crop side / face box side, log-uniform
    aspect: tuple[float, float] = (0.8, 1.25)  # crop width / height (the crop is then squeezed square)
    shift: float = 0.15  # centre offset, as a fraction of the crop side
    angle: float = 12.0  # degrees of tilt either way
    low_resolution: tuple[int, int] = (32, 224)  # the face is seen at this many pixels, log-uniform
    low_resolution_share: float = 0.75
    blur_share: float = 0.3
    jpeg_share: float = 0.6
    jpeg_quality: tuple[int, int] = (25, 95)
    noise_share: float = 0.2


# A face found in a photo is classified from two views averaged: its box, and its box grown to the
# middle (geometric mean) of the training views' scales, where the classifier saw faces most often.
# On the faces dlib finds in real street photos the box alone, at the tight end of those scales,
# took 49 of 1,028 masked faces for unmasked (four models); the two views 30, and 12 of 424
# unmasked faces for masked against 13; fused with the mask-aware detector, unmasked AP50 rose by
# 0.008-0.024 (docs/benchmarks.md, "Faces seen twice by the classifier").
VIEW_SCALE = float(np.sqrt(Jitter().scale[0] * Jitter().scale[1]))


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def view_rectangle(box: tuple[float, float, float, float], image_shape: tuple[int, ...],
                   rng: np.random.Generator, jitter: Jitter) -> tuple[float, float, float, float, float]:
    """A random crop around a face box: centre x, centre y, width, height, tilt in degrees.

    The crop may grow past the face box but is kept inside the image where the image allows,
    so wide views show real surroundings rather than padding.
    """
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0, 1.0)
    image_h, image_w = image_shape[:2]
    scale = _log_uniform(rng, *jitter.scale)
    aspect = _log_uniform(rng, *jitter.aspect)
    width = min(side * scale * np.sqrt(aspect), image_w)
    height = min(side * scale / np.sqrt(aspect), image_h)
    cx = (x0 + x1) / 2 + rng.uniform(-jitter.shift, jitter.shift) * width
    cy = (y0 + y1) / 2 + rng.uniform(-jitter.shift, jitter.shift) * height
    cx, cy = _centre_inside(cx, cy, width, height, image_shape)
    return cx, cy, float(width), float(height), float(rng.uniform(-jitter.angle, jitter.angle))


def _centre_inside(cx: float, cy: float, width: float, height: float, image_shape: tuple[int, ...]
                   ) -> tuple[float, float]:
    """The centre moved so that a ``width`` x ``height`` rectangle about it, no larger than the image,
    lies inside the image."""
    image_h, image_w = image_shape[:2]
    return float(np.clip(cx, width / 2, image_w - width / 2)), float(np.clip(cy, height / 2, image_h - height / 2))


def cut_view(image: np.ndarray, rectangle: tuple[float, float, float, float, float], size: int) -> np.ndarray:
    """The (size, size, 3) uint8 contents of a tilted rectangle of ``image`` (border pixels repeated)."""
    cx, cy, width, height, angle = rectangle
    shrink = min(width, height) / size
    if shrink > 2:  # area-average first: a bilinear warp alone would alias a large image
        factor = 1 / np.floor(shrink)
        image = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        cx, cy, width, height = cx * factor, cy * factor, width * factor, height * factor
    rotation = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
    to_output = np.array([[size / width, 0, size / 2 - cx * size / width],
                          [0, size / height, size / 2 - cy * size / height]])
    matrix = to_output @ np.vstack([rotation, [0, 0, 1]])
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def relight(view: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random exposure, contrast, gamma, white balance and saturation; uint8 in, uint8 out."""
    pixels = view.astype(np.float32) / 255
    pixels = pixels ** _log_uniform(rng, 0.75, 1.33)
    pixels = pixels * rng.uniform(0.9, 1.1, size=3).astype(np.float32)
    mean = pixels.mean()
    pixels = (pixels - mean) * rng.uniform(0.75, 1.25) + mean * rng.uniform(0.75, 1.3)
    grey = pixels.mean(axis=2, keepdims=True)
    saturation = 0.0 if rng.random() < 0.05 else rng.uniform(0.6, 1.3)
    pixels = grey + (pixels - grey) * saturation
    return np.clip(pixels * 255 + 0.5, 0, 255).astype(np.uint8)


def degrade(view: np.ndarray, rng: np.random.Generator, jitter: Jitter) -> np.ndarray:
    """The view as a small, soft, compressed, noisy photo would show it, at the same size."""
    size = view.shape[0]
    small = view
    if rng.random() < jitter.low_resolution_share:
        side = int(round(_log_uniform(rng, *jitter.low_resolution)))
        if side < size:
            small = cv2.resize(view, (side, side), interpolation=cv2.INTER_AREA)
    if rng.random() < jitter.blur_share:
        small = cv2.GaussianBlur(small, (0, 0), rng.uniform(0.4, 1.4))
    if rng.random() < jitter.noise_share:
        noise = rng.normal(0, rng.uniform(2, 8), small.shape)
        small = np.clip(small + noise, 0, 255).astype(np.uint8)
    if rng.random() < jitter.jpeg_share:
        quality = int(rng.integers(*jitter.jpeg_quality, endpoint=True))
        encoded = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])[1]
        small = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
    return resize_face(small, size)


def random_view(image: np.ndarray, box: tuple[float, float, float, float] | None, size: int,
                rng: np.random.Generator, jitter: Jitter = Jitter()) -> np.ndarray:
    """One random training view (size, size, 3) uint8 of the face in ``box`` (None: the whole image)."""
    if box is None:
        box = (0.0, 0.0, float(image.shape[1]), float(image.shape[0]))
    view = cut_view(image, view_rectangle(box, image.shape, rng, jitter), size)
    if rng.random() < 0.5:
        view = view[:, ::-1]
    return degrade(relight(view, rng), rng, jitter)


def view_box(box: tuple[float, float, float, float], scale: float, image_shape: tuple[int, ...]
             ) -> tuple[float, float, float, float]:
    """The square ``scale`` times the longer side of ``box`` about its centre, moved to lie inside
    the image where the image is large enough (as ``view_rectangle`` keeps training views), else
    cut to the image on the sides it does not fit."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * scale
    image_h, image_w = image_shape[:2]
    width, height = min(side, image_w), min(side, image_h)
    cx, cy = _centre_inside((x0 + x1) / 2, (y0 + y1) / 2, width, height, image_shape)
    return (cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2)


def views_reach(box: tuple[float, float, float, float], image_shape: tuple[int, ...], jitter: Jitter = Jitter()
                ) -> tuple[int, int, int, int]:
    """The part of the image (x0, y0, x1, y1, whole pixels) that every view ``view_rectangle`` can
    cut around ``box`` lies in, tilt and a pixel for interpolation included; cut from the image,
    it gives the same views (the same rectangles, moved by its corner).

    Where a view would cross the image's border, ``view_rectangle`` pushes it inside: on that
    side the part goes to the border, and on the other far enough to hold the widest view pushed.
    """
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0, 1.0)
    widest = side * jitter.scale[1] * np.sqrt(jitter.aspect[1])
    tallest = side * jitter.scale[1] / np.sqrt(jitter.aspect[0])
    cos, sin = np.cos(np.radians(jitter.angle)), np.sin(np.radians(jitter.angle))
    reach = []
    for centre, along, across, extent in (((x0 + x1) / 2, widest, tallest, image_shape[1]),
                                          ((y0 + y1) / 2, tallest, widest, image_shape[0])):
        turned = max(along, along * cos + across * sin) / 2  # half the widest tilted view
        half = jitter.shift * along + turned + 2
        low, high = int(np.floor(centre - half)), int(np.ceil(centre + half))
        if low <= 0:  # views pushed off the border reach at most the widest view from it
            low, high = 0, max(high, int(np.ceil(2 * turned + 2)))
        elif high >= extent:
            low, high = min(low, int(np.floor(extent - 2 * turned - 2))), extent
        reach.append((max(low, 0), min(high, extent)))
    (left, right), (top, bottom) = reach
    return left, top, right, bottom


def reduced_for_views(image: np.ndarray, box: tuple[float, float, float, float] | None, size: int,
                      jitter: Jitter = Jitter()) -> tuple[np.ndarray, tuple[float, float, float, float] | None]:
    """What training needs of an image, and ``box`` in its pixels: the part its views can reach
    (``views_reach``; None: the whole image is the face), reduced to where its tightest view
    (``jitter.scale[0]`` of the box's longer side, squeezed by the widest aspect) still spans
    ``size`` pixels, so no view of it is enlarged. A 12-megapixel photo is held in a few hundred
    kilobytes rather than 36 MB, and a small face in a large group photo in its surroundings
    alone. Images already that small come back as they are."""
    if box is not None:
        left, top, right, bottom = views_reach(box, image.shape, jitter)
        if (right - left, bottom - top) != (image.shape[1], image.shape[0]):  # a copy: the photo is let go
            image = image[top:bottom, left:right].copy()
            box = (box[0] - left, box[1] - top, box[2] - left, box[3] - top)
    height, width = image.shape[:2]
    x0, y0, x1, y1 = box if box is not None else (0.0, 0.0, float(width), float(height))
    needed = size * np.sqrt(jitter.aspect[1]) / jitter.scale[0]
    scale = needed / max(x1 - x0, y1 - y0, 1.0)
    if scale >= 1:
        return image, box
    reduced = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))),
                         interpolation=cv2.INTER_AREA)
    if box is None:
        return reduced, None
    across, down = reduced.shape[1] / width, reduced.shape[0] / height
    return reduced, (x0 * across, y0 * down, x1 * across, y1 * down)


def plain_view(image: np.ndarray, box: tuple[float, float, float, float] | None, size: int) -> np.ndarray:
    """The view evaluation uses: the face box (None: the whole image) resized, nothing random."""
    if box is not None:
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        height, width = image.shape[:2]
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            image = image[y0:y1, x0:x1]
    return resize_face(np.ascontiguousarray(image), size)


def face_views(image: np.ndarray, box: tuple[float, float, float, float] | None, size: int) -> np.ndarray:
    """The views (2, size, size, 3) uint8 the classifier averages for the face in ``box``: the box
    (``plain_view``) and the box grown to ``VIEW_SCALE`` (``view_box``); the whole image alone,
    (1, size, size, 3), when ``box`` is None."""
    if box is None:
        return plain_view(image, None, size)[None]
    return np.stack([plain_view(image, box, size), plain_view(image, view_box(box, VIEW_SCALE, image.shape), size)])

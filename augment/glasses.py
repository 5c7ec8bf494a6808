"""Glasses frames stand in front of a worn mask.

A mask lies on the face and a pair of glasses sits in front of it, so a mask never hides the
lower rims of the wearer's frames. The frames are found in the unmasked photo, on a grey copy of
the eye region turned and scaled onto the canonical face (``augment.fit.CANONICAL_FACE``, units of
the eye distance, x to the picture's right, y down), where a frame is a thin line darker than the
skin either side of it: first across the bridge of the nose between the eyes (which tells glasses
from no glasses), then round each eye, where two mirrored rounded rectangles are fitted to the
lower rims and each point of them is moved onto the darkest line near it. The rims are then drawn
over the mask as clean lines of the frame's width and colour, where the photo shows them.
Pure functions on numpy arrays; images are RGB uint8.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from itertools import product

import cv2
import numpy as np

from augment import fit
from augment.geometry import Box, apply_affine, fit_affine

# Pixels per eye distance of the canonical copy: the face's own, within these bounds (a frame on a
# large face keeps its few pixels; a small face is not enlarged for nothing). Faces with eyes
# closer than MIN_EYE_DISTANCE pixels are not looked at: their frames are a pixel or less.
MIN_SCALE, MAX_SCALE = 24.0, 120.0
MIN_EYE_DISTANCE = 20.0
# What is read of the canonical face: the eyes, brows and cheeks (x0, y0, x1, y1), placed by the
# points glasses rest on and around (the nose and the eyes), not the jaw: on a turned head the
# jaw's outline shifts the whole face's fit off the nose.
REGION = (-1.3, -0.7, 1.3, 1.0)
GLASSES_POINTS = list(range(27, 48))
# A line is a dark shape narrower than this (eye distances): wider ones (an eye socket, a shadow
# under the brow) are not lines.
LINE_WIDTH = 0.14
# Where a frame's bridge crosses the nose (x half-width, y top, y bottom), and how much darker
# than the skin around it the darkest row there must be along four fifths of its width (grey
# levels 0-1), as a line at most BRIDGE_THICKNESS thick. Of data/raw's 517 faces, 25 reach it,
# looked at one by one: 23 wear glasses; on the other two no rim is found, so nothing is drawn.
# Below it are glasses with a thin, pale bridge, and sunglasses, whose bridge sits higher. The
# band stops below the brows' inner ends.
BRIDGE = (0.12, -0.14, 0.12)
BRIDGE_DARKNESS = 0.055
BRIDGE_THICKNESS = 0.07
# Lens outlines tried, for the lens on the picture's right (the other is its mirror image): centre
# (x, y), half width, half height, and the exponent of a superellipse (2.5 nearly oval, 5 nearly
# rectangular). Each is scored on its lower part and sides (LOWER_FROM: the sine of the angle
# from which on a point counts; the upper rim often runs along the brow).
LENS_CENTRES_X = np.arange(0.44, 0.69, 0.04)
LENS_CENTRES_Y = np.arange(-0.06, 0.13, 0.03)
LENS_HALF_WIDTHS = np.arange(0.32, 0.61, 0.04)
LENS_HALF_HEIGHTS = np.arange(0.2, 0.37, 0.04)
LENS_SHAPES = (2.5, 5.0)
OUTLINE_ANGLES = np.linspace(0.0, 2 * np.pi, 96, endpoint=False)
LOWER_FROM = -0.2
LOWER = np.sin(OUTLINE_ANGLES) > LOWER_FROM
# The fitted outline is a guide: each of its points moves up to RIM_SEARCH along its normal onto
# the darkest line there. Rims darker than RIM_DARKNESS (the 30th percentile along the lower
# outline of the weaker lens) are drawn; a paler rim, or none (half-rimless frames), is left.
RIM_SEARCH = 0.1
RIM_DARKNESS = 0.02
# Darkness of skin's own grain and creases: no frame is drawn where a line is no darker.
LINE_FLOOR = 0.015
# Eyes and lashes are dark lines too: around each eye this much (eye distances) is not searched.
EYE_MARGIN = 0.12


@dataclass(frozen=True)
class Frames:
    """Glasses frames found on a face: ``coverage`` (H, W) float32 in [0, 1] over a box of the
    image, and ``colour`` (3,) float32, their RGB in the photo (0-255)."""

    coverage: np.ndarray
    colour: np.ndarray


def canonical_view(image: np.ndarray, landmarks: np.ndarray, scale: float,
                   region: tuple[float, float, float, float] = REGION) -> tuple[np.ndarray, np.ndarray]:
    """``region`` of the canonical face read from RGB uint8 ``image`` at ``scale`` pixels per eye
    distance, in grey (float32, 0-1); returns the view and the affine (2, 3) from image pixels to its pixels."""
    x0, y0, x1, y1 = region
    to_canonical = fit_affine(landmarks[GLASSES_POINTS], fit.CANONICAL_FACE[GLASSES_POINTS])
    to_view = np.array([[scale, 0.0, -x0 * scale], [0.0, scale, -y0 * scale]])
    matrix = np.hstack([to_view[:, :2] @ to_canonical[:, :2],
                        (to_view[:, :2] @ to_canonical[:, 2] + to_view[:, 2])[:, None]])
    size = (int(round((x1 - x0) * scale)), int(round((y1 - y0) * scale)))
    view = cv2.warpAffine(image, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.cvtColor(view, cv2.COLOR_RGB2GRAY).astype(np.float32) * np.float32(1 / 255), matrix


def line_darkness(view: np.ndarray, scale: float) -> np.ndarray:
    """How much darker each pixel of ``view`` is than the skin either side, for lines narrower than
    LINE_WIDTH (a morphological black-hat), float32 like ``view``."""
    side = max(3, int(round(LINE_WIDTH * scale)) | 1)
    return cv2.morphologyEx(view, cv2.MORPH_BLACKHAT, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side)))


def bridge_darkness(image: np.ndarray, landmarks: np.ndarray, scale: float) -> float:
    """The darkness of the darkest line across the bridge of the nose (BRIDGE), along four fifths of
    its width. Only a thin line counts, one whose darkness has halved BRIDGE_THICKNESS above it: a
    brow or a frown that reaches down into the band from above does not."""
    half, top, bottom = BRIDGE
    pad = LINE_WIDTH
    view, _ = canonical_view(image, landmarks, scale, (-half - pad, top - pad, half + pad, bottom + pad))
    margin = int(round(pad * scale))
    inner = line_darkness(view, scale)[:-margin, margin:-margin]  # the band, and the line's width above it
    if inner.size == 0:
        return 0.0
    rank = inner.shape[1] // 5  # the 20th percentile of each row
    rows = np.partition(inner, rank, axis=1)[:, rank]
    above = int(round(BRIDGE_THICKNESS * scale))
    thin = rows[margin:] > 2 * rows[margin - above:len(rows) - above]
    return float(rows[margin:][thin].max()) if thin.any() else 0.0


@functools.cache
def lens_outlines() -> np.ndarray:
    """Every lens outline tried, as points (C, len(OUTLINE_ANGLES), 2) float32 in canonical units (read-only)."""
    cos, sin = np.cos(OUTLINE_ANGLES), np.sin(OUTLINE_ANGLES)
    centre_x, centre_y, half_width, half_height, exponent = (
        np.array(values)[:, None] for values in zip(*product(LENS_CENTRES_X, LENS_CENTRES_Y, LENS_HALF_WIDTHS,
                                                              LENS_HALF_HEIGHTS, LENS_SHAPES)))
    x = centre_x + half_width * np.sign(cos) * np.abs(cos) ** (2 / exponent)
    y = centre_y + half_height * np.sign(sin) * np.abs(sin) ** (2 / exponent)
    outlines = np.stack([x, y], axis=-1).astype(np.float32)
    outlines.setflags(write=False)
    return outlines


def _sample(darkness: np.ndarray, points: np.ndarray, scale: float) -> np.ndarray:
    """``darkness`` of a REGION view at canonical ``points`` (..., 2); 0 outside the view."""
    points = np.asarray(points)
    flat = points.reshape(-1, points.shape[-2] if points.ndim > 2 else len(points), 2)  # remap wants 2-D maps
    map_x = ((flat[..., 0] - REGION[0]) * scale).astype(np.float32)
    map_y = ((flat[..., 1] - REGION[1]) * scale).astype(np.float32)
    values = cv2.remap(darkness, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return values.reshape(np.shape(points)[:-1])


def fit_lenses(darkness: np.ndarray, scale: float) -> tuple[np.ndarray, float]:
    """The lens outline (len(OUTLINE_ANGLES), 2) of the picture's right lens along whose lower part
    (LOWER), and its mirror image's, the view's lines are darkest; and that darkness (the weaker
    lens's 30th percentile)."""
    outlines = lens_outlines()
    scored = outlines[:, LOWER][:, ::2]  # every other point is enough to rank the outlines
    right = _sample(darkness, scored, scale)
    left = _sample(darkness, scored * np.float32((-1.0, 1.0)), scale)
    rank = int(0.3 * scored.shape[1])
    score = np.minimum(np.partition(right, rank, axis=1)[:, rank], np.partition(left, rank, axis=1)[:, rank])
    best = int(np.argmax(score))
    return outlines[best].astype(np.float64), float(score[best])


def normals(outline: np.ndarray) -> np.ndarray:
    """Unit normals (N, 2) of a closed polyline (N, 2)."""
    tangent = np.roll(outline, -1, axis=0) - np.roll(outline, 1, axis=0)
    normal = np.stack([tangent[:, 1], -tangent[:, 0]], axis=1)
    return normal / np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-9)


def _smooth_closed(values: np.ndarray, size: int, how: str) -> np.ndarray:
    """A running median or mean of ``size`` (odd) neighbours along a closed curve's values (N,)."""
    half = size // 2
    windows = np.lib.stride_tricks.sliding_window_view(np.concatenate([values[-half:], values, values[:half]]), size)
    return np.median(windows, axis=1) if how == "median" else windows.mean(axis=1)


def _across(darkness: np.ndarray, curve: np.ndarray, offsets: np.ndarray, scale: float) -> np.ndarray:
    """``darkness`` across a closed ``curve`` (N, 2): at each point, at ``offsets`` (M,) along its normal; (N, M)."""
    return _sample(darkness, curve[:, None, :] + normals(curve)[:, None, :] * offsets[None, :, None], scale)


def trace_rim(darkness: np.ndarray, outline: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """The rim near ``outline`` (N, 2): each point moved along the outline's normal, up to
    RIM_SEARCH, onto the darkest line, the moves smoothed along the rim (a median of seven
    neighbours, which drops a point that jumped to another line, then a mean of nine).
    Returns the rim's points (N, 2) and the darkness at each."""
    offsets = np.arange(-RIM_SEARCH, RIM_SEARCH + 1e-9, 1.0 / scale)
    moved = offsets[np.argmax(_across(darkness, outline, offsets, scale), axis=1)]
    moved = _smooth_closed(_smooth_closed(moved, 7, "median"), 9, "mean")
    rim = outline + normals(outline) * moved[:, None]
    return rim, _sample(darkness, rim, scale)


def rim_width(darkness: np.ndarray, rim: np.ndarray, scale: float) -> float:
    """How wide the line along ``rim`` is (eye distances): the median, over the rim's points, of the
    stretch across it that is at least half as dark as its middle, between a view pixel and LINE_WIDTH / 2."""
    offsets = np.arange(-LINE_WIDTH / 2, LINE_WIDTH / 2 + 1e-9, 0.5 / scale)
    profile = _across(darkness, rim, offsets, scale)
    middle = profile[:, len(offsets) // 2]
    widths = (profile >= 0.5 * middle[:, None]).sum(axis=1) * (0.5 / scale)
    return float(np.clip(np.median(widths[middle > LINE_FLOOR]) if (middle > LINE_FLOOR).any() else 0.0,
                         1.0 / scale, LINE_WIDTH / 2))


def draw_rim(shape: tuple[int, ...], rim: np.ndarray, opacity: np.ndarray, width: float, scale: float) -> np.ndarray:
    """Coverage (float32, ``shape`` of a REGION view) of the closed line ``rim`` (N, 2) drawn ``width``
    wide, each stretch as opaque as ``opacity`` (N,) in [0, 1] says, anti-aliased on a finer canvas."""
    fine = 4
    canvas = np.zeros((shape[0] * fine, shape[1] * fine), np.uint8)
    points = np.round((rim - REGION[:2]) * scale * fine * 16).astype(np.int32)
    thickness = max(1, int(round(width * scale * fine)))
    for index in range(len(rim)):
        following = (index + 1) % len(rim)
        value = int(round(255 * min(opacity[index], opacity[following])))
        if value:
            cv2.line(canvas, tuple(points[index]), tuple(points[following]), value, thickness, cv2.LINE_AA, shift=4)
    return cv2.resize(canvas, (shape[1], shape[0]), interpolation=cv2.INTER_AREA).astype(np.float32) * np.float32(1 / 255)


def find_frames(image: np.ndarray, landmarks: np.ndarray, box: Box) -> Frames | None:
    """The glasses frames of the face with ``landmarks`` (68, 2) in RGB uint8 ``image``, over
    ``box`` (x0, y0, x1, y1) of it; None for a face without glasses (or too small to tell).
    """
    points = np.asarray(landmarks, dtype=np.float64)
    eye_distance = float(np.linalg.norm(points[36:42].mean(axis=0) - points[42:48].mean(axis=0)))
    if eye_distance < MIN_EYE_DISTANCE:
        return None
    scale = float(np.clip(eye_distance, MIN_SCALE, MAX_SCALE))
    if bridge_darkness(image, points, scale) < BRIDGE_DARKNESS:
        return None
    view, to_view = canonical_view(image, points, scale)
    darkness = line_darkness(view, scale) * (1.0 - _around_eyes(apply_affine(to_view, points), view.shape, scale))
    outline, score = fit_lenses(darkness, scale)
    if score < RIM_DARKNESS:
        return None
    coverage = np.zeros(view.shape, np.float32)
    cores = []
    for mirror in ((1.0, 1.0), (-1.0, 1.0)):
        rim, strength = trace_rim(darkness, outline * mirror, scale)
        # How much of the frame each stretch shows: from none where the line is no darker than
        # skin's own grain (LINE_FLOOR) to all where it is as dark as the rim's darker stretches.
        peak = max(float(np.percentile(strength[LOWER], 70)), 2 * RIM_DARKNESS)
        opacity = _smooth_closed(np.clip((strength - LINE_FLOOR) / (peak - LINE_FLOOR), 0.0, 1.0), 5, "mean")
        np.maximum(coverage, draw_rim(view.shape, rim, opacity, rim_width(darkness, rim, scale), scale), out=coverage)
        cores.append(rim[LOWER & (strength >= np.median(strength[LOWER]))])
    x0, y0, x1, y1 = (int(v) for v in box)
    box_to_view = to_view.copy()
    box_to_view[:, 2] += to_view[:, :2] @ (x0, y0)
    in_box = cv2.warpAffine(coverage, box_to_view, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    core = apply_affine(cv2.invertAffineTransform(to_view), (np.vstack(cores) - REGION[:2]) * scale)
    columns = np.clip(np.round(core[:, 0]).astype(int), 0, image.shape[1] - 1)
    rows = np.clip(np.round(core[:, 1]).astype(int), 0, image.shape[0] - 1)
    colours = image[rows, columns].astype(np.float32)
    # A traced point a pixel off the frame's middle reads some skin: the darker third are the frame.
    darker = colours.sum(axis=1) <= np.percentile(colours.sum(axis=1), 33)
    return Frames(in_box, np.median(colours[darker], axis=0))


def _around_eyes(eyes: np.ndarray, shape: tuple[int, ...], scale: float) -> np.ndarray:
    """1 on and within EYE_MARGIN of the eyes whose landmarks (in view pixels) are ``eyes`` (68, 2), else 0."""
    mask = np.zeros(shape[:2], np.uint8)
    for outline in (eyes[36:42], eyes[42:48]):
        cv2.fillConvexPoly(mask, cv2.convexHull(np.round(outline).astype(np.int32)), 1)
    side = 2 * int(round(EYE_MARGIN * scale)) + 1
    return cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))).astype(np.float32)


def in_front(region: np.ndarray, frames: Frames, mask_alpha: np.ndarray) -> np.ndarray:
    """RGB uint8 ``region`` (the box of ``frames``) with the frames drawn over the mask whose
    coverage is ``mask_alpha`` (H, W) in [0, 1]; elsewhere the photo already shows them."""
    over = (frames.coverage * mask_alpha)[:, :, None]
    blended = region.astype(np.float32) * (1.0 - over) + frames.colour * over
    return np.clip(blended + 0.5, 0, 255).astype(np.uint8)

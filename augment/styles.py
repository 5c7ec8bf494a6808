"""Mask styles: RGBA PNGs with four anchor points, from a sidecar or derived from the alpha.

A style is ``NAME.png`` (RGBA; a WebP with alpha works too) with an optional ``NAME.json``
sidecar, every key optional::

    {"anchors": {"top": [x, y], "bottom": [x, y], "left": [x, y], "right": [x, y]}, "weight": 3, "creases": 0.5}

Anchors are in PNG pixels: ``top`` is the middle of the top edge (it sits on the nose bridge),
``bottom`` the middle of the bottom edge (under the chin), ``left`` and ``right`` the side
edges at cheek height (left as seen in the picture). Without them the anchors are derived
from the alpha shape, so any mask PNG with transparency works. ``weight`` (a whole number,
1 by default) is how often the style is drawn relative to the others. ``creases`` (0 to 1, 1 by
default) is how deeply the mask creases where it is worn: 1 for cloth and pleated paper, 0 for a
rigid moulded cup. ``follow_jaw`` (true by default) narrows a mask drawn wider than a face beside
the jaw, as a flat product photo is (``follow_jaw``); false keeps the drawing as it is, for a
bandana or a neck gaiter that hangs below the chin.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from augment.fit import (ANCHOR_NAMES, CANONICAL_ANCHORS, CANONICAL_FACE, JAW, anchors_to_template, bare_features, halvings,
                        jaw_normals, warp_template)
from augment.geometry import apply_affine, rotation_onto_canvas
from augment.images import is_image_path

# Where the side anchors sit between top and bottom, as on the canonical face.
SIDE_HEIGHT = (CANONICAL_ANCHORS["left"][1] - CANONICAL_ANCHORS["top"][1]) / (
    CANONICAL_ANCHORS["bottom"][1] - CANONICAL_ANCHORS["top"][1]
)
MIN_SIDE = 16  # pixels: a smaller mask PNG has too little to warp
# The formats a style may come in: those that hold an alpha channel and that OpenCV reads. Other
# image files in a styles folder are reported, not passed over: a mask saved as JPEG is a mistake.
STYLE_SUFFIXES = (".png", ".webp")
# A style must cover the nose and mouth of a frontal face this many pixels between the eyes (a
# coarse check: the template is read at about the size it is worn there).
CHECK_EYE_DISTANCE = 24
MAX_WEIGHT = 1000
# How far past the jaw line a worn mask reaches, in eye-distance units of the canonical face. A
# style reaching further at some height is narrowed there (``follow_jaw``); the built-in styles
# are drawn inside it (at most 0.14 past it, the roots of the foam masks' straps).
JAW_STANDOFF = 0.2
# The resolution (pixels to the eye distance) at which ``follow_jaw`` reads a style's outline.
BODY_RESOLUTION = 50
# What reaches further than the body may (ear loops laid out flat beside it) shows this much
# further, where loops go behind the ears, and fades out within LOOP_FADE.
LOOP_REACH = 0.1
LOOP_FADE = 0.03
# A style whose alpha holds a second shape, apart from the largest and at least this share of its
# area, has no one body to take anchors from (ear loops and straps are far smaller).
SEPARATE_PART = 0.25
# A mask turned in its picture by MIN_TILT to MAX_TILT degrees is straightened as it is worn
# (``body_tilt``); its body's axes must differ by ELONGATION (second moments) for the turn to show.
MIN_TILT = 2.0
MAX_TILT = 30.0
ELONGATION = 1.3
# A larger PNG is reduced to this many pixels on its longest side as it loads: worn on the largest
# face of a full-size photo a mask is rarely wider, and every worker holds each style as float32
# at several sizes (a 6000-px PNG took 1.2-2.4 GB and 11-25 s to load).
MAX_STYLE_SIDE = 1600


class StyleError(ValueError):
    """A mask style file that cannot be used; the message names the file and the reason."""


@dataclass(frozen=True)
class MaskStyle:
    """A loaded style: straight (not premultiplied) RGBA uint8 pixels (h, w, 4), its anchors, how often it is drawn."""

    name: str
    path: Path
    rgba: np.ndarray
    anchors: dict[str, tuple[float, float]]
    anchors_from: str  # "sidecar" or "alpha"
    weight: int = 1
    creases: float = 1.0
    narrowed: bool = False  # drawn wider than a face beside the jaw, and narrowed to it (``follow_jaw``)
    reduced_from: tuple[int, int] | None = None  # (width, height) of a PNG larger than MAX_STYLE_SIDE


def _components(binary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 8-connected parts of a bool image: labels (h, w) int32 (0 the background) and their areas, by label."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=8)
    return labels, stats[1:count, cv2.CC_STAT_AREA]


def _body_shape(alpha: np.ndarray) -> np.ndarray:
    """The alpha shape (bool (h, w)) without thin parts such as ear loops and straps, and with narrow
    transparent gaps closed: a slit, or a seam left transparent between two drawn panels, must not
    cut one mask in two. Parts that are still apart stay apart."""
    solid = alpha >= 128
    ys, xs = np.nonzero(solid)
    if len(xs) == 0:
        return solid
    thickness = max(3, int(0.08 * min(np.ptp(xs) + 1, np.ptp(ys) + 1)) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (thickness, thickness))
    opened = cv2.morphologyEx(solid.astype(np.uint8), cv2.MORPH_OPEN, kernel)
    shape = opened if opened.any() else solid.astype(np.uint8)
    return cv2.morphologyEx(shape, cv2.MORPH_CLOSE, kernel).astype(bool)


def mask_body(alpha: np.ndarray) -> np.ndarray:
    """The mask's body (bool (h, w)): the largest part of ``_body_shape``."""
    shape = _body_shape(alpha)
    labels, areas = _components(shape)
    return labels == 1 + int(np.argmax(areas)) if len(areas) > 1 else shape


def derive_anchors(alpha: np.ndarray) -> dict[str, tuple[float, float]]:
    """Anchors from an alpha channel (uint8 (h, w)): top and bottom of the body's middle column, sides
    at cheek height, all taken across and along the body as it lies: a mask turned in its picture
    (``body_tilt``) gets anchors turned with it, and is worn upright.

    Raises ValueError when the alpha is empty, or holds two or more shapes apart whose smaller is
    at least SEPARATE_PART of the larger (two masks in one picture, or one cut in pieces): which
    would be the mask is anyone's guess.
    """
    labels, areas = _components(_body_shape(alpha))
    if len(areas) == 0:
        raise ValueError("alpha channel is empty")
    alike = int((areas >= SEPARATE_PART * areas.max()).sum())
    if alike > 1:
        raise ValueError(f"the alpha holds {alike} separate shapes of similar size; a mask style is one mask in one "
                         "piece (ear loops and straps may stand apart), or give its anchors in a sidecar")
    body = labels == 1 + int(np.argmax(areas))
    tilt = body_tilt(body)
    if tilt == 0.0:
        return _upright_anchors(body)
    # Read on the body turned upright (on a canvas that holds all of it), then turned back.
    upright, canvas = rotation_onto_canvas(body.shape, -tilt)
    turned = cv2.warpAffine(body.astype(np.uint8), upright, canvas, flags=cv2.INTER_NEAREST)
    back = cv2.invertAffineTransform(upright)
    return {name: tuple(float(v) for v in apply_affine(back, np.array([point]))[0])
            for name, point in _upright_anchors(turned.astype(bool)).items()}


def body_tilt(body: np.ndarray) -> float:
    """How far (degrees, counter-clockwise as seen) a mask's body (bool (h, w)) is turned from upright
    in its picture, read from the axes of its second moments: a mask is mirror-symmetric, so upright
    they are the picture's own. 0 when under MIN_TILT (nothing to mend), over MAX_TILT (no telling
    which way is up), or when the body is too round for its axes to show (a moulded cup)."""
    moments = cv2.moments(body.astype(np.uint8), binaryImage=True)
    total, difference = moments["mu20"] + moments["mu02"], moments["mu20"] - moments["mu02"]
    spread = np.hypot(difference, 2 * moments["mu11"])
    # The axes' second moments are (total +- spread) / 2: their ratio must reach ELONGATION.
    if spread < total * (ELONGATION - 1) / (ELONGATION + 1):
        return 0.0
    axis = -0.5 * np.degrees(np.arctan2(2 * moments["mu11"], difference))  # image rows run down
    tilt = (axis + 45.0) % 90.0 - 45.0  # from whichever of the picture's axes is nearer
    return float(tilt) if MIN_TILT <= abs(tilt) <= MAX_TILT else 0.0


def _upright_anchors(body: np.ndarray) -> dict[str, tuple[float, float]]:
    """``derive_anchors`` of an upright body (bool (h, w), not empty)."""
    ys, xs = np.nonzero(body)
    centre = int(round((xs.min() + xs.max()) / 2))
    column = np.nonzero(body[:, centre])[0]
    top, bottom = float(column.min()), float(column.max() + 1)
    row = int(round(top + SIDE_HEIGHT * (bottom - top)))
    across = np.nonzero(body[row])[0]
    return {
        "top": (float(centre), top),
        "bottom": (float(centre), bottom),
        "left": (float(across.min()), float(row)),
        "right": (float(across.max() + 1), float(row)),
    }


@functools.cache
def jaw_reach() -> tuple[np.ndarray, np.ndarray]:
    """How far a worn mask reaches to each side of the canonical face: heights (9,), from the ear's
    line down to under the chin, and the half-width (9,) at each (the jaw pushed out by JAW_STANDOFF)."""
    pushed = CANONICAL_FACE[JAW] + jaw_normals(CANONICAL_FACE) * JAW_STANDOFF
    half = pushed[:9]  # jaw points 0 (the ear's line) to 8 (the chin); the face is symmetric
    return half[:, 1], np.abs(half[:, 0])


def follow_jaw(rgba: np.ndarray, anchors: dict[str, tuple[float, float]]) -> tuple[np.ndarray, bool]:
    """A style (straight RGBA uint8 (h, w, 4)) fitted to the face wherever it reaches further beside
    the jaw than a worn mask does (``jaw_reach``), and whether it had to be.

    A flat product photo of a mask is as wide at the chin as at the cheeks, its ear loops laid out
    beside it: placed by its anchors as it is, its lower corners and its loops stand out in the air
    beside the jaw. Worn, a mask wraps round the jaw and under the chin, and its loops go behind
    the ears. So each side of each height of the canonical face (as the anchors place it) is first
    squeezed towards the mask's centre line until the body's edge (``mask_body``) reaches no further
    than the jaw allows, ear loops at that height moving in with it; what still reaches further
    (the rest of the loops, a shadow) then fades out within LOOP_FADE. A style drawn for the face,
    as the built-in ones are, comes back unchanged.
    """
    to_template = anchors_to_template(anchors)
    to_canonical = cv2.invertAffineTransform(to_template)
    # The outline is read on a copy about BODY_RESOLUTION pixels to the eye distance: a fiftieth
    # of it is exact enough, and checking the 28 built-in styles takes 26-36 ms.
    step = 1.0 / np.linalg.norm(to_template[:, 1])  # canonical height of one PNG pixel
    shrink = min(1.0, BODY_RESOLUTION * step)
    alpha = rgba[:, :, 3]
    small = cv2.resize(alpha, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA) if shrink < 1 else alpha
    heights, reach = jaw_reach()

    def canonical(mask: np.ndarray) -> np.ndarray:
        rows, columns = np.nonzero(mask)
        return apply_affine(to_canonical, np.stack([columns + 0.5, rows + 0.5], axis=1) / shrink)

    def within(points: np.ndarray, beyond: float = 0.0) -> np.ndarray:
        return np.abs(points[:, 0]) <= np.interp(points[:, 1], heights, reach + beyond, right=0.0)

    body = canonical(mask_body(small))
    body_fits = bool(within(body).all())
    if body_fits and within(canonical(small > 0), LOOP_REACH).all():
        return rgba, False
    height, width = rgba.shape[:2]
    u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    grid = apply_affine(to_canonical, np.stack([u.ravel(), v.ravel()], axis=1))
    if not body_fits:
        rgba = _squeezed(rgba, grid, body, step / shrink, to_template)
    past = np.abs(grid[:, 0]) - np.interp(grid[:, 1], heights, reach + LOOP_REACH, right=0.0)
    kept = np.clip(1.0 - past / LOOP_FADE, 0.0, 1.0).reshape(height, width)
    fitted = rgba.copy()
    fitted[:, :, 3] = np.round(rgba[:, :, 3] * kept).astype(np.uint8)
    return fitted, True


def _squeezed(rgba: np.ndarray, grid: np.ndarray, body: np.ndarray, step: float, to_template: np.ndarray
              ) -> np.ndarray:
    """``follow_jaw``'s squeeze: ``grid`` holds the canonical (x, y) of every pixel's centre (h * w, 2),
    ``body`` those of the body's (N, 2), read in bands ``step`` tall."""
    heights, reach = jaw_reach()
    low = grid[:, 1].min()
    count = int(np.ceil((grid[:, 1].max() - low) / step)) + 1

    def band(y: np.ndarray) -> np.ndarray:
        return np.clip(np.round((y - low) / step).astype(int), 0, count - 1)

    allowed = np.interp(low + np.arange(count) * step, heights, reach, right=0.0)
    squeezes = []
    for on_side in (body[:, 0] < 0, body[:, 0] >= 0):
        extent = np.zeros(count)
        np.maximum.at(extent, band(body[on_side, 1]), np.abs(body[on_side, 0]))
        squeeze = np.where(extent > allowed, allowed / np.maximum(extent, 1e-9), 1.0)
        reached = np.flatnonzero(extent)
        if len(reached):  # below the body (a shadow, say) the last band's squeeze holds
            squeeze[reached[-1] + 1:] = squeeze[reached[-1]]
        squeezes.append(cv2.GaussianBlur(squeeze.reshape(-1, 1), (1, 0), sigmaX=0.1, sigmaY=2.0).ravel())
    bands = band(grid[:, 1])
    # No room at all (under the chin): read from far off, which is transparent.
    squeeze = np.maximum(np.where(grid[:, 0] < 0, squeezes[0][bands], squeezes[1][bands]), 1e-3)
    source = apply_affine(to_template, np.stack([grid[:, 0] / squeeze, grid[:, 1]], axis=1)) - 0.5
    height, width = rgba.shape[:2]
    map_x, map_y = (source[:, i].reshape(height, width).astype(np.float32) for i in (0, 1))
    squeezed = cv2.remap(premultiplied(rgba), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=0)
    return straight(squeezed)


def premultiplied(rgba: np.ndarray) -> np.ndarray:
    """Straight RGBA uint8 (h, w, 4) to float32 with its colour premultiplied by alpha (all in 0..255),
    for resampling: the colour of transparent pixels then does not bleed into the edge."""
    opacity = rgba[:, :, 3:].astype(np.float32) / 255.0
    return np.dstack([rgba[:, :, :3] * opacity, rgba[:, :, 3:]]).astype(np.float32)


def straight(pixels: np.ndarray) -> np.ndarray:
    """Premultiplied RGBA (h, w, 4) in 0..255, any dtype, back to straight RGBA uint8."""
    pixels = pixels.astype(np.float32)
    opacity = pixels[:, :, 3:] / 255.0
    colour = np.where(opacity > 0, pixels[:, :, :3] / np.maximum(opacity, 1e-6), 0.0)
    return np.dstack([colour, pixels[:, :, 3:]]).round().clip(0, 255).astype(np.uint8)


def reduced(rgba: np.ndarray, anchors: dict[str, tuple[float, float]] | None
            ) -> tuple[np.ndarray, dict[str, tuple[float, float]] | None]:
    """A style no longer than MAX_STYLE_SIDE (area-averaged), and its anchors (if given) moved with it."""
    factor = MAX_STYLE_SIDE / max(rgba.shape[:2])
    if factor >= 1:
        return rgba, anchors
    # Premultiplied in 8 bits: a float copy of a 6000-px PNG alone would take 430 MB.
    opacity = rgba[:, :, 3:].astype(np.uint16)
    eight_bit = np.dstack([(rgba[:, :, :3] * opacity + 127) // 255, opacity]).astype(np.uint8)
    small = straight(cv2.resize(eight_bit, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA))
    # Anchors are positions on the picture: they scale with its extent on each axis.
    scale = (small.shape[1] / rgba.shape[1], small.shape[0] / rgba.shape[0])
    moved = None if anchors is None else {name: (x * scale[0], y * scale[1]) for name, (x, y) in anchors.items()}
    return small, moved


def validate_anchors(anchors: object, width: int, height: int) -> dict[str, tuple[float, float]]:
    """Check anchors from a sidecar: all four present, numeric, inside the image and in a sane layout."""
    if not isinstance(anchors, dict):
        raise ValueError('"anchors" must be an object with top, bottom, left and right')
    missing = [name for name in ANCHOR_NAMES if name not in anchors]
    if missing:
        raise ValueError(f"sidecar anchors miss {', '.join(missing)}")
    checked = {}
    for name in ANCHOR_NAMES:
        point = anchors[name]
        if not (isinstance(point, (list, tuple)) and len(point) == 2 and all(isinstance(v, (int, float)) for v in point)):
            raise ValueError(f"anchor {name!r} must be [x, y] numbers, got {point!r}")
        x, y = float(point[0]), float(point[1])
        if not (0 <= x <= width and 0 <= y <= height):
            raise ValueError(f"anchor {name!r} ({x:g}, {y:g}) is outside the {width}x{height} image")
        checked[name] = (x, y)
    if checked["top"][1] >= checked["bottom"][1]:
        raise ValueError("anchor 'top' must be above 'bottom'")
    if checked["left"][0] >= checked["right"][0]:
        raise ValueError("anchor 'left' must be left of 'right'")
    return checked


def bare_on_a_frontal_face(alpha: np.ndarray, anchors: dict[str, tuple[float, float]]) -> list[int]:
    """The nose-tip, nostril and mouth landmarks of the canonical face that a style with this alpha
    (uint8 (h, w)) and these anchors leaves bare when worn as its anchors place it (``fit.bare_features``)."""
    side = 6 * CHECK_EYE_DISTANCE
    face = CANONICAL_FACE * CHECK_EYE_DISTANCE + (side / 2, side / 3)
    # Shrunk first to about the size it is worn at (the body matters, not the fine edge): the check
    # then costs about a millisecond a style.
    shrink = min(1.0, 4 * CHECK_EYE_DISTANCE / (anchors["right"][0] - anchors["left"][0]))
    small = cv2.resize(alpha, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_LINEAR) if shrink < 1 else alpha
    template = np.zeros((*small.shape, 4), np.float32)
    template[:, :, 3] = small / np.float32(255)
    placed = {name: (x * shrink, y * shrink) for name, (x, y) in anchors.items()}
    warped, box = warp_template(halvings(template), anchors_to_template(placed), face, (side, side))
    return bare_features(face, warped[:, :, 3], box, (side, side))


def validate_weight(weight: object) -> int:
    """Check a sidecar's weight: a whole number from 1 to MAX_WEIGHT."""
    if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= MAX_WEIGHT:
        raise ValueError(f'"weight" must be a whole number from 1 to {MAX_WEIGHT}, got {weight!r}')
    return weight


def validate_follow_jaw(follow: object) -> bool:
    """Check a sidecar's follow_jaw: true or false."""
    if not isinstance(follow, bool):
        raise ValueError(f'"follow_jaw" must be true or false, got {follow!r}')
    return follow


def validate_creases(creases: object) -> float:
    """Check a sidecar's creases: a number from 0 (rigid) to 1."""
    if isinstance(creases, bool) or not isinstance(creases, (int, float)) or not 0 <= creases <= 1:
        raise ValueError(f'"creases" must be a number from 0 to 1, got {creases!r}')
    return float(creases)


def read_rgba(path: Path) -> np.ndarray:
    """Read a PNG or WebP as straight RGBA uint8 (h, w, 4); 16-bit is scaled down. Raises ValueError
    for another format, a file that does not decode, or one without alpha."""
    if path.suffix.lower() not in STYLE_SUFFIXES:
        raise ValueError(f"a {path.suffix.lstrip('.').upper() or 'suffix-less'} file cannot be a mask style; "
                         "save it as a PNG (or WebP) with transparency")
    try:  # Pillow first: OpenCV prints its own complaint about a broken file to the terminal
        with Image.open(path) as image:
            image.verify()
    except OSError as error:
        raise ValueError(f"cannot read: {error.strerror}" if error.strerror else "not a readable image") from None
    except (SyntaxError, ValueError):
        raise ValueError("not a readable image") from None
    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise ValueError("not a readable image")
    if pixels.dtype == np.uint16:
        pixels = (pixels // 257).astype(np.uint8)
    if pixels.ndim != 3 or pixels.shape[2] != 4:
        raise ValueError("no alpha channel (a mask style needs a PNG with transparency)")
    return cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGBA)


def load_style(path: str | Path) -> MaskStyle:
    """Load one style PNG and its anchors. Raises StyleError naming the file and the problem."""
    path = Path(path)
    try:
        rgba = read_rgba(path)
        height, width = rgba.shape[:2]
        if min(height, width) < MIN_SIDE:
            raise ValueError(f"image is {width}x{height}; a mask style needs at least {MIN_SIDE} px a side")
        alpha = rgba[:, :, 3]
        if not (alpha >= 128).any():
            raise ValueError("alpha channel is empty (the whole image is transparent)")
        if not (alpha < 128).any():
            raise ValueError("alpha channel is opaque everywhere (a mask style is the mask alone, on a "
                             "transparent background)")
        sidecar = read_sidecar(path.with_suffix(".json"))
        given = validate_anchors(sidecar["anchors"], width, height) if "anchors" in sidecar else None
        rgba, given = reduced(rgba, given)
        anchors, source = (given, "sidecar") if given is not None else (derive_anchors(rgba[:, :, 3]), "alpha")
        narrowed = False
        if validate_follow_jaw(sidecar.get("follow_jaw", True)):
            rgba, narrowed = follow_jaw(rgba, anchors)
        bare = bare_on_a_frontal_face(rgba[:, :, 3], anchors)
        if bare:
            raise ValueError(f"worn as its anchors place it, the mask leaves {len(bare)} of a frontal face's 26 "
                             "nose-tip and mouth landmarks bare (check its anchors, or the shape of its alpha)")
        weight = validate_weight(sidecar.get("weight", 1))
        creases = validate_creases(sidecar.get("creases", 1.0))
    except ValueError as error:
        raise StyleError(f"{path}: {error}") from None
    return MaskStyle(name=path.stem, path=path, rgba=rgba, anchors=anchors, anchors_from=source, weight=weight,
                     creases=creases, narrowed=narrowed,
                     reduced_from=(width, height) if rgba.shape[:2] != (height, width) else None)


def fingerprint(style: MaskStyle) -> str:
    """A short digest of what a style puts on a face: its pixels, anchors and creases (not its weight,
    which changes how often it is drawn, not how it looks). A resumed run compares them, so a PNG
    or sidecar edited under the same name is noticed."""
    digest = hashlib.sha256(np.ascontiguousarray(style.rgba).tobytes())
    digest.update(json.dumps([style.rgba.shape, style.anchors, style.creases], sort_keys=True).encode())
    return digest.hexdigest()[:16]


def read_sidecar(path: Path) -> dict:
    """A style's sidecar as a dict, empty when there is none; ValueError when it cannot be read."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"unreadable sidecar {path.name}: {error}") from None
    if not isinstance(data, dict) or not {"anchors", "weight", "creases", "follow_jaw"} & data.keys():
        raise ValueError(f'sidecar {path.name} needs "anchors" (top, bottom, left, right), "weight", '
                         '"creases" and/or "follow_jaw"')
    return data


def find_style_files(sources: list[Path]) -> list[Path]:
    """The style pictures of the given folders and files: a folder's image files
    (``images.is_image_path``; not hidden ones, as the ``._NAME.png`` a Mac leaves beside each
    file), sorted by name within each, and a picture file named on its own (a user with one mask
    need not make a folder for it)."""
    files = []
    for source in map(Path, sources):
        if source.is_dir():
            files.extend(sorted(p for p in source.iterdir() if is_image_path(p) and not p.name.startswith(".")))
        elif source.is_file() and is_image_path(source):
            files.append(source)
        elif source.exists():
            raise StyleError(f"{source}: neither a folder of mask styles nor a mask picture "
                             f"({', '.join(STYLE_SUFFIXES)})")
        else:
            raise StyleError(f"{source}: no such folder or picture of mask styles")
    return files


def load_styles(sources: list[Path]) -> tuple[list[MaskStyle], list[str]]:
    """Every usable style in the folders and picture files given (``find_style_files``), and one
    message per file that could not be used.

    Two styles of the same name in different places: the first is kept, the second reported.
    Styles load on a thread per core: decoding and checking a style is mostly OpenCV's work, which
    lets other threads run, and the generator waits for its styles before starting its workers
    (the 28 built-in styles: 0.22-0.26 s on two threads, 0.35 s on one).
    """
    paths = find_style_files(sources)
    with ThreadPoolExecutor(max(1, min(len(paths), os.cpu_count() or 1))) as threads:
        loaded = list(threads.map(_style_or_error, paths))
    styles: dict[str, MaskStyle] = {}
    problems = []
    for path, style in zip(paths, loaded):
        if isinstance(style, StyleError):
            problems.append(str(style))
            continue
        if style.name in styles:
            problems.append(f"{path}: a style named {style.name!r} was already loaded from {styles[style.name].path}")
            continue
        styles[style.name] = style
    return list(styles.values()), problems


def _style_or_error(path: Path) -> MaskStyle | StyleError:
    try:
        return load_style(path)
    except StyleError as error:
        return error

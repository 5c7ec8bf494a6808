"""Draw the built-in mask styles: surgical, KN95, cloth, foam and moulded cup masks with fabric, folds and shading.

Each style is drawn directly on the canonical face (see ``augment.fit``), so its anchors are
known exactly and written to a sidecar. ``python -m augment draw-styles --out mask_images``
re-renders them; add a variant by adding an entry to ``STYLES``. Deterministic for a seed.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy.interpolate import CubicSpline

from augment.fit import CANONICAL_ANCHORS, CANONICAL_FACE, JAW

PIXELS_PER_UNIT = 200  # PNG pixels per eye-distance unit
SUPERSAMPLE = 2  # drawn at twice the size, then reduced, for smooth edges and thin cords
X_RANGE = (-1.45, 1.45)
Y_RANGE = (-0.1, 2.1)


@dataclass(frozen=True)
class Style:
    """A built-in style's recipe: its kind (shape and construction), colours and print."""

    name: str
    kind: str  # "surgical", "kn95", "cloth", "sponge" or "cup"
    colour: tuple[int, int, int]  # sRGB base colour
    cord: tuple[int, int, int] = (236, 236, 236)
    pattern: str = "plain"  # cloth prints: plain, stripes, dots, plaid, floral, gingham, camouflage, triangles
    accent: tuple[int, int, int] = (255, 255, 255)
    detail: tuple[int, int, int] = (242, 153, 51)  # a print's third colour: flower hearts, darkest patches
    weight: int = 1  # how often it is drawn, relative to the others (written to the sidecar)
    valve: bool = False  # an exhalation valve of the detail colour (``valve``)


# Weights follow the masks in photos of real masked people: in 96 of them looked at one by one,
# about 45 % dark (black, grey, navy), 30 % white, 12 % light blue or green surgical, 12 %
# coloured or printed, beige rare. Drawn uniformly, the 17 styles gave 47 % coloured or printed
# and 12 % white; with these weights a classifier trained on the generated faces scored higher
# on the real photos for each of six seeds (docs/benchmarks.md, "The mix of styles").
STYLES = (
    Style("surgical_blue", "surgical", (128, 178, 214), weight=8),
    Style("surgical_white", "surgical", (232, 234, 236), weight=12),
    Style("surgical_pink", "surgical", (230, 170, 190), weight=2),
    Style("surgical_black", "surgical", (28, 29, 33), cord=(40, 40, 44), weight=8),
    Style("kn95_white", "kn95", (236, 236, 232), weight=8),
    Style("kn95_black", "kn95", (24, 24, 27), cord=(30, 30, 34), weight=6),
    Style("cloth_navy", "cloth", (28, 36, 66), cord=(30, 32, 40), weight=2),
    Style("cloth_black", "cloth", (18, 18, 20), cord=(25, 25, 28), weight=6),
    Style("cloth_grey", "cloth", (128, 128, 132), cord=(60, 60, 64), weight=4),
    Style("cloth_stripes", "cloth", (200, 200, 196), cord=(40, 40, 44), pattern="stripes", accent=(40, 60, 110)),
    Style("cloth_dots", "cloth", (150, 30, 45), cord=(30, 30, 30), pattern="dots", accent=(235, 232, 225)),
    Style("cloth_plaid", "cloth", (160, 40, 40), cord=(30, 30, 30), pattern="plaid", accent=(30, 50, 40)),
    Style("cloth_floral", "cloth", (70, 110, 160), cord=(235, 235, 235), pattern="floral", accent=(245, 215, 120)),
    # Added after the real-photo error sheets: bright printed, pink cup and skin-toned masks were missed.
    Style("cloth_mustard", "cloth", (225, 170, 40), cord=(40, 30, 20), pattern="floral", accent=(170, 40, 40)),
    # Real printed masks are as many as their fabrics; five prints, each the same on every face it
    # was drawn on, let a classifier learn those five. Nine prints, each drawn half as often as the
    # rarest plain style (every plain weight was doubled), keep the printed share where it was.
    Style("cloth_gingham", "cloth", (236, 236, 232), cord=(235, 235, 235), pattern="gingham", accent=(60, 100, 165)),
    Style("cloth_camouflage", "cloth", (112, 116, 74), cord=(40, 40, 35), pattern="camouflage",
          accent=(92, 72, 50), detail=(38, 38, 32)),
    Style("cloth_triangles", "cloth", (40, 120, 90), cord=(30, 30, 30), pattern="triangles", accent=(200, 50, 45),
          detail=(235, 225, 205)),
    Style("cloth_floral_black", "cloth", (26, 26, 30), cord=(25, 25, 28), pattern="floral", accent=(225, 140, 165),
          detail=(245, 230, 140)),
    Style("kn95_pink", "kn95", (235, 160, 190), weight=2),
    Style("cloth_beige", "cloth", (205, 175, 145), cord=(90, 70, 55), weight=2),
    Style("surgical_green", "surgical", (120, 175, 150), weight=4),
    # The moulded dome of a builder's or clinic's respirator, with head straps instead of ear
    # loops: 4 of 48 real masked photos drawn at random from the development set wear one.
    Style("cup_white", "cup", (232, 232, 226), cord=(218, 190, 96), weight=4),
    # Moulded polyurethane foam, its ear straps cut from the same sheet: about one real masked
    # photo in eight wears one, and they were five of the 16 masked photos one seed's classifier,
    # trained without them, missed.
    # Their weights come out of the plain dark cloth masks', so the dark share stays 41 %. The
    # straps face the ears, away from the camera, so they are darker than the mask's front.
    Style("sponge_black", "sponge", (30, 30, 33), cord=(21, 21, 23), weight=4),
    Style("sponge_grey", "sponge", (112, 112, 116), cord=(78, 78, 81), weight=4),
    Style("sponge_navy", "sponge", (52, 62, 92), cord=(36, 43, 64), weight=2),
    # Respirators and sports masks often have an exhalation valve: a plastic disc in front of a
    # cheek or the mouth (several in 48 real masked photos). Weight 1 each, added to their twins':
    # the mix moves by a point (white 29 %, dark 41 %), and only the faces they win are made anew.
    Style("kn95_white_valve", "kn95", (236, 236, 232), detail=(196, 198, 204), valve=True),
    Style("cup_white_valve", "cup", (232, 232, 226), cord=(218, 190, 96), detail=(222, 224, 228), valve=True),
    Style("sponge_black_valve", "sponge", (30, 30, 33), cord=(21, 21, 23), detail=(120, 122, 128), valve=True),
)

# Per kind: top edge height at the centre and at the sides, how far the side and chin edges
# stand off the jaw line (eye-distance units), and where the sides start on the jaw.
SHAPES = {
    "surgical": dict(top_centre=0.24, top_side=0.42, jaw_gap=0.04, chin_gap=0.15, top_curve=1.6),
    "kn95": dict(top_centre=0.20, top_side=0.50, jaw_gap=0.05, chin_gap=0.17, top_curve=1.0),
    "cloth": dict(top_centre=0.21, top_side=0.46, jaw_gap=0.04, chin_gap=0.16, top_curve=1.3),
    "sponge": dict(top_centre=0.16, top_side=0.40, jaw_gap=0.05, chin_gap=0.17, top_curve=1.1),
}
# A moulded cup does not follow the jaw: an egg from the nose bridge to under the chin, its
# widest part (half_width) at the mouth, narrower towards the top (top_narrowing).
CUP = dict(top=0.20, bottom=1.94, half_width=0.86, top_narrowing=0.2)


def to_pixels(points: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Canonical (x, y) to PNG pixel coordinates (times ``scale`` for the supersampled canvas)."""
    points = np.asarray(points, dtype=np.float64)
    return (points - (X_RANGE[0], Y_RANGE[0])) * PIXELS_PER_UNIT * scale


def canvas_size(scale: float = 1.0) -> tuple[int, int]:
    """(width, height) of the PNG (times ``scale``)."""
    return (
        int(round((X_RANGE[1] - X_RANGE[0]) * PIXELS_PER_UNIT * scale)),
        int(round((Y_RANGE[1] - Y_RANGE[0]) * PIXELS_PER_UNIT * scale)),
    )


def jaw_curve(samples: int = 200) -> np.ndarray:
    """A smooth (samples, 2) curve through the canonical jaw points 0..16."""
    jaw = CANONICAL_FACE[JAW]
    t = np.arange(len(jaw), dtype=np.float64)
    spline = CubicSpline(t, jaw, axis=0)
    return spline(np.linspace(0, len(jaw) - 1, samples))


def outline(shape: dict) -> np.ndarray:
    """The mask's closed outline (N, 2) in canonical units: top edge, then the jaw-following sides and chin."""
    top_x = np.linspace(-1.0, 1.0, 81)
    curve = jaw_curve(400)
    # Sides and chin: the jaw pushed outward, by more near the chin so the mask goes under it.
    centre = np.array([0.0, 0.6])
    direction = curve - centre
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    chin_weight = np.clip((curve[:, 1] - 0.9) / 0.9, 0.0, 1.0) ** 1.5
    gap = shape["jaw_gap"] + (shape["chin_gap"] - shape["jaw_gap"]) * chin_weight
    lower = curve + direction * gap[:, None]
    lower = lower[lower[:, 1] >= shape["top_side"]]
    side = np.abs(lower[[0, -1], 0]).mean()
    xs = top_x * side
    ys = shape["top_centre"] + (shape["top_side"] - shape["top_centre"]) * np.abs(top_x) ** shape["top_curve"]
    top = np.stack([xs, ys], axis=1)
    # The jaw runs left -> chin -> right; after the top edge (left -> right) it is walked back.
    return np.vstack([top, lower[::-1]])


def cup_outline(cup: dict = CUP, samples: int = 240) -> np.ndarray:
    """A moulded cup's closed outline (samples, 2) in canonical units, clockwise from the top."""
    t = np.linspace(0.0, 2 * np.pi, samples, endpoint=False)
    centre, half_height = (cup["top"] + cup["bottom"]) / 2, (cup["bottom"] - cup["top"]) / 2
    narrowing = 1.0 - cup["top_narrowing"] * np.clip(np.cos(t), 0.0, None) ** 2
    return np.stack([cup["half_width"] * np.sin(t) * narrowing, centre - half_height * np.cos(t)], axis=1)


def body_outline(kind: str) -> np.ndarray:
    """The outline of a mask of ``kind`` (N, 2) in canonical units."""
    return cup_outline() if kind == "cup" else outline(SHAPES[kind])


def fill(polygon: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Anti-aliased coverage (float32 (h, w), 0..1) of a canonical polygon on a canvas of ``size`` (w, h)."""
    coverage = np.zeros((size[1], size[0]), np.uint8)
    scale = size[0] / canvas_size()[0]
    corners = np.round(to_pixels(polygon, scale) * 16).astype(np.int32)
    cv2.fillPoly(coverage, [corners], 255, lineType=cv2.LINE_AA, shift=4)
    return coverage.astype(np.float32) / 255.0


def stroke(points: np.ndarray, size: tuple[int, int], width: float) -> np.ndarray:
    """Anti-aliased coverage of a canonical polyline drawn ``width`` canonical units thick."""
    coverage = np.zeros((size[1], size[0]), np.uint8)
    scale = size[0] / canvas_size()[0]
    corners = np.round(to_pixels(points, scale) * 16).astype(np.int32)
    thickness = max(1, int(round(width * PIXELS_PER_UNIT * scale)))
    cv2.polylines(coverage, [corners], False, 255, thickness=thickness, lineType=cv2.LINE_AA, shift=4)
    return coverage.astype(np.float32) / 255.0


def coordinates(size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Canonical x and y of every pixel centre of a canvas of ``size``."""
    scale = size[0] / canvas_size()[0]
    xs = (np.arange(size[0]) + 0.5) / (PIXELS_PER_UNIT * scale) + X_RANGE[0]
    ys = (np.arange(size[1]) + 0.5) / (PIXELS_PER_UNIT * scale) + Y_RANGE[0]
    return np.meshgrid(xs.astype(np.float32), ys.astype(np.float32))


def fabric(size: tuple[int, int], kind: str, rng: np.random.Generator) -> np.ndarray:
    """Multiplicative fabric texture around 1 (h, w): non-woven fleece or a woven grain."""
    height, width = size[1], size[0]
    fine = cv2.GaussianBlur(rng.normal(0, 1, (height, width)).astype(np.float32), (0, 0), 1.0)
    coarse = cv2.GaussianBlur(rng.normal(0, 1, (height, width)).astype(np.float32), (0, 0), 6.0)
    coarse /= coarse.std() + 1e-6
    fine /= fine.std() + 1e-6
    if kind == "cloth":
        x, y = coordinates(size)
        period = 0.022  # thread spacing in canonical units
        weave = np.sin(2 * np.pi * x / period) * np.sin(2 * np.pi * y / period)
        return 1.0 + 0.05 * weave + 0.035 * fine + 0.03 * coarse
    if kind == "sponge":  # fine open pores, even at a larger scale
        return 1.0 + 0.04 * fine + 0.015 * coarse
    # Non-woven polypropylene: a fleece of short fibres, blotchy at a larger scale.
    fibres = cv2.GaussianBlur(rng.normal(0, 1, (height, width)).astype(np.float32), (0, 0), sigmaX=3.0, sigmaY=0.8)
    fibres /= fibres.std() + 1e-6
    return 1.0 + 0.025 * fine + 0.03 * fibres + 0.025 * coarse


def print_pattern(style: Style, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """The cloth's printed colours (h, w, 3) in sRGB [0, 1]."""
    base = np.array(style.colour, np.float32) / 255.0
    accent = np.array(style.accent, np.float32) / 255.0
    detail = np.array(style.detail, np.float32) / 255.0
    x, y = coordinates(size)
    image = np.broadcast_to(base, (size[1], size[0], 3)).copy()
    amount = np.zeros((size[1], size[0]), np.float32)
    if style.pattern == "stripes":
        amount = (np.sin(2 * np.pi * (x + y) / 0.16) > 0.35).astype(np.float32)
    elif style.pattern == "dots":
        cell = 0.14
        offset = (np.floor(y / cell) % 2) * cell / 2
        dx = (x + offset) % cell - cell / 2
        dy = y % cell - cell / 2
        amount = (np.hypot(dx, dy) < 0.032).astype(np.float32)
    elif style.pattern == "plaid":
        bands_x = (np.abs(((x / 0.3) % 1) - 0.5) < 0.12).astype(np.float32)
        bands_y = (np.abs(((y / 0.3) % 1) - 0.5) < 0.12).astype(np.float32)
        thin = ((np.abs(((x / 0.3) % 1) - 0.0) < 0.02) | (np.abs(((y / 0.3) % 1) - 0.0) < 0.02)).astype(np.float32)
        amount = np.clip(0.45 * bands_x + 0.45 * bands_y + 0.8 * thin, 0, 1)
    elif style.pattern == "floral":
        centres = rng.uniform((X_RANGE[0], Y_RANGE[0]), (X_RANGE[1], Y_RANGE[1]), size=(160, 2))
        for cx, cy in centres:
            for petal in range(5):
                angle = 2 * np.pi * petal / 5 + cx
                px, py = cx + 0.035 * np.cos(angle), cy + 0.035 * np.sin(angle)
                amount = np.maximum(amount, (np.hypot(x - px, y - py) < 0.026).astype(np.float32))
            image[np.hypot(x - cx, y - cy) < 0.014] = detail
    elif style.pattern == "gingham":  # even checks: a band one way half the accent, where two cross all of it
        bands_x = (((x / 0.1) % 1) < 0.5).astype(np.float32)
        bands_y = (((y / 0.1) % 1) < 0.5).astype(np.float32)
        amount = 0.5 * bands_x + 0.5 * bands_y
    elif style.pattern == "camouflage":  # blotches of the accent, and darker ones partly over them
        amount = blotches(size, rng, 0.0)
        image[blotches(size, rng, 0.25) > 0.5] = detail
    elif style.pattern == "triangles":  # a lattice of triangles, each of one of the three colours
        u, v = x / 0.2 + 0.5 * y / 0.2, y / 0.2
        upper = ((u % 1) + (v % 1) < 1).astype(np.int64)
        cells = np.floor(u).astype(np.int64) * 2 + upper + 1000 * np.floor(v).astype(np.int64)
        colour_of = rng.integers(0, 3, size=int(cells.max() - cells.min()) + 1)[cells - cells.min()]
        amount = (colour_of == 1).astype(np.float32)
        image[colour_of == 2] = detail
    smooth = cv2.GaussianBlur(amount, (0, 0), 0.8)[:, :, None]
    return image * (1 - smooth) + accent * smooth


def blotches(size: tuple[int, int], rng: np.random.Generator, threshold: float) -> np.ndarray:
    """Rounded blotches (h, w) in 0..1, about a third of the cloth at ``threshold`` 0: smooth noise, cut."""
    per_unit = size[0] / (X_RANGE[1] - X_RANGE[0])
    noise = cv2.GaussianBlur(rng.normal(0, 1, (size[1], size[0])).astype(np.float32), (0, 0), 0.08 * per_unit)
    noise /= noise.std() + 1e-6
    return np.clip((noise - 0.45 - threshold) * 4.0, 0.0, 1.0)


def shading(style: Style, size: tuple[int, int]) -> np.ndarray:
    """Multiplicative shading (h, w) for the mask's 3-D form: curved round the face, raised over the nose."""
    x, y = coordinates(size)
    if style.kind == "cup":
        return dome(x, y)
    shape = SHAPES[style.kind]
    # Real masks turn well away from the camera at the sides and under the chin: drawn with about
    # half this falloff they looked flat on evenly lit faces, and classifiers trained on them
    # scored lower on real photos (docs/benchmarks.md, "Masks with more form").
    around = 1.0 - 0.55 * np.clip(np.abs(x) / 1.1, 0, 1) ** 2.2
    nose_ridge = 0.12 * np.exp(-((x / 0.18) ** 2) - ((y - 0.55) / 0.35) ** 2)
    nose_shadow = -0.06 * np.exp(-(((np.abs(x) - 0.32) / 0.12) ** 2) - ((y - 0.75) / 0.25) ** 2)
    under_chin = -0.35 * np.clip((y - 1.55) / 0.4, 0, 1) ** 2
    result = around + nose_ridge + nose_shadow + under_chin
    if style.kind == "surgical":
        result += pleats(x, y, shape)
    elif style.kind == "kn95":
        # Two flat panels meeting at a vertical crease; light from the picture's left.
        result += np.where(x < 0, 0.14, -0.14) * np.clip(np.abs(x) / 0.15, 0, 1)
        result -= 0.18 * np.exp(-((x / 0.012) ** 2))
        result += 0.08 * np.exp(-(((x + 0.03) / 0.02) ** 2))
    elif style.kind == "sponge":
        # Moulded to a point over the nose, with a seam from there down to the chin; smooth elsewhere.
        # The thick foam curves round the cheeks further than cloth does, so its sides are darker.
        result -= 0.12 * np.clip(np.abs(x) / 1.1, 0, 1) ** 2
        result += 0.06 * np.exp(-((x / 0.12) ** 2) - ((y - 0.5) / 0.3) ** 2)
        seam = np.exp(-((x / 0.012) ** 2)) * (y > 0.3)
        result += 0.05 * np.exp(-(((x + 0.025) / 0.02) ** 2)) * (y > 0.3) - 0.12 * seam
    else:
        # Soft wrinkles where the cloth gathers at the sides and under the chin.
        result += 0.04 * np.sin(2 * np.pi * (y + 0.25 * x * x) / 0.35) * np.clip(np.abs(x) - 0.3, 0, 1)
        result -= 0.10 * np.exp(-((x / 0.01) ** 2))  # the centre seam
    return result.astype(np.float32)


def dome(x: np.ndarray, y: np.ndarray, cup: dict = CUP) -> np.ndarray:
    """Multiplicative shading of a moulded cup: a shell lit from the upper left, moulded in rings,
    its rim a flat flange.

    The shell is a half ellipsoid over the cup's outline; light falls on it by the cosine of
    its surface's slope (with some ambient light), so the side turned away and the part under
    the chin are darker and the outline is seen as an edge even on a face of the same colour.
    Rings pressed into the shell follow the outline round the lower face, as on a dust mask.
    """
    centre, half_height = (cup["top"] + cup["bottom"]) / 2, (cup["bottom"] - cup["top"]) / 2
    u = x / cup["half_width"]
    v = (y - centre) / half_height
    radius = np.minimum(np.hypot(u, v), 1.0)
    # The shell's height is 0.8 * sqrt(1 - radius^2); its slope, kept finite at the rim:
    steep = np.clip(radius, 0.0, 0.985)
    slope = 0.8 * steep / np.sqrt(1.0 - steep**2)
    angle = np.arctan2(v, u)
    normal = np.stack([slope * np.cos(angle), slope * np.sin(angle), np.ones_like(u)], axis=-1)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    light = np.array([-0.35, -0.45, 1.0], np.float32) / np.linalg.norm([-0.35, -0.45, 1.0])
    lit = 0.3 + 0.8 * np.clip(normal @ light, 0.0, 1.0)
    # The rings fade in from the middle, out before the flange, and out above the mouth (the nose clip's smooth band).
    rings = (0.04 * np.cos(2 * np.pi * radius / 0.11) * np.clip((radius - 0.35) / 0.2, 0, 1)
             * np.clip((0.86 - radius) / 0.04, 0, 1) * np.clip((v + 0.45) / 0.35, 0, 1))
    flange = 0.10 * np.exp(-(((radius - 0.93) / 0.02) ** 2)) - 0.18 * np.exp(-(((radius - 0.965) / 0.012) ** 2))
    return (lit + rings + flange).astype(np.float32)


# How deeply each kind creases where it is worn (the sidecar's "creases"; see augment.blend):
# cloth and pleated paper fully, a KN95's stiffer layers half, a moulded cup not at all.
CREASES = {"surgical": 1.0, "cloth": 1.0, "kn95": 0.5, "sponge": 0.3, "cup": 0.0}


# Canonical width of the ear loops or straps: thin elastic cord, a cup's head straps, and the
# wide bands a foam mask's ear slots leave.
CORD_WIDTH = {"surgical": 0.022, "kn95": 0.022, "cloth": 0.022, "sponge": 0.09, "cup": 0.034}


# Light the fabric reflects off its surface whatever its colour: what makes a black mask
# look like cloth over a nose and cheeks rather than a hole in the picture (linear light).
SHEEN = {"surgical": 0.04, "kn95": 0.05, "cloth": 0.03, "sponge": 0.02, "cup": 0.05}
# The glint along a pleat's fold, as a share of the nose ridge's.
PLEAT_GLINT = 0.8


def sheen(size: tuple[int, int]) -> np.ndarray:
    """Where the mask's surface faces the camera most: the bridge of the nose and the cheeks (h, w) in 0..1.

    Narrow lobes, as a glossy highlight is: spread wide, the same light greys the whole mask.
    """
    x, y = coordinates(size)
    ridge = np.exp(-((x / 0.14) ** 2) - ((y - 0.58) / 0.34) ** 2)
    cheeks = np.exp(-(((np.abs(x) - 0.5) / 0.2) ** 2) - ((y - 0.9) / 0.45) ** 2)
    return (ridge + 0.35 * cheeks).astype(np.float32)


def pleats(x: np.ndarray, y: np.ndarray, shape: dict) -> np.ndarray:
    """Three horizontal pleats: a highlight on each fold, a dark crease, a shadow fading below it."""
    result = np.zeros_like(x)
    for distance in _below_pleats(x, y, shape):
        result += 0.07 * _fold_ridge(distance)
        result -= 0.22 * np.exp(-(distance / 0.008) ** 2)
        result -= 0.12 * np.exp(-np.clip(distance, 0, None) / 0.06) * (distance > 0)
    return result


def pleat_glint(x: np.ndarray, y: np.ndarray, shape: dict) -> np.ndarray:
    """Where the folds of the pleats catch the light (h, w, 0..1): on a dark mask that glint, not its
    dye, is what shows the pleats."""
    return sum(_fold_ridge(distance) for distance in _below_pleats(x, y, shape))


def _below_pleats(x: np.ndarray, y: np.ndarray, shape: dict) -> list[np.ndarray]:
    """How far below each of the three pleats' crease lines each point lies (canonical units)."""
    distances = []
    for level in (0.50, 0.85, 1.20):
        # Pleats bow with the top edge near the nose and flatten towards the chin.
        bow = (shape["top_side"] - shape["top_centre"]) * (1.3 - level) * np.abs(x / 1.1) ** shape["top_curve"]
        distances.append(y - (level + bow))
    return distances


def _fold_ridge(distance: np.ndarray) -> np.ndarray:
    return np.exp(-((distance + 0.03) / 0.02) ** 2)


def bent_line(start: np.ndarray, end: np.ndarray, bend: np.ndarray, samples: int = 40) -> np.ndarray:
    """A cord from ``start`` to ``end`` (canonical (x, y)) sagging by ``bend`` at its middle: a quadratic
    Bezier curve through the control point ``bend`` away from the midpoint, as (samples, 2) points."""
    t = np.linspace(0, 1, samples)[:, None]
    control = (start + end) / 2 + bend
    return (1 - t) ** 2 * start + 2 * (1 - t) * t * control + t**2 * end


# Where an ear loop goes behind the ear, seen from the front: just past the face's outline (jaw
# point 1 is at x 1.07). From the mask's side the loop runs back, away from the camera, so a front
# view shows little of it; drawn out to 1.36 (the first styles), the loops stood out beside the
# face like handles, in the air wherever hair or background hid the ear.
EAR = (1.17, 0.28)


def ear_loops(body: np.ndarray) -> list[np.ndarray]:
    """Polylines of the two ear loops on each side, from the mask's corners to behind the ear."""
    top_corner = body[0]
    loops = []
    for sign in (-1.0, 1.0):
        top = np.array([sign * abs(top_corner[0]), top_corner[1] + 0.02])
        bottom = np.array([sign * 0.93, 1.22])
        ear = np.array([sign * EAR[0], EAR[1]])
        for start, bend in ((top, 0.03), (bottom, 0.12)):
            loops.append(bent_line(start, ear, np.array([sign * bend, -0.02])))
    return loops


def head_straps() -> list[np.ndarray]:
    """Polylines of a cup's two head straps on each side: over the ear towards the crown, and back
    under the ear, where the neck hides it."""
    straps = []
    for sign in (-1.0, 1.0):
        for start, end, bend in (((0.70, 0.62), (1.32, 0.02), -0.06), ((0.80, 1.40), (1.04, 1.32), 0.02)):
            start, end = np.array([sign * start[0], start[1]]), np.array([sign * end[0], end[1]])
            straps.append(bent_line(start, end, np.array([0.0, bend])))
    return straps


def nose_clip(size: tuple[int, int], cup: dict = CUP) -> tuple[np.ndarray, np.ndarray]:
    """A cup's metal nose clip: its coverage (h, w), a strip across the nose a little under the top
    edge, bent to it, and a glint along it (h, w)."""
    x, y = coordinates(size)
    arch = cup["top"] + 0.11 + 0.25 * x**2
    across = np.clip((0.3 - np.abs(x)) / 0.01, 0, 1)
    clip = across * np.clip((0.022 - np.abs(y - arch)) / 0.006, 0, 1)
    glint = np.exp(-(((y - arch + 0.008) / 0.006) ** 2)) * np.exp(-((x + 0.05) / 0.16) ** 2)
    return clip.astype(np.float32), glint.astype(np.float32)


# An exhalation valve's radius, and where it sits: in front of the wearer's left cheek on a KN95 or a
# foam mask, in front of the mouth on a moulded cup (canonical units).
VALVE_RADIUS = 0.24
VALVE_CENTRE = {"kn95": (0.5, 0.95), "sponge": (0.5, 0.95), "cup": (0.0, 1.1)}


def valve(kind: str, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An exhalation valve on a mask of ``kind``: its coverage (h, w), its shading (h, w) and the shadow
    (h, w, 0..1) it casts on the mask. A raised disc, its bevelled rim lit from the upper left as the
    masks are, a grille of slots across its cap; its shadow falls to the lower right."""
    x, y = coordinates(size)
    centre_x, centre_y = VALVE_CENTRE[kind]
    across, down = (x - centre_x) / VALVE_RADIUS, (y - centre_y) / VALVE_RADIUS
    radius = np.hypot(across, down)
    per_unit = size[0] / (X_RANGE[1] - X_RANGE[0])  # pixels to the canonical unit
    cover = np.clip((1.0 - radius) * VALVE_RADIUS * per_unit + 0.5, 0.0, 1.0)  # anti-aliased over a pixel
    facing = -(across + down) / np.maximum(radius, 1e-6) / np.sqrt(2.0)  # 1 where the rim faces the light
    bevel = np.clip((radius - 0.75) / 0.2, 0.0, 1.0)
    slots = np.clip((0.55 - np.abs(across)) / 0.05, 0, 1) * np.clip((0.5 - np.abs(down)) / 0.05, 0, 1) * (
        np.cos(2 * np.pi * down / 0.2) > 0.3)
    shading = (1.0 + 0.35 * bevel * facing) * (1.0 - 0.55 * slots)
    shift = np.float32([[1, 0, 0.02 * per_unit], [0, 1, 0.03 * per_unit]])
    shadow = cv2.GaussianBlur(cv2.warpAffine(cover.astype(np.float32), shift, size), (0, 0), 0.02 * per_unit)
    return cover.astype(np.float32), shading.astype(np.float32), shadow * (1.0 - cover)


def render_style(style: Style, seed: int = 0) -> tuple[np.ndarray, dict]:
    """Render one style: straight RGBA uint8 (h, w, 4) and its sidecar dict with anchors in PNG pixels."""
    rng = np.random.default_rng([seed, sum(style.name.encode())])
    size = canvas_size(SUPERSAMPLE)
    body = body_outline(style.kind)
    coverage = fill(body, size)
    colour = print_pattern(style, size, rng) if style.kind == "cloth" else np.broadcast_to(
        np.array(style.colour, np.float32) / 255.0, (size[1], size[0], 3)
    )
    texture = fabric(size, style.kind, rng)
    form = shading(style, size)
    linear = np.power(colour, 2.2) * (form * texture)[:, :, None]
    glint = sheen(size)
    if style.kind == "surgical":
        glint += PLEAT_GLINT * pleat_glint(*coordinates(size), SHAPES["surgical"])
    linear += (SHEEN[style.kind] * glint * texture)[:, :, None]
    if style.kind == "kn95":
        linear *= 1.0 - 0.35 * seal_dots(body, size)[:, :, None]
    if style.kind == "cloth":
        linear *= hem(coverage, body, size)[:, :, None]
    if style.kind == "sponge":  # a thick sheet: its cut edge rounds away from the light
        linear *= (1.0 - 0.25 * np.exp(-edge_depth(coverage, size) / 0.03))[:, :, None]
    if style.kind == "surgical":
        # Bound side edges: a denser strip of tape along each side.
        x, _ = coordinates(size)
        edge = np.clip((np.abs(x) - (abs(body[0, 0]) - 0.09)) / 0.01, 0, 1)
        linear *= (1.0 + 0.06 * edge - 0.25 * np.exp(-((np.abs(x) - (abs(body[0, 0]) - 0.09)) / 0.006) ** 2))[:, :, None]
    if style.kind == "cup":
        clip, glint = nose_clip(size)
        linear = linear * (1 - clip[:, :, None]) + (0.30 + 0.5 * glint)[:, :, None] * clip[:, :, None]
    if style.valve:
        cover, valve_shading, shadow = valve(style.kind, size)
        plastic = np.power(np.array(style.detail, np.float32) / 255.0, 2.2) * form[:, :, None]  # the mask's form
        linear *= 1.0 - 0.4 * shadow[:, :, None]
        linear = linear * (1 - cover[:, :, None]) + plastic * (valve_shading * cover)[:, :, None]
    rgb = np.power(np.clip(linear, 0, 1), 1 / 2.2)
    alpha = coverage
    cord_colour = np.array(style.cord, np.float32) / 255.0
    cords = head_straps() if style.kind == "cup" else ear_loops(body)
    width = CORD_WIDTH[style.kind]
    for loop in cords:
        cord = stroke(loop, size, width) * (1 - coverage)
        tube = np.clip(cord * 1.2, 0, 1)
        rgb = rgb * (1 - tube[:, :, None]) + cord_colour * 0.85 * tube[:, :, None]
        alpha = np.maximum(alpha, cord)
    rgba = np.dstack([rgb, alpha])
    rgba = cv2.resize(rgba, canvas_size(), interpolation=cv2.INTER_AREA)
    rgba = np.clip(rgba * 255 + 0.5, 0, 255).astype(np.uint8)
    anchors = {name: [round(float(v), 2) for v in to_pixels(point)] for name, point in CANONICAL_ANCHORS.items()}
    sidecar = {"anchors": anchors, "kind": style.kind, "drawn_by": "augment/draw_styles.py"}
    if style.weight != 1:
        sidecar["weight"] = style.weight
    if CREASES[style.kind] != 1:
        sidecar["creases"] = CREASES[style.kind]
    return rgba, sidecar


def hem(coverage: np.ndarray, body: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Multiplicative shading (h, w) of a sewn cloth edge: the rim turning away from the camera,
    the fold of the turned-in hem, and a line of topstitching just inside the edge."""
    depth = edge_depth(coverage, size)
    x, y = coordinates(size)
    centre = body.mean(axis=0)
    stitches = np.sin(np.arctan2(y - centre[1], x - centre[0]) * 160.0) > -0.2  # dashes along the edge
    rim = -0.22 * np.exp(-depth / 0.025)
    fold = -0.15 * np.exp(-(((depth - 0.06) / 0.007) ** 2))
    thread = -0.30 * np.exp(-(((depth - 0.035) / 0.005) ** 2)) * stitches
    return (1.0 + rim + fold + thread).astype(np.float32)


def edge_depth(coverage: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Each pixel's distance inside the mask's edge (h, w), in canonical units; 0 outside."""
    scale = size[0] / canvas_size()[0]
    inside = cv2.distanceTransform((coverage > 0.5).astype(np.uint8), cv2.DIST_L2, 5)
    return inside / (PIXELS_PER_UNIT * scale)


def seal_dots(body: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Coverage of a KN95's heat-seal dots: along an inset of the outline and down the centre seam."""
    dots = np.zeros((size[1], size[0]), np.uint8)
    scale = size[0] / canvas_size()[0]
    centroid = body.mean(axis=0)
    inset = centroid + (body - centroid) * 0.95
    seam = np.stack([np.zeros(40), np.linspace(0.26, 1.85, 40)], axis=1)
    for path in (inset, seam):
        lengths = np.r_[0, np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))]
        for distance in np.arange(0, lengths[-1], 0.035):
            point = np.array([np.interp(distance, lengths, path[:, 0]), np.interp(distance, lengths, path[:, 1])])
            centre = tuple(int(v) for v in np.round(to_pixels(point, scale)))
            cv2.circle(dots, centre, max(1, int(0.007 * PIXELS_PER_UNIT * scale)), 255, -1, lineType=cv2.LINE_AA)
    return dots.astype(np.float32) / 255.0


def write_styles(out_dir: Path, seed: int = 0) -> list[Path]:
    """Render every built-in style into ``out_dir`` as NAME.png plus NAME.json; returns the PNG paths."""
    from augment.images import write_atomic

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for style in STYLES:
        rgba, sidecar = render_style(style, seed)
        ok, png = cv2.imencode(".png", cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
        assert ok
        write_atomic(out_dir / f"{style.name}.png", png.tobytes())
        write_atomic(out_dir / f"{style.name}.json", (json.dumps(sidecar, indent=2) + "\n").encode())
        written.append(out_dir / f"{style.name}.png")
    return written

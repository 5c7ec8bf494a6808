"""Compositing a warped mask onto a face so that it looks photographed, not pasted.

The mask takes the light of the lower face it covers (spatial shading, exposure and colour
cast, estimated in linear light), the face's blur and sensor noise, a soft edge, and casts
a faint contact shadow on the skin around it. Pure functions on float32 arrays; images in
sRGB [0, 1] unless a name says linear.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, NamedTuple

import cv2
import numpy as np

from augment import fit, glasses
from augment.geometry import apply_affine, fit_affine
from augment.styles import MaskStyle

LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)

# The typical lower face in linear light, read as ``lighting`` reads it (the mean under the mask,
# lips and nostrils included): luminance and the colour ratios (R, G, B) / luminance, medians
# over the 517 faces of 514 frontal photos. A face darker or warmer than this is read partly as
# darker or warmer light, since skin tone and light cannot be told apart; the typical face gets
# the mask's own colours.
SKIN_LUMINANCE = 0.31
SKIN_CHROMA = np.array([1.55, 0.87, 0.66], dtype=np.float32)
EXPOSURE_STRENGTH = 0.5
CAST_STRENGTH = 0.6

# The blur a warped template already has from bilinear resampling, and the most we add.
TEMPLATE_SIGMA = 0.5
MAX_SIGMA = 4.0


@dataclass(frozen=True)
class MaskParams:
    """The random choices for one masked face (recorded in the manifest).

    ``shift`` moves the mask down (positive) or up along the face, ``width`` scales it
    across the face, both in eye-distance units or factors; ``tint`` multiplies the
    mask's linear RGB; ``shadow`` is the strength of the contact shadow; ``creases`` are the
    folds it makes on this face (``draw_creases``), as deep as its style lets them be;
    ``mirrored``: the style is worn mirrored left to right (``worn_mirrored``).
    """

    style: str
    shift: float = 0.0
    width: float = 1.0
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    shadow: float = 0.35
    creases: tuple[tuple[float, float, float, float, float, float], ...] = ()
    mirrored: bool = False


# sRGB to linear light for 8-bit values (gamma 2.2): a table, the hottest arithmetic here.
_TO_LINEAR = np.power(np.arange(256, dtype=np.float64) / 255.0, 2.2).astype(np.float32)


def srgb_to_linear(values: np.ndarray) -> np.ndarray:
    """sRGB to linear light (gamma 2.2): uint8 [0, 255] through a table, floats [0, 1] directly."""
    if values.dtype == np.uint8:
        return cv2.LUT(values, _TO_LINEAR)  # the same lookup as _TO_LINEAR[values], 4-6x faster
    return np.power(np.clip(values, 0.0, 1.0), 2.2, dtype=np.float32)


def linear_to_srgb(values: np.ndarray) -> np.ndarray:
    """Linear light to sRGB [0, 1] (gamma 2.2), clipped to [0, 1] first; float32 in, float32 out."""
    return cv2.pow(np.clip(values, 0.0, 1.0), 1 / 2.2)


def blur(values: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur; sigma 0 returns the input. Wide blurs run on a reduced copy, which they cannot tell apart."""
    if sigma <= 0.05:
        return values
    if sigma > 6.0:
        factor = sigma / 3.0
        height, width = values.shape[:2]
        small_size = (max(1, round(width / factor)), max(1, round(height / factor)))
        small = cv2.resize(values, small_size, interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (0, 0), sigmaX=3.0, sigmaY=3.0, borderType=cv2.BORDER_REFLECT)
        return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    return cv2.GaussianBlur(values, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)


def weighted_blur(values: np.ndarray, weight: np.ndarray, sigma: float) -> np.ndarray:
    """Normalised convolution: the local weighted mean of ``values`` (H, W[, C]) under ``weight`` (H, W)."""
    weight = weight.astype(np.float32)
    if values.ndim == 3:
        numerator = blur(values * weight[:, :, None], sigma)
        return numerator / np.maximum(blur(weight, sigma), 1e-4)[:, :, None]
    return blur(values * weight, sigma) / np.maximum(blur(weight, sigma), 1e-4)


def lighting(face_linear: np.ndarray, coverage: np.ndarray, size: float) -> tuple[np.ndarray, np.ndarray, float]:
    """How the light falls on the covered part of the face.

    ``face_linear`` (H, W, 3) linear RGB, ``coverage`` (H, W) in [0, 1] where the mask will be,
    ``size`` the mask's width in pixels. Returns the relative shading (H, W, 1) around 1, the
    gain (3,) for exposure and colour cast that a neutral surface there would receive, and the
    photo's colour saturation relative to typical skin (0 for a greyscale photo, at most 1).
    """
    height, width = face_linear.shape[:2]
    # Light varies slowly: it is read from a copy with the mask about 48 px wide.
    factor = max(1.0, size / 48.0)
    small_size = (max(1, round(width / factor)), max(1, round(height / factor)))
    face_small = cv2.resize(face_linear, small_size, interpolation=cv2.INTER_AREA)
    weight = (cv2.resize(coverage, small_size, interpolation=cv2.INTER_AREA) > 0.5).astype(np.float32)
    if weight.sum() < 4:
        return np.ones((height, width, 1), np.float32), np.ones(3, np.float32), 1.0
    mean_rgb = (face_small * weight[:, :, None]).sum(axis=(0, 1)) / weight.sum()
    mean_luminance = max(float(mean_rgb @ LUMA), 1e-4)
    # Nostrils, lips and beard stubble are dark albedo, not shade: clip them before smoothing.
    robust = np.clip(face_small @ LUMA, 0.5 * mean_luminance, 2.0 * mean_luminance)
    shading = np.clip(weighted_blur(robust, weight, 0.15 * size / factor) / mean_luminance, 0.4, 1.7)
    shading = cv2.resize(shading, (width, height), interpolation=cv2.INTER_LINEAR)
    exposure = np.clip((mean_luminance / SKIN_LUMINANCE) ** EXPOSURE_STRENGTH, 0.3, 1.3)
    chroma = mean_rgb / mean_luminance
    cast = (chroma / SKIN_CHROMA) ** CAST_STRENGTH
    cast = np.clip(cast / float(cast @ LUMA), 0.8, 1.25)
    # A grey or faded photo has grey or faded skin: the mask loses colour in the same proportion.
    saturation = np.clip(np.linalg.norm(chroma - 1.0) / np.linalg.norm(SKIN_CHROMA - 1.0), 0.0, 1.0) ** 0.5
    return shading[:, :, None].astype(np.float32), (exposure * cast).astype(np.float32), float(saturation)


def _grid(x: tuple[float, float], y: tuple[float, float], count: tuple[int, int]) -> np.ndarray:
    """Points (N, 2) of a regular grid over the rectangle x by y."""
    return np.stack([axis.ravel() for axis in np.meshgrid(np.linspace(*x, count[0]), np.linspace(*y, count[1]))],
                    axis=1)


# Where the two sides' light is compared, each point of the left side against its mirror image on
# the right, in canonical-face units (``fit.CANONICAL_FACE``): on a face, the left cheek (below
# the eye, beside the nose, above the jaw and the mouth's corner); on a mask, its whole left half,
# where a print, a valve or a logo are a small share of the pairs.
CHEEK_POINTS = _grid((-0.75, -0.4), (0.45, 1.0), (6, 7))
MASK_HALF_POINTS = _grid((-0.95, -0.1), (0.35, 1.6), (12, 14))
# A face whose cheeks' light differs by a log ratio of FACE_SIDE_LIGHT or more is lit from one
# side (the median face of data/raw's 517 differs by 0.3, and 82 % by more than 0.1); a style
# whose halves differ by STYLE_SIDE_LIGHT was drawn or photographed lit from one side (the
# built-in KN95s read 0.21-0.35, the cups 0.24, the others at most 0.03).
FACE_SIDE_LIGHT = 0.1
STYLE_SIDE_LIGHT = 0.07


def side_light(luminance: np.ndarray, canonical_to_image: np.ndarray, points: np.ndarray,
               opaque: np.ndarray | None = None) -> float:
    """How much more light the picture's left side of a face or mask receives than its right.

    ``luminance`` (H, W) linear light, ``canonical_to_image`` the affine (2, 3) from canonical-face
    coordinates to its pixels, ``points`` (N, 2) canonical points of the left side, ``opaque``
    (H, W) bool where the picture counts (all of it by default). Returns the median log ratio of
    the luminance at each point over that at its mirror image: positive when the light comes from
    the picture's left, 0 when no pair lies inside. A median of pairs reads the light through the
    colours of a print or of a face's features.
    """
    height, width = luminance.shape
    left = np.rint(apply_affine(canonical_to_image, points)).astype(int)
    right = np.rint(apply_affine(canonical_to_image, points * (-1.0, 1.0))).astype(int)
    inside = ((left >= 0) & (left < (width, height)) & (right >= 0) & (right < (width, height))).all(axis=1)
    left, right = left[inside], right[inside]
    if opaque is not None:
        counted = opaque[left[:, 1], left[:, 0]] & opaque[right[:, 1], right[:, 0]]
        left, right = left[counted], right[counted]
    if not len(left):
        return 0.0
    on_left = np.maximum(luminance[left[:, 1], left[:, 0]], 1e-4)
    on_right = np.maximum(luminance[right[:, 1], right[:, 0]], 1e-4)
    return float(np.median(np.log(on_left / on_right)))


def face_side_light(rgb: np.ndarray, landmarks: np.ndarray) -> float:
    """``side_light`` of the face whose 68 landmarks are given, in an RGB uint8 image (H, W, 3)."""
    to_image = fit_affine(fit.CANONICAL_FACE, landmarks)
    # Only the cheeks are read (a tenth of the time of the whole picture's grey copy, for a face in a 1024-px photo).
    corners = apply_affine(to_image, np.vstack([CHEEK_POINTS, CHEEK_POINTS * (-1.0, 1.0)]))
    x0, y0 = np.clip(np.floor(corners.min(axis=0)).astype(int) - 6, 0, None)
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + 7
    cheeks = rgb[y0:y1, x0:x1]
    if cheeks.size == 0:
        return 0.0
    luminance = cv2.GaussianBlur(cv2.cvtColor(cheeks, cv2.COLOR_RGB2GRAY), (0, 0), 2.0)
    to_image[:, 2] -= (x0, y0)
    return side_light(srgb_to_linear(luminance), to_image, CHEEK_POINTS)


def worn_mirrored(style_light: float, face_light: Callable[[], float]) -> bool:
    """Whether a style is worn mirrored: where both lights are clear (``side_light``), so that the side
    it is lit from in its picture is the side the face is lit from; otherwise it is worn as drawn.
    ``face_light`` gives the face's light (``face_side_light``); it is read only for a style lit
    from one side (the KN95s and cups), since most styles are lit evenly.

    (Mirroring every style at random as well, so that prints and valves face either way, scored no
    better on real photos: docs/benchmarks.md, "Masks that take the face's light".)
    """
    if abs(style_light) < STYLE_SIDE_LIGHT:
        return False
    light = face_light()
    return abs(light) >= FACE_SIDE_LIGHT and (light > 0) != (style_light > 0)


def blur_sigma(grey: np.ndarray, weight: np.ndarray) -> float:
    """Estimate the Gaussian blur (sigma, pixels) of an image's edges under ``weight``.

    A step edge blurred by sigma has squared-gradient energy proportional to 1 / sigma, so a
    further 1-px blur keeps the share r = sigma / sqrt(sigma^2 + 1) of it: sigma = r / sqrt(1 - r^2).
    A crisp photo gives ~0.5 px (the pixel grid itself); noise reads as sharpness, as it looks.
    """
    def energy(values: np.ndarray) -> float:
        gx = cv2.Sobel(values, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(values, cv2.CV_32F, 0, 1, ksize=3)
        return float(((gx * gx + gy * gy) * weight).sum())

    total = energy(grey)
    if total < 1e-8:
        return 0.0
    ratio = min(energy(blur(grey, 1.0)) / total, 0.995)
    return ratio / np.sqrt(1.0 - ratio * ratio)


def noise_level(grey: np.ndarray, weight: np.ndarray) -> float:
    """Standard deviation of pixel noise (Immerkaer's Laplacian-difference estimate, robust median form)."""
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)
    response = np.abs(cv2.filter2D(grey, cv2.CV_32F, kernel, borderType=cv2.BORDER_REFLECT))
    selected = response[weight > 0.5]
    if selected.size < 16:
        return 0.0
    return float(np.median(selected) / (0.6745 * 6.0))


def colour_matrix(scale: np.ndarray, saturation: float) -> np.ndarray:
    """The 3x3 float32 matrix that scales linear RGB by ``scale`` (3,) and then keeps ``saturation`` of its colour.

    Losing colour mixes each channel towards the luminance: (1 - saturation) of it, with the
    luminance unchanged.
    """
    desaturate = saturation * np.eye(3) + (1.0 - saturation) * np.outer(np.ones(3), LUMA)
    return (desaturate @ np.diag(np.asarray(scale, dtype=np.float64))).astype(np.float32)


def composite(
    region: np.ndarray, mask_rgba: np.ndarray, params: MaskParams, rng: np.random.Generator
) -> np.ndarray:
    """Composite a warped mask onto an RGB uint8 region (H, W, 3); returns the new region as RGB uint8.

    ``mask_rgba`` (H, W, 4) float32 is premultiplied, its colour in linear light.
    """
    face_linear = srgb_to_linear(region)
    face_grey = cv2.cvtColor(region, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    alpha = mask_rgba[:, :, 3]
    columns = np.nonzero(alpha.max(axis=0) > 0.5)[0]
    size = float(np.ptp(columns) + 1) if len(columns) else float(region.shape[1])

    # Sharpness first: blurring the premultiplied RGBA softens content and edge together.
    near_mask = (blur((alpha > 0.05).astype(np.float32), 0.05 * size) > 0.05).astype(np.float32)
    inside = alpha > 0.95
    face_sigma = min(blur_sigma(face_grey, near_mask), MAX_SIGMA)
    sigma = np.sqrt(max(face_sigma**2 - TEMPLATE_SIGMA**2, 0.0))
    mask_rgba = blur(mask_rgba, max(sigma, 0.6))  # at least a slight feather on every edge
    alpha = np.ascontiguousarray(mask_rgba[:, :, 3])

    # Light, tint and loss of colour scale the mask's colour linearly, so they apply to its
    # premultiplied colour just as well: it is never divided by alpha. Tint, exposure, colour
    # cast and loss of colour are one 3x3 matrix per pixel; shading varies over the mask.
    shading, gain, saturation = lighting(face_linear, alpha, size)
    to_seen = colour_matrix(np.asarray(params.tint, dtype=np.float32) * gain, saturation)
    # (Whole-pixel OpenCV calls here: numpy is several times slower on strided or broadcast channels.)
    mask_seen = cv2.transform(cv2.cvtColor(mask_rgba, cv2.COLOR_RGBA2RGB), to_seen)
    mask_seen *= cv2.cvtColor(shading, cv2.COLOR_GRAY2RGB)

    # Contact shadow: skin right around the mask's edge gets less ambient light.
    occlusion = np.clip(blur(alpha, 0.03 * size) - alpha, 0.0, 1.0)
    skin_seen = (1.0 - params.shadow * occlusion) * (1.0 - alpha)

    face_linear *= cv2.cvtColor(skin_seen, cv2.COLOR_GRAY2RGB)
    face_linear += mask_seen
    out = linear_to_srgb(face_linear)
    # The camera's noise lies over the mask too (luma grain plus weaker colour grain).
    noise = noise_level(face_grey, near_mask * ~inside)
    if noise > 0.002:
        noise_here = grain(region.shape[:2], rng)
        noise_here *= cv2.cvtColor(noise * alpha, cv2.COLOR_GRAY2RGB)
        out += noise_here
    out *= 255.0
    out += 0.5
    return np.clip(out, 0, 255, out=out).astype(np.uint8)


@functools.cache
def _grain_tile() -> np.ndarray:
    # Luma grain plus weaker independent colour grain, unit strength; drawn once per process.
    tile = np.random.default_rng(0).standard_normal((512, 512, 4), dtype=np.float32)
    return tile[:, :, :1] + 0.3 * tile[:, :, 1:]


def grain(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Unit-strength camera grain (H, W, 3) float32, a new array: a window of a fixed noise tile at a random place and flip."""
    tile = _grain_tile()
    reps = (-(-shape[0] // tile.shape[0]), -(-shape[1] // tile.shape[1]), 1)
    if reps[0] > 1 or reps[1] > 1:
        tile = np.tile(tile, reps)
    top = int(rng.integers(tile.shape[0] - shape[0] + 1))
    left = int(rng.integers(tile.shape[1] - shape[1] + 1))
    window = tile[top:top + shape[0], left:left + shape[1]]
    return np.ascontiguousarray(window[::-1] if rng.integers(2) else window)


def premultiplied_linear(rgba: np.ndarray) -> np.ndarray:
    """Straight sRGB RGBA uint8 (h, w, 4) to float32 premultiplied RGBA with linear-light colour."""
    # Plane by plane: numpy on interleaved channels took 7-9 ms for a 580 x 440 style, this 0.7-0.9,
    # each worker making a template for every style it draws.
    red, green, blue, alpha = cv2.split(rgba)
    alpha = alpha.astype(np.float32) / 255.0
    return cv2.merge([srgb_to_linear(red) * alpha, srgb_to_linear(green) * alpha, srgb_to_linear(blue) * alpha,
                      alpha])


class _Template(NamedTuple):
    pixels: np.ndarray  # the style's RGBA it was made from
    at: Callable[[int], np.ndarray]  # fit.halvings of its premultiplied linear pixels
    opaque: tuple[int, int, int, int]  # fit.opaque_bounds at full size
    light: float  # side_light of its picture


# One template per style file, made again when a style of that name comes with other pixels (a
# PNG redrawn and loaded again in the same process: a notebook, a run made in-process).
_TEMPLATES: dict[str, _Template] = {}


def _template(style: MaskStyle) -> _Template:
    cached = _TEMPLATES.get(str(style.path))
    if cached is None or cached.pixels is not style.rgba:
        at = fit.halvings(premultiplied_linear(style.rgba))
        # Read on a copy about 60 px between the eyes: light varies slowly, and a print's threads do not count.
        to_template = fit.anchors_to_template(style.anchors)
        small = min(1.0, 60.0 / np.hypot(*to_template[:, 0]))
        rgba = cv2.resize(style.rgba, None, fx=small, fy=small, interpolation=cv2.INTER_AREA)
        light = side_light(srgb_to_linear(cv2.cvtColor(rgba, cv2.COLOR_RGBA2GRAY)), to_template * small,
                           MASK_HALF_POINTS, rgba[:, :, 3] > 200)
        cached = _TEMPLATES[str(style.path)] = _Template(style.rgba, at, fit.opaque_bounds(at(0)), light)
    return cached


def template_at(style: MaskStyle, level: int) -> np.ndarray:
    """The style's premultiplied linear pixels, halved ``level`` times (``fit.halvings``, cached per process)."""
    return _template(style).at(level)


def opaque_bounds(style: MaskStyle) -> tuple[int, int, int, int]:
    """``fit.opaque_bounds`` of the style's full-size template (cached per process, as ``template_at``)."""
    return _template(style).opaque


def style_side_light(style: MaskStyle) -> float:
    """``side_light`` of the style's picture worn as drawn: positive when it is lit from its left (cached)."""
    return _template(style).light


def placement(style: MaskStyle, params: MaskParams) -> np.ndarray:
    """Affine (2, 3) from canonical-face coordinates to the style's pixels, with the random shift and width."""
    to_template = fit.anchors_to_template(style.anchors)
    linear, offset = to_template[:, :2], to_template[:, 2]
    # Canonical point (x, y) shows the template's point for (x / width, y - shift), or (-x / width, ...) mirrored.
    jitter_linear = np.diag([(-1.0 if params.mirrored else 1.0) / params.width, 1.0])
    jitter_offset = np.array([0.0, -params.shift])
    return np.hstack([linear @ jitter_linear, (linear @ jitter_offset + offset)[:, None]])


def placed_mask(
    image_shape: tuple[int, ...], landmarks: np.ndarray, style: MaskStyle, params: MaskParams
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """``style`` warped onto the face whose 68 landmarks are given, before any lighting.

    Returns premultiplied linear RGBA float32 (H, W, 4) and the box (x0, y0, x1, y1) of an
    image of ``image_shape`` it covers (``fit.warp_template``).
    """
    return fit.warp_template(functools.partial(template_at, style), placement(style, params), landmarks, image_shape,
                             opaque=opaque_bounds(style))


def draw_creases(rng: np.random.Generator) -> tuple[tuple[float, float, float, float, float, float], ...]:
    """Where one worn mask creases, in canonical-face units (eye distances; see ``augment.fit``).

    Cloth and paper gather where the ear loops pull (one or two folds a side, running in from
    the cheek towards the mouth and chin) and fold under the chin (none to two). Each crease is
    (start x, start y, end x, end y, width, depth), rounded for the manifest: depth is its
    strength, its sign which side is lit.
    """
    def fold(start: np.ndarray, end: np.ndarray) -> tuple[float, ...]:
        width, depth = rng.uniform(0.04, 0.09), rng.choice((-1.0, 1.0)) * rng.uniform(0.12, 0.27)
        return tuple(round(float(v), 4) for v in (*start, *end, width, depth))

    creases = []
    for side in (-1.0, 1.0):
        for _ in range(int(rng.integers(1, 3))):
            start = np.array([side * rng.uniform(0.75, 0.95), rng.uniform(0.5, 1.2)])
            direction = np.array([-side, rng.uniform(0.0, 0.8)])
            creases.append(fold(start, start + direction / np.linalg.norm(direction) * rng.uniform(0.4, 0.8)))
    for _ in range(int(rng.integers(0, 3))):
        centre = np.array([rng.uniform(-0.3, 0.3), rng.uniform(1.45, 1.75)])
        angle, half = rng.uniform(-0.25, 0.25), rng.uniform(0.2, 0.4)
        offset = half * np.array([np.cos(angle), np.sin(angle)])
        creases.append(fold(centre - offset, centre + offset))
    return tuple(creases)


# A crease's fold reaches 3.5 of its widths to either side (beyond, its profile is under 1.3 % of its peak).
CREASE_REACH = 3.5
# Linear light reflected by a fold's raised side, per unit of its shading above 1.
FOLD_SHEEN = 0.08


def crease_shading(landmarks: np.ndarray, box: tuple[int, int, int, int], strength: float,
                   creases: tuple[tuple[float, float, float, float, float, float], ...]) -> np.ndarray:
    """Multiplicative shading (float32 (H, W) around 1) of ``creases`` on the face of ``landmarks``, within ``box``.

    Each crease is a soft fold across its line: lit on one side and shaded on the other (a
    derivative of a Gaussian across it), fading out towards both ends. ``strength`` scales them
    all: 1 for cloth, 0 for a rigid mask (all ones).
    """
    x0, y0, x1, y1 = box
    shading = np.ones((y1 - y0, x1 - x0), np.float32)
    if strength <= 0 or shading.size == 0:
        return shading
    to_face = fit_affine(landmarks, fit.CANONICAL_FACE).astype(np.float32)
    to_image = cv2.invertAffineTransform(to_face)
    for start_x, start_y, end_x, end_y, width, depth in creases:
        start, end = np.array([start_x, start_y]), np.array([end_x, end_y])
        length = float(np.linalg.norm(end - start))
        along_unit = (end - start) / length
        across_unit = np.array([-along_unit[1], along_unit[0]])
        # Only the window of the image the fold reaches is computed.
        reach = CREASE_REACH * width * across_unit
        corners = apply_affine(to_image, np.array([start + reach, start - reach, end + reach, end - reach]))
        left, top = np.maximum(np.floor(corners.min(axis=0)).astype(int), (x0, y0))
        right, bottom = np.minimum(np.ceil(corners.max(axis=0)).astype(int) + 1, (x1, y1))
        if right <= left or bottom <= top:
            continue
        xs = np.arange(left, right, dtype=np.float32)[None, :]
        ys = np.arange(top, bottom, dtype=np.float32)[:, None]
        du = to_face[0, 0] * xs + to_face[0, 1] * ys + (to_face[0, 2] - np.float32(start[0]))
        dv = to_face[1, 0] * xs + to_face[1, 1] * ys + (to_face[1, 2] - np.float32(start[1]))
        along = (du * np.float32(along_unit[0]) + dv * np.float32(along_unit[1])) / np.float32(length)
        across = (du * np.float32(across_unit[0]) + dv * np.float32(across_unit[1])) / np.float32(width)
        taper = np.sin(np.pi * np.clip(along, 0.0, 1.0))
        shading[top - y0:bottom - y0, left - x0:right - x0] += (
            np.float32(strength * depth) * taper * across * np.exp(0.5 * (1.0 - across * across)))
    return np.clip(shading, 0.6, 1.4)


def fold(mask_rgba: np.ndarray, folds: np.ndarray) -> None:
    """Shade a premultiplied linear mask (H, W, 4) float32 by ``folds`` (``crease_shading``), in place.

    Its colour is scaled, not its alpha, and the raised side of each fold also reflects some
    light whatever the cloth's colour, which is how folds show on a black mask.
    """
    # One multiply by (f, f, f, 1) runs several times faster than one of the three strided colour channels.
    mask_rgba *= cv2.cvtColor(folds, cv2.COLOR_GRAY2RGBA)  # the fourth channel is 1
    glint = FOLD_SHEEN * np.clip(folds - 1.0, 0.0, None) * mask_rgba[:, :, 3]
    mask_rgba += cv2.merge([glint, glint, glint, np.zeros_like(glint)])


def wear_mask(
    image: np.ndarray, landmarks: np.ndarray, style: MaskStyle, params: MaskParams, rng: np.random.Generator,
    placed: tuple[np.ndarray, tuple[int, int, int, int]] | None = None,
) -> np.ndarray:
    """A copy of an RGB uint8 image with ``style`` worn by the face whose 68 landmarks are given,
    under the face's glasses, if it wears any (``glasses.find_frames``).

    ``placed``: the mask as ``placed_mask`` puts it on this image and face, if already at hand
    (the generator places it first to check that it covers the nose and mouth).
    """
    warped, (x0, y0, x1, y1) = placed if placed is not None else placed_mask(image.shape, landmarks, style, params)
    out = image.copy()
    if warped.size:
        if style.creases > 0 and params.creases:
            fold(warped, crease_shading(landmarks, (x0, y0, x1, y1), style.creases, params.creases))
        out[y0:y1, x0:x1] = composite(image[y0:y1, x0:x1], warped, params, rng)
        frames = glasses.find_frames(image, landmarks, (x0, y0, x1, y1))
        if frames is not None:
            out[y0:y1, x0:x1] = glasses.in_front(out[y0:y1, x0:x1], frames, warped[:, :, 3])
    return out

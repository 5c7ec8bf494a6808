"""Where a mask goes on a face: landmark control points and a piecewise-affine warp.

A mask style is placed on a *canonical face*: the median of dlib's 68 landmarks over a few
hundred frontal photos, in units of the distance between the eye centres, origin midway
between the eyes, y down. A style's four anchors (nose bridge, chin, left and right edge)
say where that canonical face lies on the style's PNG. Control points built from the
landmarks (jaw, nose, eyes, mouth and rings around them) then exist both on the canonical
face, hence on the PNG, and on the real face; a piecewise-affine warp over their
triangulation carries the PNG onto the face. A turned head moves its landmarks and so
narrows the far side of the mask; tilt and roll come with the landmarks too.

All functions are pure, on float arrays of (x, y) points.
"""
from __future__ import annotations

import functools
from typing import Callable

import cv2
import numpy as np

from augment.geometry import apply_affine, fit_affine

CANONICAL_FACE = np.array([
    (-1.088, 0.020), (-1.070, 0.307), (-1.030, 0.593), (-0.980, 0.877), (-0.889, 1.147), (-0.731, 1.386),
    (-0.524, 1.586), (-0.280, 1.741), (+0.000, 1.784), (+0.280, 1.741), (+0.524, 1.586), (+0.731, 1.386),
    (+0.889, 1.147), (+0.980, 0.877), (+1.030, 0.593), (+1.070, 0.307), (+1.088, 0.020), (-0.923, -0.186),
    (-0.782, -0.320), (-0.577, -0.361), (-0.368, -0.332), (-0.169, -0.261), (+0.169, -0.261), (+0.368, -0.332),
    (+0.577, -0.361), (+0.782, -0.320), (+0.923, -0.186), (+0.000, -0.036), (+0.000, 0.160), (+0.000, 0.364),
    (+0.000, 0.565), (-0.224, 0.691), (-0.115, 0.727), (+0.000, 0.761), (+0.115, 0.727), (+0.224, 0.691),
    (-0.694, 0.003), (-0.573, -0.069), (-0.425, -0.068), (-0.293, 0.028), (-0.433, 0.052), (-0.581, 0.053),
    (+0.293, 0.028), (+0.425, -0.068), (+0.573, -0.069), (+0.694, 0.003), (+0.581, 0.053), (+0.433, 0.052),
    (-0.438, 1.039), (-0.278, 0.982), (-0.117, 0.944), (+0.000, 0.973), (+0.117, 0.944), (+0.278, 0.982),
    (+0.438, 1.039), (+0.282, 1.175), (+0.127, 1.240), (+0.000, 1.251), (-0.127, 1.240), (-0.282, 1.175),
    (-0.370, 1.051), (-0.120, 1.048), (+0.000, 1.062), (+0.120, 1.048), (+0.370, 1.051), (+0.121, 1.084),
    (+0.000, 1.101), (-0.121, 1.084),
], dtype=np.float64)

ANCHOR_NAMES = ("top", "bottom", "left", "right")

# Where a style's anchors sit on the canonical face: the top edge's centre on the nose
# bridge (between landmarks 28 and 29, well below the eyes at y ~ 0.05), the bottom under
# the chin (landmark 8 is at y = 1.78), the sides just outside the jaw at cheek height.
CANONICAL_ANCHORS = {
    "top": (0.0, 0.24),
    "bottom": (0.0, 1.93),
    "left": (-1.10, 0.62),
    "right": (1.10, 0.62),
}

JAW = list(range(0, 17))
BROWS = list(range(17, 27))
NOSE = list(range(27, 36))
EYES = list(range(36, 48))
MOUTH_OUTER = [48, 50, 51, 52, 54, 56, 57, 58]
NOSE_BRIDGE, NOSE_TIP, CHIN = 27, 30, 8
# What a worn mask covers on every face: the nose tip and nostrils, and the mouth.
COVERED = list(range(30, 36)) + list(range(48, 68))

# Rings of control points outside the face, in eye-distance units. The snug ring keeps the
# mask's own edge (drawn along the jaw) on the real jaw; the far ring and the brow ring
# give ear loops and anything beyond the face a place to go.
SNUG_RING = 0.12
FAR_RING = 0.7
BROW_RING = 0.6
# Around each eye this much (eye-distance units) stays free of mask whatever the warp does.
EYE_CLEARANCE = 0.1
# Beside the face, at the height of the ears, a side of the face turned away from the camera
# hides its ear behind the head: there a mask shows only STANDOFF past the face's outline (the
# cloth standing off the cheek; eye-distance units). A side whose half of the face looks
# FAR_SIDE_RATIO as wide as the other's or less is turned away; between that and
# NEAR_SIDE_RATIO the reach grows towards EAR_REACH (past the ear's outer rim, ~0.3 past the jaw,
# as far as any style's loops may go); from NEAR_SIDE_RATIO the side faces the camera and nothing
# is hidden.
EAR_REACH = 0.45
STANDOFF = 0.1
FAR_SIDE_RATIO, NEAR_SIDE_RATIO = 0.7, 0.9
# Seen from the side, the cloth standing off the cheek widens the outline of a side turned away
# from the camera, and dlib's jaw points on such a side fall inside the face's outline (a nose
# tip that juts past them is left bare). There the mask's edge, and the outline behind which the
# ear loops go, move out by up to FAR_EDGE (eye-distance units), fading out over the CHIN_FADE
# jaw points nearest the chin, which the turn does not hide, and over the EAR_FADE at the
# ear's end, where the loop goes behind the head.
FAR_EDGE = 0.2
CHIN_FADE, EAR_FADE = 3, 2
# The ears' zone ends at the mouth, as a share of the bridge-to-chin height: below it the mask
# covers the far mouth corner, close to the outline on a turned face, and hangs past the jaw.
EAR_ZONE_END = (0.5, 0.6)
# A warp reads a template copy halved often enough (at most MAX_LEVEL times) that it squeezes no
# more than MAX_SQUEEZE of its pixels into one of the face's in any direction.
MAX_SQUEEZE = 1.5
MAX_LEVEL = 6
# A frame far around the face, placed by the face's overall affine pose, so that the
# triangulation covers every pixel a style PNG can reach and nothing needs extrapolating.
FRAME = np.array([(x, y) for x in (-4.0, 0.0, 4.0) for y in (-3.0, 1.0, 5.0) if (x, y) != (0.0, 1.0)])


def face_scale(landmarks: np.ndarray) -> float:
    """The face's size in eye-distance units, from the bridge-to-chin length, which a turned head keeps."""
    points = np.asarray(landmarks, dtype=np.float64)
    canonical = np.linalg.norm(CANONICAL_FACE[CHIN] - CANONICAL_FACE[NOSE_BRIDGE])
    return float(np.linalg.norm(points[CHIN] - points[NOSE_BRIDGE]) / canonical)


def face_up(landmarks: np.ndarray) -> np.ndarray:
    """The unit vector (2,) from the chin to the bridge of the nose: the face's own up, whatever its roll."""
    points = np.asarray(landmarks, dtype=np.float64)
    up = points[NOSE_BRIDGE] - points[CHIN]
    return up / max(np.linalg.norm(up), 1e-9)


def jaw_normals(landmarks: np.ndarray) -> np.ndarray:
    """Unit vectors (17, 2) perpendicular to the jaw line at each jaw point, pointing away from the nose."""
    jaw = np.asarray(landmarks, dtype=np.float64)[JAW]
    tangents = np.gradient(jaw, axis=0)
    normals = np.stack([tangents[:, 1], -tangents[:, 0]], axis=1)
    outward = jaw - np.asarray(landmarks, dtype=np.float64)[NOSE_TIP]
    normals *= np.where(np.sum(normals * outward, axis=1, keepdims=True) < 0, -1.0, 1.0)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-9)


def control_points(landmarks: np.ndarray) -> np.ndarray:
    """The warp's control points (K, 2) for one face; the same recipe gives the canonical ones."""
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (68, 2):
        raise ValueError(f"expected 68 landmarks of shape (68, 2), got {points.shape}")
    scale = face_scale(points)
    normals = jaw_normals(points)
    jaw = points[JAW]
    up = face_up(points)
    pose = fit_affine(CANONICAL_FACE, points)
    return np.concatenate([
        points[JAW + BROWS + NOSE + EYES + MOUTH_OUTER],
        jaw + normals * (SNUG_RING + far_edge_offsets(points))[:, None] * scale,
        jaw + normals * FAR_RING * scale,
        points[BROWS] + up * BROW_RING * scale,
        apply_affine(pose, FRAME),
    ])


@functools.cache
def canonical_control_points() -> np.ndarray:
    """Control points of the canonical face (K, 2)."""
    return control_points(CANONICAL_FACE)


@functools.cache
def control_triangles() -> np.ndarray:
    """Triangles (T, 3) of control-point indices: the Delaunay triangulation of the canonical face's points."""
    return delaunay(canonical_control_points())


def delaunay(points: np.ndarray) -> np.ndarray:
    """Delaunay triangles (T, 3) of distinct points (N, 2), as indices into ``points``."""
    low, high = points.min(axis=0) - 1.0, points.max(axis=0) + 1.0
    subdivision = cv2.Subdiv2D((float(low[0]), float(low[1]), float(high[0] - low[0]), float(high[1] - low[1])))
    subdivision.insert([(float(x), float(y)) for x, y in points])
    corners = subdivision.getTriangleList().reshape(-1, 3, 2)
    # Subdiv2D answers with coordinates (float32); find each corner's nearest input point.
    distances = np.linalg.norm(corners[:, :, None, :] - points[None, None, :, :], axis=3)
    triangles = distances.argmin(axis=2)
    inside = distances.min(axis=2).max(axis=1) < 1e-3  # drop triangles on Subdiv2D's outer frame
    return triangles[inside].astype(np.int32)


def anchors_to_template(anchors: dict[str, tuple[float, float]]) -> np.ndarray:
    """Affine (2, 3) from canonical-face coordinates to a style PNG's pixels, fitted to its four anchors."""
    canonical = np.array([CANONICAL_ANCHORS[name] for name in ANCHOR_NAMES])
    template = np.array([anchors[name] for name in ANCHOR_NAMES], dtype=np.float64)
    return fit_affine(canonical, template)


def triangle_affines(source: np.ndarray, target: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Per-triangle affine maps (T, 2, 3) taking each ``target`` triangle onto its ``source`` triangle.

    A triangle squashed flat on the target side (a profile view) falls back to the
    least-squares affine of all points, which is what its neighbours nearly are.
    """
    ones = np.ones((len(triangles), 1, 3))
    corners_target = np.concatenate([target[triangles].transpose(0, 2, 1), ones], axis=1)  # (T, 3, 3)
    corners_source = source[triangles].transpose(0, 2, 1)  # (T, 2, 3)
    determinant = np.linalg.det(corners_target)
    flat = np.abs(determinant) < 1e-6
    corners_target[flat] = np.eye(3)
    matrices = corners_source @ np.linalg.inv(corners_target)
    matrices[flat] = fit_affine(target, source)
    return matrices


def triangle_index_map(target: np.ndarray, triangles: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """For each pixel of ``box`` (x0, y0, x1, y1), the index of the triangle it falls in, or -1 (int32, (H, W))."""
    x0, y0, x1, y1 = box
    index = np.zeros((y1 - y0, x1 - x0), dtype=np.int32)
    subpixel = 4  # fillConvexPoly's fixed-point shift: corners to 1/16 px
    corners = np.round((target[triangles] - (x0, y0)) * (1 << subpixel)).astype(np.int32)
    for number, triangle in enumerate(corners, start=1):
        cv2.fillConvexPoly(index, triangle, number, lineType=cv2.LINE_8, shift=subpixel)
    return index - 1


def piecewise_affine_maps(
    source: np.ndarray, target: np.ndarray, triangles: np.ndarray, box: tuple[int, int, int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``cv2.remap`` maps (float32, (H, W) each) that pull ``source``-space pixels into ``box`` of target
    space, and how far apart (float32 (H, W)) two neighbouring target pixels read the source.

    ``source`` and ``target`` are matching control points (K, 2); ``triangles`` (T, 3) index them.
    The spread is the largest stretch of each pixel's triangle map: over 1, the source is being
    squeezed and should be read from a smaller copy, or its detail aliases.
    """
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    affines = triangle_affines(source, target, triangles)
    spread = largest_stretch(affines[:, :, :2])
    # A pixel on an edge is drawn into both triangles and keeps the later one's map. On a head
    # turned away a triangle can be squeezed to a sliver whose map, read even half a pixel outside
    # it, lands far off in the template (bare specks along the mask's side), so the most
    # squeezed triangles go first and their better-shaped neighbours take the shared pixels.
    order = np.argsort(-spread, kind="stable")
    triangles, affines, spread = triangles[order], affines[order], spread[order]
    # Pixels outside every triangle (index -1: the last row) read from far outside the source,
    # which remap leaves empty.
    outside = np.array([[0, 0, -1e6, 0, 0, -1e6, 1]], dtype=np.float32)
    coefficients = np.concatenate([np.hstack([affines.reshape(-1, 6), spread[:, None]]).astype(np.float32),
                                   outside]).T.copy()  # (7, T + 1): one row per coefficient
    index = triangle_index_map(target, triangles, box)
    a, b, c, d, e, f, stretch = (np.take(row, index) for row in coefficients)  # (H, W) each
    x0, y0, x1, y1 = box
    xs = np.arange(x0, x1, dtype=np.float32)[None, :]
    ys = np.arange(y0, y1, dtype=np.float32)[:, None]
    return a * xs + b * ys + c, d * xs + e * ys + f, stretch


def largest_stretch(linear: np.ndarray) -> np.ndarray:
    """The largest singular value (N,) of each 2x2 matrix in ``linear`` (N, 2, 2): how far it stretches
    a unit step at most (the closed form, several times quicker than a batched SVD)."""
    a, b, c, d = linear[:, 0, 0], linear[:, 0, 1], linear[:, 1, 0], linear[:, 1, 1]
    half_sum = (a * a + b * b + c * c + d * d) / 2
    determinant = a * d - b * c
    return np.sqrt(half_sum + np.sqrt(np.maximum(half_sum * half_sum - determinant * determinant, 0.0)))


def halvings(template: np.ndarray) -> Callable[[int], np.ndarray]:
    """``template`` halved ``level`` times (area-averaged), each copy made once, on first use."""
    @functools.cache
    def at(level: int) -> np.ndarray:
        return template if level == 0 else cv2.resize(at(level - 1), None, fx=0.5, fy=0.5,
                                                      interpolation=cv2.INTER_AREA)
    return at


def opaque_bounds(template: np.ndarray) -> tuple[int, int, int, int]:
    """The bounding rectangle (x, y, width, height) of an RGBA template's pixels that are not transparent."""
    return cv2.boundingRect((cv2.extractChannel(template, 3) > 0).astype(np.uint8))


def _read_level(template_at: Callable[[int], np.ndarray], level: int, map_x: np.ndarray, map_y: np.ndarray
                ) -> np.ndarray:
    """The template halved ``level`` times, read at full-size template coordinates ``map_x``, ``map_y``."""
    scale = np.float32(0.5**level)
    return cv2.remap(template_at(level), map_x * scale, map_y * scale, cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def eye_clearance(landmarks: np.ndarray, box: tuple[int, int, int, int], feather: float = 1.0) -> np.ndarray:
    """Where a mask may lie within ``box`` (float32 (H, W) in 0..1): everywhere but on and around the eyes.

    A mask rides up to the nose bridge but never over the eyes; the cheekbones stop it. The
    eyes' outlines grown by EYE_CLEARANCE (eye-distance units) are kept free, with a soft edge
    ``feather`` pixels wide, whatever the warp would have done on a turned or badly measured face.
    """
    x0, y0, x1, y1 = box
    eyes = np.zeros((y1 - y0, x1 - x0), np.uint8)
    for outline in (landmarks[36:42], landmarks[42:48]):
        corners = np.round((np.asarray(outline, np.float64) - (x0, y0)) * 16).astype(np.int32)
        cv2.fillConvexPoly(eyes, cv2.convexHull(corners), 1, lineType=cv2.LINE_8, shift=4)
    if not eyes.any():
        return np.ones(eyes.shape, np.float32)
    distance = cv2.distanceTransform(1 - eyes, cv2.DIST_L2, 3)
    radius = EYE_CLEARANCE * face_scale(landmarks)
    return np.clip((distance - radius) / feather, 0.0, 1.0).astype(np.float32)


def bare_features(landmarks: np.ndarray, alpha: np.ndarray, box: tuple[int, int, int, int],
                  image_shape: tuple[int, ...]) -> list[int]:
    """The nose-tip, nostril and mouth landmarks (``COVERED``) that a placed mask leaves bare.

    ``alpha`` (H, W) in [0, 1] is the mask's coverage of ``box`` (x0, y0, x1, y1) of an image of
    ``image_shape`` (empty where the mask falls wholly off the image); ``landmarks`` (68, 2) are in
    that image's pixels. A point is covered where the alpha is 0.5 or more; points outside the
    image (a face cut by its edge) are not judged.
    Empty for a mask that fits; on a head turned so far that dlib's landmarks fold the far side
    over the mouth, the warp folds the mask too and the mouth shows.
    """
    height, width = image_shape[:2]
    x0, y0, x1, y1 = box
    bare = []
    for index in COVERED:
        column, row = (int(round(v)) for v in landmarks[index])
        if not (0 <= column < width and 0 <= row < height):
            continue
        inside = x0 <= column < x1 and y0 <= row < y1
        if not inside or alpha[row - y0, column - x0] < 0.5:
            bare.append(index)
    return bare


def across_nose_line(up: np.ndarray, dx: float | np.ndarray, dy: float | np.ndarray) -> float | np.ndarray:
    """Signed distance of offsets (dx, dy) from the bridge of the nose, across the face's up ``up``.

    Points on one side of the nose line come out positive, on the other negative; scalars or
    arrays (kept in their dtype when ``up`` is cast to it).
    """
    return up[0] * dy - up[1] * dx


def side_widths(landmarks: np.ndarray) -> tuple[float, float]:
    """How wide each half of the face looks (pixels): the cheek's distance from the nose line,
    on the side of jaw points 0-7 and on the side of points 9-16."""
    points = np.asarray(landmarks, dtype=np.float64)
    up = face_up(points)

    def distance(cheek: np.ndarray) -> float:
        offset = cheek.mean(axis=0) - points[NOSE_BRIDGE]
        return abs(float(across_nose_line(up, offset[0], offset[1])))

    return distance(points[1:4]), distance(points[13:16])


def side_facing(landmarks: np.ndarray) -> np.ndarray:
    """How far each side of the face is turned to the camera (float64 (2,): 1 facing it, 0 turned
    away), for the side of jaw points 0-7 and of 9-16, from how wide each half looks."""
    widths = np.array(side_widths(landmarks))
    return np.clip((widths / max(widths.max(), 1e-9) - FAR_SIDE_RATIO) / (NEAR_SIDE_RATIO - FAR_SIDE_RATIO), 0, 1)


def far_edge_offsets(landmarks: np.ndarray) -> np.ndarray:
    """How much further out (eye-distance units, float64 (17,)) the mask's edge lies past each jaw
    point: FAR_EDGE on a side turned away, less as it turns to the camera, none at the chin and
    at the ear."""
    away = 1.0 - side_facing(landmarks)
    jaw = np.arange(len(JAW))
    from_chin = np.abs(jaw - CHIN)
    fade = np.clip(from_chin / CHIN_FADE, 0.0, 1.0) * np.clip((CHIN - from_chin) / EAR_FADE, 0.0, 1.0)
    return FAR_EDGE * fade * np.where(jaw < CHIN, away[0], away[1])


def beside_the_face(landmarks: np.ndarray, box: tuple[int, int, int, int], feather: float = 1.0) -> np.ndarray:
    """Where a mask may show within ``box`` (float32 (H, W) in 0..1), given what hides it beside the face.

    Everywhere on a face turned to the camera. On a side turned away, at the ears' height, only
    up to STANDOFF past the face's outline (jaw, moved out by ``far_edge_offsets``, and forehead):
    the ear loop goes round the cheek and behind the head there, where the warp alone would draw
    it in the air beside the face.
    """
    x0, y0, x1, y1 = box
    facing = side_facing(landmarks)
    if facing.min() >= 1.0:
        return np.ones((y1 - y0, x1 - x0), np.float32)
    points = np.asarray(landmarks, dtype=np.float64) - (x0, y0)
    scale = face_scale(landmarks)
    bridge, chin = points[NOSE_BRIDGE], points[CHIN]
    up = face_up(points)
    edge = points[JAW] + jaw_normals(points) * far_edge_offsets(points)[:, None] * scale
    outline = np.concatenate([edge, points[BROWS][::-1] + up * BROW_RING * scale])
    inside = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(inside, [np.round(outline * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    distance = cv2.distanceTransform(1 - inside, cv2.DIST_L2, 3)

    reach = np.where(facing < 1.0, (STANDOFF + (EAR_REACH - STANDOFF) * facing) * scale, np.inf)
    xs = np.arange(x1 - x0, dtype=np.float32)[None, :] - np.float32(bridge[0])
    ys = np.arange(y1 - y0, dtype=np.float32)[:, None] - np.float32(bridge[1])
    across = across_nose_line(up.astype(np.float32), xs, ys)
    first_side = np.sign(across_nose_line(up, *(points[2] - bridge)))
    side_reach = np.where(across * first_side > 0, np.float32(reach[0]), np.float32(reach[1]))
    height = (np.float32(-up[0]) * xs + np.float32(-up[1]) * ys) / np.float32(max(np.linalg.norm(chin - bridge), 1e-9))
    below_ears = np.clip((height - EAR_ZONE_END[0]) / (EAR_ZONE_END[1] - EAR_ZONE_END[0]), 0, 1)
    allowed = np.clip((side_reach + feather - distance) / feather, 0.0, 1.0)
    return np.maximum(allowed, below_ears).astype(np.float32)


def mask_placement(
    landmarks: np.ndarray, canonical_to_template: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Matching control points for one face: (points on the style PNG, points on the image), each (K, 2)."""
    return apply_affine(canonical_to_template, canonical_control_points()), control_points(landmarks)


def warp_template(
    template_at: Callable[[int], np.ndarray],
    canonical_to_template: np.ndarray,
    landmarks: np.ndarray,
    image_shape: tuple[int, ...],
    margin: float = 0.1,
    opaque: tuple[int, int, int, int] | None = None,
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Warp an RGBA float32 template (h, w, 4), premultiplied, onto a face.

    ``template_at(level)`` is the template halved ``level`` times (``halvings``), level 0 the one
    ``canonical_to_template`` places. Each part of the face reads the copy whose pixels it
    squeezes at most MAX_SQUEEZE to one: the side of a mask on a head turned away is squeezed
    far more than its front, and read at full size its edge and loops would alias into specks.
    Returns the warped RGBA (H, W, 4), cleared around the eyes (``eye_clearance``) and where the
    head hides it (``beside_the_face``), and the box (x0, y0, x1, y1) of the image it covers:
    the template's opaque part as placed on the face, grown by ``margin`` of its size on each
    side (room for soft edges and shadows), clipped to the image. The box is empty when the
    mask falls wholly outside the image. ``opaque``: the template's ``opaque_bounds``, if known.
    """
    template_points, face_points = mask_placement(landmarks, canonical_to_template)
    left, top, width, height = opaque or opaque_bounds(template_at(0))
    right, bottom = left + width, top + height
    corners = np.array([[left, top], [right, top], [right, bottom], [left, bottom]], dtype=np.float64)
    # Control points over the opaque part may pull it beyond where the overall affine puts it.
    over = ((template_points[:, 0] >= left) & (template_points[:, 0] <= right)
            & (template_points[:, 1] >= top) & (template_points[:, 1] <= bottom))
    outline = np.vstack([apply_affine(fit_affine(template_points, face_points), corners), face_points[over]])
    low, high = outline.min(axis=0), outline.max(axis=0)
    grow = margin * (high - low)
    x0, y0 = np.floor(low - grow).astype(int)
    x1, y1 = np.ceil(high + grow).astype(int) + 1
    image_height, image_width = image_shape[:2]
    box = (max(0, x0), max(0, y0), min(image_width, x1), min(image_height, y1))
    if box[2] <= box[0] or box[3] <= box[1]:
        return np.zeros((0, 0, 4), np.float32), box
    map_x, map_y, spread = piecewise_affine_maps(template_points, face_points, control_triangles(), box)
    levels = np.minimum(np.log2(np.maximum(spread * np.float32(1 / MAX_SQUEEZE), 1)), MAX_LEVEL).astype(np.uint8)
    counts = np.bincount(levels.ravel(), minlength=MAX_LEVEL + 1)
    common = int(np.argmax(counts))
    warped = _read_level(template_at, common, map_x, map_y)
    for level in np.flatnonzero(counts):
        if level != common:  # read only around the pixels of this level: a squeezed side is small
            here = (levels == level).astype(np.uint8)
            left, top, width, height = cv2.boundingRect(here)
            window = (slice(top, top + height), slice(left, left + width))
            sampled = _read_level(template_at, int(level), map_x[window], map_y[window])
            np.copyto(warped[window], sampled, where=here[window].astype(bool)[:, :, None])
    allowed = eye_clearance(landmarks, box) * beside_the_face(landmarks, box)
    warped *= cv2.merge([allowed] * 4)  # twice as fast as numpy broadcasting (H, W, 1) over four channels
    return warped, box

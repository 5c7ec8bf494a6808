"""Compositing: colour conversions, blur and noise estimates, lighting, and the mask on a real face."""
from dataclasses import replace

import cv2
import numpy as np
import pytest

from augment import blend, fit
from augment.blend import MaskParams, wear_mask
from augment.demo import relight, rotate
from augment.faces import find_faces
from augment.styles import load_styles

from conftest import BUILTIN_STYLES

NOSE_AND_MOUTH = list(range(30, 36)) + list(range(48, 68))
EYES = list(range(36, 48))


@pytest.fixture(scope="module")
def styles():
    found, _ = load_styles([BUILTIN_STYLES])
    return {s.name: s for s in found}


def test_gamma_tables_round_trip():
    values = np.arange(256, dtype=np.uint8)
    back = blend.linear_to_srgb(blend.srgb_to_linear(values)) * 255
    assert np.abs(back - values).max() < 1.0


def test_premultiplied_linear_scales_each_colour_by_its_alpha():
    rgba = np.array([[[255, 128, 0, 255], [255, 128, 0, 0], [255, 128, 0, 51], [10, 200, 90, 204]]], np.uint8)
    out = blend.premultiplied_linear(rgba)
    assert out.dtype == np.float32 and out.shape == (1, 4, 4)
    alpha = rgba[0, :, 3] / 255.0
    np.testing.assert_allclose(out[0, :, 3], alpha, rtol=1e-6)
    np.testing.assert_allclose(out[0, :, :3], (rgba[0, :, :3] / 255.0) ** 2.2 * alpha[:, None], rtol=1e-5, atol=1e-7)
    assert not out[0, 1].any()  # transparent: no colour left to bleed into a blur


@pytest.mark.parametrize("sigma", [1.0, 2.0, 3.0])
def test_blur_sigma_measures_known_blur(sigma):
    edges = np.zeros((120, 120), np.float32)
    edges[:, 60:] = 1.0
    edges[60:, :] += 0.5
    blurred = cv2.GaussianBlur(edges, (0, 0), sigma)
    assert blend.blur_sigma(blurred, np.ones_like(blurred)) == pytest.approx(sigma, rel=0.2)


def test_blur_sigma_of_a_flat_image_is_zero():
    flat = np.full((30, 30), 0.5, np.float32)
    assert blend.blur_sigma(flat, np.ones_like(flat)) == 0.0


def test_noise_level_measures_gaussian_noise():
    rng = np.random.default_rng(0)
    noisy = (0.5 + rng.normal(0, 0.03, (200, 200))).astype(np.float32)
    assert blend.noise_level(noisy, np.ones_like(noisy)) == pytest.approx(0.03, rel=0.15)


def test_wide_blur_on_a_reduced_copy_matches_a_full_blur():
    rng = np.random.default_rng(1)
    field = cv2.GaussianBlur(rng.random((200, 200)).astype(np.float32), (0, 0), 5)
    full = cv2.GaussianBlur(field, (0, 0), 12, borderType=cv2.BORDER_REFLECT)
    assert np.abs(blend.blur(field, 12) - full).max() < 0.01


def test_lighting_reads_a_side_light_a_dim_face_and_a_grey_photo():
    coverage = np.ones((60, 80), np.float32)
    skin = np.broadcast_to(blend.SKIN_CHROMA * blend.SKIN_LUMINANCE, (60, 80, 3)).astype(np.float32)
    ramp = np.linspace(0.4, 1.0, 80, dtype=np.float32)[None, :, None]
    shading, gain, saturation = blend.lighting(skin * ramp, coverage, 80)
    assert shading[30, 5, 0] < 0.85 < 1.1 < shading[30, 75, 0]
    _, gain_dim, _ = blend.lighting(skin * 0.25, coverage, 80)
    assert gain_dim.mean() < 0.7 * gain.mean()
    grey = np.full((60, 80, 3), 0.3, np.float32)
    assert blend.lighting(grey, coverage, 80)[2] == pytest.approx(0.0, abs=1e-6)


def test_grain_is_reproducible_from_the_generator():
    first = blend.grain((50, 70), np.random.default_rng(3))
    again = blend.grain((50, 70), np.random.default_rng(3))
    other = blend.grain((50, 70), np.random.default_rng(4))
    assert first.shape == (50, 70, 3)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert blend.grain((700, 900), np.random.default_rng(0)).shape == (700, 900, 3)


def changed(before: np.ndarray, after: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Whether each landmark's pixel changed by more than 25/255 (as a mask would change it)."""
    diff = np.abs(before.astype(int) - after.astype(int)).max(axis=2)
    diff = cv2.dilate(diff.astype(np.uint8), np.ones((3, 3), np.uint8))
    xs = np.clip(np.round(points[:, 0]).astype(int), 0, diff.shape[1] - 1)
    ys = np.clip(np.round(points[:, 1]).astype(int), 0, diff.shape[0] - 1)
    return diff[ys, xs] > 25


def test_every_builtin_style_covers_nose_and_mouth_and_leaves_the_eyes(face_image, face_landmarks, styles):
    for style in styles.values():
        masked = wear_mask(face_image, face_landmarks, style, MaskParams(style.name), np.random.default_rng(0))
        assert changed(face_image, masked, face_landmarks[NOSE_AND_MOUTH]).all(), style.name
        assert not changed(face_image, masked, face_landmarks[EYES]).any(), style.name
        assert masked.shape == face_image.shape and masked.dtype == np.uint8


def test_the_placed_mask_is_opaque_over_nose_and_mouth_and_clear_of_the_eyes(face_image, face_landmarks, styles):
    style = styles["surgical_blue"]
    warped, (x0, y0, x1, y1) = blend.placed_mask(face_image.shape, face_landmarks, style, MaskParams(style.name))
    assert warped.dtype == np.float32 and warped.shape == (y1 - y0, x1 - x0, 4)
    alpha = np.zeros(face_image.shape[:2], np.float32)
    alpha[y0:y1, x0:x1] = warped[:, :, 3]
    points = np.round(face_landmarks).astype(int)
    assert (alpha[points[NOSE_AND_MOUTH, 1], points[NOSE_AND_MOUTH, 0]] > 0.9).all()
    assert (alpha[points[EYES, 1], points[EYES, 0]] == 0).all()


@pytest.mark.parametrize("degrees", [-30, 30])
def test_masks_follow_a_tilted_head(face_image, styles, degrees):
    tilted = rotate(cv2.resize(face_image, (400, 400)), degrees)
    faces = find_faces(tilted)
    assert len(faces) == 1
    landmarks = faces[0].landmarks
    masked = wear_mask(tilted, landmarks, styles["kn95_white"], MaskParams("kn95_white"), np.random.default_rng(0))
    assert changed(tilted, masked, landmarks[NOSE_AND_MOUTH]).all()
    assert not changed(tilted, masked, landmarks[EYES]).any()


def test_mask_takes_the_photo_s_colour_and_light(face_image, face_landmarks, styles):
    style = styles["surgical_blue"]
    params = MaskParams(style.name)
    grey_face = cv2.cvtColor(cv2.cvtColor(face_image, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    masked = wear_mask(grey_face, face_landmarks, style, params, np.random.default_rng(0)).astype(int)
    mouth = tuple(np.round(face_landmarks[57] + (0, 4)).astype(int)[::-1])
    assert np.ptp(masked[mouth]) <= 3  # a blue mask in a greyscale photo is grey
    bright = wear_mask(face_image, face_landmarks, style, params, np.random.default_rng(0))
    dim_face = relight(face_image, (0.2, 0.2, 0.2))
    dim = wear_mask(dim_face, face_landmarks, style, params, np.random.default_rng(0))
    assert dim[mouth].mean() < 0.75 * bright[mouth].mean()


def test_mask_is_as_soft_as_a_blurred_photo(face_image, face_landmarks, styles):
    style = styles["cloth_dots"]

    def mask_edge_sharpness(image):
        masked = wear_mask(image, face_landmarks, style, MaskParams(style.name), np.random.default_rng(0))
        inside = cv2.cvtColor(masked, cv2.COLOR_RGB2GRAY).astype(np.float32)
        x0, y0 = np.round(face_landmarks[4]).astype(int)
        x1, y1 = np.round(face_landmarks[12]).astype(int)
        patch = inside[min(y0, y1):max(y0, y1), x0:x1]
        return np.abs(cv2.Laplacian(patch, cv2.CV_32F)).mean()

    sharp = mask_edge_sharpness(face_image)
    soft = mask_edge_sharpness(cv2.GaussianBlur(face_image, (0, 0), 2.5))
    assert soft < 0.5 * sharp


def test_a_style_edited_under_its_name_is_worn_as_edited_in_the_same_process(face_image, face_landmarks, styles):
    # Templates are cached per process; a PNG redrawn between two runs in one process (a notebook,
    # or a run small enough to be made in-process) must be worn as it is now.
    style = styles["surgical_blue"]
    params = MaskParams(style.name)
    mouth = tuple(face_landmarks[48:68].mean(axis=0).round().astype(int))
    cheek = tuple(((face_landmarks[3] * 2 + face_landmarks[48]) / 3).round().astype(int))
    blue = wear_mask(face_image, face_landmarks, style, params, np.random.default_rng(0))
    swapped = style.rgba.copy()
    swapped[:, :, :3] = swapped[:, :, 2::-1]  # red and blue exchanged
    orange = wear_mask(face_image, face_landmarks, replace(style, rgba=swapped), params, np.random.default_rng(0))
    red, _, blue_value = blue[mouth[::-1]].astype(int)
    assert blue_value > red
    red, _, blue_value = orange[mouth[::-1]].astype(int)
    assert red > blue_value
    half_gone = style.rgba.copy()
    half_gone[:, : style.rgba.shape[1] // 2, 3] = 0  # the side over jaw points 0-7 cut away
    narrow = replace(style, rgba=half_gone)
    cut = wear_mask(face_image, face_landmarks, narrow, params, np.random.default_rng(0))
    assert np.abs(blue[cheek[::-1]].astype(int) - face_image[cheek[::-1]]).max() > 25
    assert np.abs(cut[cheek[::-1]].astype(int) - face_image[cheek[::-1]]).max() <= 3
    assert blend.opaque_bounds(narrow)[0] >= style.rgba.shape[1] // 2


def test_random_shift_moves_the_mask(face_image, face_landmarks, styles):
    style = styles["surgical_white"]
    low = wear_mask(face_image, face_landmarks, style, MaskParams(style.name, shift=0.07), np.random.default_rng(0))
    high = wear_mask(face_image, face_landmarks, style, MaskParams(style.name, shift=-0.07), np.random.default_rng(0))

    def top_edge(masked):
        column = np.abs(masked.astype(int) - face_image.astype(int)).max(axis=2)[:, int(face_landmarks[28, 0])]
        return np.nonzero(column > 25)[0].min()

    assert top_edge(low) > top_edge(high)


def test_a_crease_is_a_fold_lit_on_one_side_and_shaded_on_the_other():
    """Drawn in canonical units, placed on the face through its landmarks; nothing changes off the crease."""
    from augment.fit import CANONICAL_FACE

    landmarks = (CANONICAL_FACE * 100 + (200, 100)).astype(np.float32)  # eye distance 100 px
    crease = (0.9, 0.8, 0.3, 1.1, 0.05, 0.15)  # start, end, width, depth
    shading = blend.crease_shading(landmarks, (0, 0, 400, 400), 1.0, (crease,))
    middle = (np.array([0.6, 0.95]) * 100 + (200, 100))
    across = np.array([0.3, 0.6]) / np.hypot(0.3, 0.6) * 5  # one width (0.05 units) to either side
    one_side = shading[tuple(np.round(middle + across).astype(int)[::-1])]
    other_side = shading[tuple(np.round(middle - across).astype(int)[::-1])]
    assert sorted([one_side, other_side]) == [pytest.approx(0.85, abs=0.01), pytest.approx(1.15, abs=0.01)]
    assert shading[int(middle[1]), int(middle[0])] == pytest.approx(1.0, abs=0.01)  # on the fold's line
    assert shading[50, 50] == 1.0 and shading[390, 10] == 1.0  # far from it
    assert shading.dtype == np.float32 and shading.shape == (400, 400)
    half = blend.crease_shading(landmarks, (0, 0, 400, 400), 0.5, (crease,))
    assert np.abs(half - 1).max() == pytest.approx(np.abs(shading - 1).max() / 2, rel=0.01)
    assert (blend.crease_shading(landmarks, (0, 0, 400, 400), 0.0, (crease,)) == 1).all()


def test_creases_gather_at_the_sides_and_under_the_chin():
    for seed in range(20):
        creases = blend.draw_creases(np.random.default_rng(seed))
        sides = [c for c in creases if abs(c[0]) > 0.7]
        assert 2 <= len(sides) <= 4 and len(creases) - len(sides) <= 2
        for start_x, start_y, end_x, end_y, width, depth in creases:
            assert min(start_y, end_y) > 0.4 and max(start_y, end_y) < 2.0  # below the eyes, above the chin edge
            assert abs(end_x) < abs(start_x) or start_y > 1.4  # side folds run in towards the mouth
            assert 0 < width < 0.1 and 0.1 < abs(depth) < 0.3


def test_creases_show_on_cloth_in_places_and_not_on_a_rigid_cup(face_image, face_landmarks, styles):
    """The same face and draws with a style's creases at 1 and at 0: folds in places, nothing else moved."""
    from dataclasses import replace

    cloth = styles["cloth_grey"]
    params = MaskParams(cloth.name, creases=blend.draw_creases(np.random.default_rng(3)))

    def worn(style):
        return wear_mask(face_image, face_landmarks, style, params, np.random.default_rng(0)).astype(int)

    by_creases = np.abs(worn(cloth) - worn(replace(cloth, creases=0.0))).max(axis=2)
    assert by_creases.max() > 5  # folds show on the cloth ...
    assert 0.001 < (by_creases > 2).mean() < 0.05  # ... in places, not all over
    assert styles["cup_white"].creases == 0
    # On black cloth a fold shows by the light its raised side reflects, not by shading alone.
    black = styles["cloth_black"]
    brighter = worn(black) - worn(replace(black, creases=0.0))
    assert brighter.max() > 12 and brighter.max() > -brighter.min()


def test_the_colour_matrix_scales_then_keeps_the_given_share_of_colour():
    scale = np.array([1.2, 0.9, 0.7], np.float32)
    colours = np.random.default_rng(0).random((50, 3)).astype(np.float32)
    assert np.allclose(blend.colour_matrix(scale, 1.0), np.diag(scale))
    scaled = colours * scale
    grey = colours @ blend.colour_matrix(scale, 0.0).T
    assert np.allclose(grey, (scaled @ blend.LUMA)[:, None].repeat(3, axis=1), atol=1e-6)  # no colour left
    half = colours @ blend.colour_matrix(scale, 0.5).T
    assert np.allclose(half, 0.5 * scaled + 0.5 * grey, atol=1e-6)
    assert np.allclose(half @ blend.LUMA, scaled @ blend.LUMA, atol=1e-6)  # luminance kept


def test_a_mask_on_a_head_turned_away_has_no_bare_specks_along_its_far_side(styles):
    """Turned away, the far mouth corner can fall on the jaw line, squeezing a triangle of the warp
    to a sliver whose map, read half a pixel outside it, lands beyond the mask's slanting edge."""
    def specks(alpha: np.ndarray) -> int:  # bare pixels whose four neighbours are all covered
        covered = np.pad(alpha >= 0.5, 1)
        return int((~covered[1:-1, 1:-1] & covered[:-2, 1:-1] & covered[2:, 1:-1]
                    & covered[1:-1, :-2] & covered[1:-1, 2:]).sum())

    style = styles["surgical_white"]
    found = 0
    for squeeze in (0.1, 0.2, 0.3, 0.4):
        for nudge in (-1.0, 0.0, 1.0, 2.0):
            face = fit.CANONICAL_FACE.copy()
            face[face[:, 0] < 0, 0] *= squeeze
            face = face * 30 + (100, 60)
            face[48] = (face[4] + face[5]) / 2 + (nudge, 0)
            warped, _ = blend.placed_mask((200, 200, 3), face, style, MaskParams(style.name))
            found += specks(warped[:, :, 3])
    assert found == 0


def test_side_light_reads_which_side_is_lit_through_a_print():
    canonical_to_image = np.array([[50.0, 0.0, 100.0], [0.0, 50.0, 20.0]])  # 50 px to the eye distance
    ramp = np.broadcast_to(np.linspace(0.2, 0.1, 200, dtype=np.float32), (160, 200)).copy()  # lit from the left
    # The middle pair of points lies at x = 74 and 126 px: 0.163 against 0.137.
    assert blend.side_light(ramp, canonical_to_image, blend.MASK_HALF_POINTS) == pytest.approx(np.log(0.163 / 0.137),
                                                                                             abs=0.01)
    assert blend.side_light(ramp[:, ::-1], canonical_to_image, blend.MASK_HALF_POINTS) < -0.15
    # A print of two colours in random blotches, evenly lit, reads as even light; lit from the left, as lit.
    blotches = cv2.resize(np.random.default_rng(0).random((16, 20)), (200, 160), interpolation=cv2.INTER_NEAREST)
    printed = np.where(blotches > 0.5, 0.6, 0.05).astype(np.float32)
    assert abs(blend.side_light(printed, canonical_to_image, blend.MASK_HALF_POINTS)) < blend.STYLE_SIDE_LIGHT
    assert blend.side_light(printed * ramp, canonical_to_image, blend.MASK_HALF_POINTS) > 0.15
    # Only pairs inside the picture and where it is opaque count; none left reads as even light.
    opaque = np.zeros((160, 200), bool)
    assert blend.side_light(ramp, canonical_to_image, blend.MASK_HALF_POINTS, opaque) == 0.0
    assert blend.side_light(ramp, canonical_to_image + [[0, 0, 500], [0, 0, 0]], blend.MASK_HALF_POINTS) == 0.0


def test_face_and_style_side_light(face_image, face_landmarks, styles):
    # The astronaut's portrait is lit from the picture's left; so is its mirror image from the right.
    lit_left = blend.face_side_light(face_image, face_landmarks)
    mirror_image = face_image[:, ::-1].copy()
    assert lit_left > blend.FACE_SIDE_LIGHT
    assert blend.face_side_light(mirror_image, find_faces(mirror_image)[0].landmarks) == pytest.approx(-lit_left, abs=0.05)
    # Light falling off towards the picture's left takes some of that away.
    assert blend.face_side_light(relight(face_image, (1, 1, 1), gradient=0.7), face_landmarks) < lit_left - 0.08
    # The KN95s and the cup are drawn lit from the left (``draw_styles``); the others evenly.
    for name in ("kn95_white", "kn95_black", "cup_white"):
        assert blend.style_side_light(styles[name]) > blend.STYLE_SIDE_LIGHT, name
    for name in ("surgical_blue", "cloth_floral", "sponge_black_valve"):
        assert abs(blend.style_side_light(styles[name])) < blend.STYLE_SIDE_LIGHT, name


def test_a_mask_lit_from_one_side_is_worn_lit_from_the_face_s_side():
    assert blend.worn_mirrored(style_light=0.1, face_light=lambda: -0.5)  # face lit from the right, style from the left
    assert blend.worn_mirrored(style_light=-0.1, face_light=lambda: 0.5)
    assert not blend.worn_mirrored(style_light=0.1, face_light=lambda: 0.5)
    assert not blend.worn_mirrored(style_light=-0.1, face_light=lambda: -0.5)
    assert not blend.worn_mirrored(style_light=0.3, face_light=lambda: -0.05)  # either light unclear: worn as drawn
    assert not blend.worn_mirrored(style_light=0.0, face_light=lambda: -0.5)


def test_a_mirrored_mask_shows_its_right_half_on_the_picture_s_left(face_image, face_landmarks, styles):
    style = styles["surgical_white"]
    two_colours = style.rgba.copy()
    middle = round((style.anchors["left"][0] + style.anchors["right"][0]) / 2)
    two_colours[:, :middle, :3] = (200, 30, 30)  # its left half red, its right half blue
    two_colours[:, middle:, :3] = (30, 30, 200)
    style = replace(style, rgba=two_colours)
    left_cheek = tuple(((face_landmarks[3] * 2 + face_landmarks[48]) / 3).round().astype(int))[::-1]
    right_cheek = tuple(((face_landmarks[13] * 2 + face_landmarks[54]) / 3).round().astype(int))[::-1]
    for mirrored, (left_colour, right_colour) in ((False, (0, 2)), (True, (2, 0))):
        masked = wear_mask(face_image, face_landmarks, style, MaskParams(style.name, mirrored=mirrored),
                           np.random.default_rng(0)).astype(int)
        assert masked[left_cheek][left_colour] > masked[left_cheek][right_colour] + 50, mirrored
        assert masked[right_cheek][right_colour] > masked[right_cheek][left_colour] + 50, mirrored

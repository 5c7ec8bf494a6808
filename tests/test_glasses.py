"""Glasses frames found on a face and drawn in front of the mask it is given."""
import cv2
import numpy as np
import pytest

from augment import fit, glasses
from augment.demo import astronaut
from augment.blend import MaskParams, placed_mask, wear_mask
from augment.faces import find_faces
from augment.geometry import apply_affine, fit_affine
from augment.styles import load_styles

from conftest import BUILTIN_STYLES

FRAME_COLOUR = (40, 28, 24)
# Drawn lenses (canonical units): centre, half width, half height, superellipse exponent.
LENS = (0.55, 0.1, 0.42, 0.34, 5.0)


def lens_points(centre_x: float, samples: int = 200) -> np.ndarray:
    _, y, a, b, n = LENS
    t = np.linspace(0, 2 * np.pi, samples, endpoint=False)
    return np.stack([centre_x + a * np.sign(np.cos(t)) * np.abs(np.cos(t)) ** (2 / n),
                     y + b * np.sign(np.sin(t)) * np.abs(np.sin(t)) ** (2 / n)], axis=1)


def lower_rim(centre_x: float) -> np.ndarray:
    """Canonical points of a drawn lens's lower rim, away from the corners: where a mask lies on it."""
    points = lens_points(centre_x)
    return points[(points[:, 1] > LENS[1] + 0.9 * LENS[3]) & (np.abs(points[:, 0] - centre_x) < 0.25)]


def put_on_glasses(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """A copy of ``image`` with dark rectangular frames drawn on the face: two lenses and a bridge."""
    to_image = fit_affine(fit.CANONICAL_FACE, landmarks)
    scale = float(np.linalg.norm(to_image[:, 0]))
    out = image.copy()
    lines = [lens_points(LENS[0]), lens_points(-LENS[0]), np.array([[-0.14, -0.02], [0.14, -0.02]])]
    for closed, points in zip((True, True, False), lines):
        pixels = np.round(apply_affine(to_image, points) * 16).astype(np.int32)
        cv2.polylines(out, [pixels], closed, FRAME_COLOUR, max(1, round(0.05 * scale)), cv2.LINE_AA, shift=4)
    return out


@pytest.fixture(scope="module")
def bare():
    """The astronaut portrait at 512 px (42 px between the eyes) and her landmarks."""
    image = cv2.resize(astronaut(), (512, 512), interpolation=cv2.INTER_AREA)
    found = find_faces(image)
    assert len(found) == 1
    return image, found[0].landmarks


@pytest.fixture(scope="module")
def spectacled(bare):
    """The astronaut wearing drawn glasses, and the landmarks dlib finds on her with them."""
    image = put_on_glasses(*bare)
    found = find_faces(image)
    assert len(found) == 1
    return image, found[0].landmarks


def in_image(landmarks: np.ndarray, canonical: np.ndarray) -> np.ndarray:
    return np.round(apply_affine(fit_affine(fit.CANONICAL_FACE, landmarks), canonical)).astype(int)


def test_no_frames_on_a_bare_face(bare):
    image, landmarks = bare
    assert glasses.find_frames(image, landmarks, (0, 0, 512, 512)) is None
    assert glasses.bridge_darkness(image, landmarks, 42.0) < glasses.BRIDGE_DARKNESS


def test_frames_are_found_along_the_drawn_rims_and_nowhere_else(spectacled):
    image, landmarks = spectacled
    box = (160, 100, 290, 220)  # the face from the eyes down, as a mask's box is
    frames = glasses.find_frames(image, landmarks, box)
    assert frames is not None
    assert frames.coverage.shape == (box[3] - box[1], box[2] - box[0]) and frames.coverage.dtype == np.float32
    assert np.abs(frames.colour - FRAME_COLOUR).max() < 40
    for side in (LENS[0], -LENS[0]):
        rim = in_image(landmarks, lower_rim(side)) - box[:2]
        near = cv2.dilate(frames.coverage, np.ones((3, 3), np.uint8))  # a pixel's rounding either way
        assert np.mean(near[rim[:, 1], rim[:, 0]] > 0.5) > 0.9, side
    # Nothing drawn at the nose tip, the mouth or the middle of the cheeks, all under a mask.
    elsewhere = np.vstack([landmarks[[30, 33, 51, 57, 62]],
                           in_image(landmarks, np.array([[0.5, 0.75], [-0.5, 0.75]]))]).round().astype(int) - box[:2]
    assert frames.coverage[elsewhere[:, 1], elsewhere[:, 0]].max() < 0.05


def test_frames_stand_in_front_of_the_worn_mask(spectacled, monkeypatch):
    image, landmarks = spectacled
    style = {s.name: s for s in load_styles([BUILTIN_STYLES])[0]}["surgical_white"]
    params = MaskParams(style.name)
    warped, (x0, y0, _, _) = placed_mask(image.shape, landmarks, style, params)
    rim = np.vstack([in_image(landmarks, lower_rim(side)) for side in (LENS[0], -LENS[0])])
    under_mask = rim[warped[rim[:, 1] - y0, rim[:, 0] - x0, 3] > 0.9]
    assert len(under_mask) > 10  # the white mask reaches up over the lower rims
    nose_and_mouth = landmarks[[30, 33, 51]].round().astype(int)

    def brightness(masked: np.ndarray, points: np.ndarray) -> float:
        return float(np.median(masked[points[:, 1], points[:, 0]].astype(float).mean(axis=1)))

    masked = wear_mask(image, landmarks, style, params, np.random.default_rng(0))
    assert brightness(masked, nose_and_mouth) > 150 and brightness(masked, under_mask) < 90
    # Without them found, the mask hides them.
    monkeypatch.setattr(glasses, "find_frames", lambda *args: None)
    assert brightness(wear_mask(image, landmarks, style, params, np.random.default_rng(0)), under_mask) > 150


def test_in_front_draws_the_frame_only_where_the_mask_is():
    region = np.full((4, 6, 3), 200, np.uint8)
    coverage = np.zeros((4, 6), np.float32)
    coverage[1] = 1.0
    coverage[2] = 0.5
    alpha = np.zeros((4, 6), np.float32)
    alpha[:, 3:] = 1.0
    out = glasses.in_front(region, glasses.Frames(coverage, np.array([20.0, 40.0, 60.0], np.float32)), alpha)
    assert out.dtype == np.uint8 and out.shape == region.shape
    assert (out[:, :3] == 200).all()  # no mask there: the photo shows its own frame
    assert (out[1, 3:] == (20, 40, 60)).all() and (out[2, 3:] == (110, 120, 130)).all()
    assert (out[[0, 3]] == 200).all()

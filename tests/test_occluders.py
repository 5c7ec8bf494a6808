"""Sunglasses, caps and covers drawn on a real face: each changes its own part of the face and nothing else."""

import numpy as np
import pytest

from augment import occluders
from augment.faces import face_box
from augment.scenes import annotation_box, turn


def _region(landmarks: np.ndarray, points: slice, pad: float = 0.0) -> tuple[slice, slice]:
    x0, y0 = landmarks[points].min(axis=0) - pad
    x1, y1 = landmarks[points].max(axis=0) + pad
    return slice(int(y0), int(y1) + 1), slice(int(x0), int(x1) + 1)


def _changed(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    return np.abs(before.astype(int) - after.astype(int)).max(axis=2) > 8


@pytest.mark.parametrize("seed", range(3))
def test_sunglasses_darken_the_eyes_and_leave_the_mouth(face_image, face_landmarks, seed):
    out = occluders.sunglasses(face_image, face_landmarks, np.random.default_rng(seed))
    eyes = _region(face_landmarks, slice(36, 48))
    mouth = _region(face_landmarks, slice(48, 68))
    assert out.shape == face_image.shape and out.dtype == np.uint8
    assert out[eyes].mean() < 0.6 * face_image[eyes].mean()
    assert np.array_equal(out[mouth], face_image[mouth])


@pytest.mark.parametrize("seed", range(3))
def test_a_cap_covers_the_forehead_not_the_eyes_or_mouth(face_image, face_landmarks, seed):
    out = occluders.cap(face_image, face_landmarks, np.random.default_rng(seed))
    spacing = np.linalg.norm(face_landmarks[42:48].mean(axis=0) - face_landmarks[36:42].mean(axis=0))
    top = int(face_landmarks[17:27, 1].min() - spacing * 0.7)
    centre = int(face_landmarks[27, 0])
    assert _changed(face_image[top - 5:top, centre - 5:centre + 5], out[top - 5:top, centre - 5:centre + 5]).all()
    for points in (slice(36, 48), slice(48, 68)):
        area = _region(face_landmarks, points)
        assert np.array_equal(out[area], face_image[area])


@pytest.mark.parametrize("seed", range(6))
def test_a_cover_hides_part_of_the_face_and_nothing_far_from_it(face_image, face_landmarks, seed):
    box = annotation_box(face_box(face_landmarks))
    out = occluders.cover(face_image, face_landmarks, box, np.random.default_rng(seed))
    changed = _changed(face_image, out)
    x0, y0, x1, y1 = (int(v) for v in box)
    inside = changed[y0:y1, x0:x1].mean()
    assert 0.02 < inside < 0.5
    width, height = x1 - x0, y1 - y0
    near = np.zeros_like(changed)
    near[max(y0 - height, 0):y1 + height, max(x0 - width, 0):x1 + width] = True
    assert not changed[~near].any()


def test_occlude_draws_nothing_at_zero_chances_and_repeats_for_a_seed(face_image, face_landmarks):
    box = annotation_box(face_box(face_landmarks))
    untouched = occluders.occlude(face_image, face_landmarks, box, np.random.default_rng(0), (0.0, 0.0, 0.0))
    assert np.array_equal(untouched, face_image)
    first, second = (occluders.occlude(face_image, face_landmarks, box, np.random.default_rng(5), (1.0, 1.0, 1.0))
                     for _ in range(2))
    assert np.array_equal(first, second) and _changed(face_image, first).mean() > 0.05


def test_turn_keeps_the_centre_and_narrows_the_far_side():
    centre, width = np.array([100.0, 80.0]), 60.0
    assert np.allclose(turn(0.0, centre, width), np.eye(3))
    matrix = turn(30.0, centre, width)
    points = np.array([[70.0, 80.0, 1.0], [100.0, 80.0, 1.0], [130.0, 80.0, 1.0], [130.0, 50.0, 1.0]])
    moved = points @ matrix.T
    moved = moved[:, :2] / moved[:, 2:]
    assert np.allclose(moved[1], centre)
    near, far = centre[0] - moved[0, 0], moved[2, 0] - centre[0]
    assert far < near < 30.0  # both sides foreshortened, the far one more
    assert 80.0 - moved[3, 1] < 30.0  # and the far side is shorter too

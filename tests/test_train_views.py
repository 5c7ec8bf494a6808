"""The one resize rule and the random training views, as pure functions of arrays."""
import cv2
import numpy as np
import pytest

from train.views import Jitter, degrade, plain_view, random_view, relight, resize_face, view_rectangle


def test_enlarging_is_bilinear_not_blocky():
    checker = np.kron(np.array([[0, 255], [255, 0]], np.uint8), np.ones((2, 2), np.uint8))
    image = np.repeat(checker[:, :, None], 3, axis=2)
    enlarged = resize_face(image, 32)
    assert enlarged.shape == (32, 32, 3) and enlarged.dtype == np.uint8
    assert len(np.unique(enlarged)) > 10  # smooth ramps, not two flat colours


def test_shrinking_averages_areas():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (300, 200, 3), dtype=np.uint8)
    small = resize_face(image, 50)
    assert small.shape == (50, 50, 3)
    assert small.astype(float).mean() == pytest.approx(image.astype(float).mean(), abs=1.0)
    assert small.std() < image.std() / 2  # averaged, not sampled


def test_resize_face_rejects_what_is_not_rgb_uint8():
    with pytest.raises(ValueError, match="uint8"):
        resize_face(np.zeros((10, 10), np.uint8), 8)
    with pytest.raises(ValueError, match="uint8"):
        resize_face(np.zeros((10, 10, 3), np.float32), 8)


def test_view_rectangles_stay_in_the_image_and_near_the_face():
    rng = np.random.default_rng(1)
    box, shape, jitter = (100.0, 80.0, 160.0, 140.0), (300, 260, 3), Jitter()
    for _ in range(300):
        cx, cy, width, height, angle = view_rectangle(box, shape, rng, jitter)
        assert width / 2 <= cx + 1e-6 and cx + width / 2 <= 260 + 1e-6
        assert height / 2 <= cy + 1e-6 and cy + height / 2 <= 300 + 1e-6
        assert width <= 60 * jitter.scale[1] * np.sqrt(jitter.aspect[1]) + 1e-6
        assert abs(angle) <= jitter.angle
        assert min(width, height) >= 60 * jitter.scale[0] / np.sqrt(jitter.aspect[1]) - 1e-6


def test_random_views_are_reproducible_and_varied(face_image):
    box = (70.0, 60.0, 190.0, 180.0)
    first = random_view(face_image, box, 64, np.random.default_rng([3, 1]))
    again = random_view(face_image, box, 64, np.random.default_rng([3, 1]))
    other = random_view(face_image, box, 64, np.random.default_rng([3, 2]))
    assert first.shape == (64, 64, 3) and first.dtype == np.uint8
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_degrade_lowers_detail_but_keeps_the_picture(face_image):
    view = resize_face(face_image, 128)
    always = Jitter(low_resolution=(32, 33), low_resolution_share=1.0, blur_share=0, jpeg_share=1.0, noise_share=0)
    degraded = degrade(view, np.random.default_rng(0), always)
    assert degraded.shape == view.shape and degraded.dtype == np.uint8
    detail = lambda image: np.abs(np.diff(image.astype(float), axis=1)).mean()  # noqa: E731
    assert detail(degraded) < 0.7 * detail(view)
    coarse = lambda image: cv2.GaussianBlur(image.astype(np.float32), (0, 0), 4)  # noqa: E731
    assert np.abs(coarse(degraded) - coarse(view)).mean() < 8  # the same picture, seen coarsely


def test_relight_changes_light_not_content(face_image):
    view = resize_face(face_image, 64)
    lit = relight(view, np.random.default_rng(5))
    assert lit.shape == view.shape and lit.dtype == np.uint8
    correlation = np.corrcoef(lit.mean(axis=2).ravel(), view.mean(axis=2).ravel())[0, 1]
    assert correlation > 0.9


def test_plain_view_cuts_the_box_and_tolerates_one_outside():
    image = np.zeros((100, 100, 3), np.uint8)
    image[20:60, 30:70] = 200
    assert plain_view(image, (30, 20, 70, 60), 16).min() == 200
    assert plain_view(image, (-500, -500, -400, -400), 16).shape == (16, 16, 3)  # falls back to the image
    assert plain_view(image, None, 10).shape == (10, 10, 3)

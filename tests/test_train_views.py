"""The one resize rule and the random training views, as pure functions of arrays."""
import cv2
import numpy as np
import pytest

from train.views import (VIEW_SCALE, Jitter, cut_view, degrade, face_views, plain_view, random_view, reduced_for_views,
                         relight, resize_face, view_box, view_rectangle)


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


def test_a_face_is_seen_by_its_box_and_as_training_views_framed_faces_most_often():
    assert VIEW_SCALE == pytest.approx(np.sqrt(Jitter().scale[0] * Jitter().scale[1]))
    image = np.zeros((400, 400, 3), np.uint8)
    image[180:220, 180:220] = 255  # a 40-px face box in the middle
    views = face_views(image, (180, 180, 220, 220), 100)
    assert views.shape == (2, 100, 100, 3) and views.dtype == np.uint8
    assert views[0].min() == 255  # the box itself
    bright = views[1][:, :, 0] > 127
    rows, cols = np.flatnonzero(bright.any(axis=1)), np.flatnonzero(bright.any(axis=0))
    # The box fills 1 / VIEW_SCALE of the second view's side, centred.
    assert len(rows) == pytest.approx(100 / VIEW_SCALE, abs=2) and len(cols) == pytest.approx(100 / VIEW_SCALE, abs=2)
    assert (rows[0] + rows[-1]) / 2 == pytest.approx(49.5, abs=1.5)
    assert np.array_equal(face_views(image, None, 50), plain_view(image, None, 50)[None])  # no box: the image


def test_view_box_moves_inside_the_image_rather_than_squeeze_the_face():
    # A face at the top left corner: the grown square is moved in, not cut (a cut square would be
    # squeezed when resized, making the face wider than it is).
    assert view_box((0, 10, 40, 50), 1.5, (300, 200)) == pytest.approx((0, 0, 60, 60))
    assert view_box((150, 250, 200, 300), 2.0, (300, 200)) == pytest.approx((100, 200, 200, 300))
    # Larger than the image: cut to it on the sides it does not fit, centred where it does.
    assert view_box((40, 100, 80, 140), 3.0, (300, 100)) == pytest.approx((0, 60, 100, 180))
    assert view_box((40, 100, 80, 140), 1.0, (300, 100)) == pytest.approx((40, 100, 80, 140))


@pytest.mark.parametrize("centre", [(2000, 1500), (40, 1500), (2000, 2980)])  # inside; at the left; at the foot
def test_a_small_face_in_a_large_photo_is_held_as_its_views_surroundings_and_gives_the_same_views(centre):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (3000, 4000, 3), dtype=np.uint8)
    x, y = centre
    box = (x - 30.0, y - 30.0, x + 30.0, y + 30.0)  # a 60-px face: no view of it is enlarged by a reduction
    kept, kept_box = reduced_for_views(image, box, 224)
    left, top = box[0] - kept_box[0], box[1] - kept_box[1]
    assert kept.nbytes < image.nbytes / 20 and np.array_equal(kept, image[int(top):, int(left):][:kept.shape[0],
                                                                                                 :kept.shape[1]])
    for seed in range(300):
        whole = view_rectangle(box, image.shape, np.random.default_rng(seed), Jitter())
        part = view_rectangle(kept_box, kept.shape, np.random.default_rng(seed), Jitter())
        assert part[0] + left == pytest.approx(whole[0]) and part[1] + top == pytest.approx(whole[1])
        assert part[2:] == pytest.approx(whole[2:])
        if seed < 20:
            difference = cut_view(kept, part, 224).astype(int) - cut_view(image, whole, 224)
            assert np.abs(difference).max() <= 1


def test_a_large_image_is_held_only_as_large_as_its_tightest_view_needs():
    rng = np.random.default_rng(0)
    image = np.zeros((3000, 4000, 3), np.uint8)
    image[1000:2000, 1500:2500] = rng.integers(0, 256, (1000, 1000, 3), dtype=np.uint8)  # the "face"
    box = (1500.0, 1000.0, 2500.0, 2000.0)
    reduced, reduced_box = reduced_for_views(image, box, 224)
    side = reduced_box[2] - reduced_box[0]
    assert reduced.nbytes < image.nbytes / 7 and side == pytest.approx(224 * np.sqrt(1.25) / 0.7, rel=0.01)
    x0, y0, x1, y1 = (int(round(v)) for v in reduced_box)  # the box still frames the face
    assert reduced[y0 + 2:y1 - 2, x0 + 2:x1 - 2].min(axis=2).mean() > 20 and reduced[:y0 - 2].max() == 0
    for seed in range(200):  # no view of the copy is enlarged
        _, _, width, height, _ = view_rectangle(reduced_box, reduced.shape, np.random.default_rng(seed), Jitter())
        assert min(width, height) >= 224 - 1e-6
    whole, none = reduced_for_views(image, None, 224)  # no box: the whole image is the face
    assert none is None and max(whole.shape[:2]) == round(224 * np.sqrt(1.25) / 0.7)
    small = np.zeros((200, 300, 3), np.uint8)
    assert reduced_for_views(small, (10.0, 10.0, 110.0, 110.0), 224)[0] is small  # nothing to gain

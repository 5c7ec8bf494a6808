"""Boxes and affine maps: pure functions, checked on hand-made numbers."""
import cv2
import numpy as np
import pytest

from augment.geometry import (apply_affine, bounding_box, box_area, box_corners, box_iou, crop_box, fit_affine,
                              intersection_area, rotation_onto_canvas, share_covered, smaller_box_covered)


def test_areas_of_boxes_and_of_what_two_boxes_share():
    assert box_area((0, 0, 10, 4)) == 40
    assert box_area((5, 5, 2, 9)) == 0.0  # inverted: empty
    assert intersection_area((0, 0, 10, 10), (5, 5, 20, 20)) == 25
    assert intersection_area((0, 0, 10, 10), (10, 0, 20, 10)) == 0.0  # touching edges share nothing


def test_iou_and_shares_covered():
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(1 / 3)
    assert box_iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
    assert box_iou((1, 2, 3, 4), (1, 2, 3, 4)) == 1.0
    assert share_covered((0, 0, 10, 10), (5, 0, 25, 10)) == 0.5
    assert share_covered((5, 0, 25, 10), (0, 0, 10, 10)) == 0.25  # the share of the first box, not the smaller
    assert share_covered((3, 3, 3, 3), (0, 0, 1, 1)) == 1.0
    assert smaller_box_covered((0, 0, 10, 10), (2, 2, 6, 6)) == 1.0
    assert smaller_box_covered((5, 0, 25, 10), (0, 0, 10, 10)) == 0.5
    assert smaller_box_covered((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0


def test_crop_box_grows_and_clips():
    assert crop_box((10, 10, 30, 30), 0.5) == (0, 0, 40, 40)
    assert crop_box((10, 10, 30, 30), 1.0, (35, 100)) == (0, 0, 50, 35)


def test_corners_and_bounds_go_round_trip():
    box = (1.5, 2.0, 7.0, 9.5)
    corners = box_corners(box)
    assert corners.shape == (4, 2) and corners.dtype == np.float64
    assert bounding_box(corners) == box


def test_fit_affine_recovers_a_known_affine():
    matrix = np.array([[1.5, 0.2, 10.0], [-0.3, 0.8, 5.0]])
    source = np.random.default_rng(0).uniform(0, 100, (10, 2))
    np.testing.assert_allclose(fit_affine(source, apply_affine(matrix, source)), matrix, atol=1e-9)


def test_apply_affine_agrees_with_opencv():
    matrix = cv2.getRotationMatrix2D((20.0, 30.0), 33.0, 1.2)
    points = np.random.default_rng(1).uniform(0, 50, (7, 2)).astype(np.float32)
    moved = apply_affine(matrix, points)
    assert moved.dtype == np.float64
    np.testing.assert_allclose(moved, cv2.transform(points[None], matrix)[0], atol=1e-4)


@pytest.mark.parametrize("degrees", [25.0, -25.0, 90.0, 180.0])
def test_rotation_onto_canvas_keeps_the_whole_picture(degrees):
    height, width = 60, 100
    matrix, (canvas_width, canvas_height) = rotation_onto_canvas((height, width, 3), degrees)
    corners = apply_affine(matrix, box_corners((0, 0, width, height)))
    # Centred on a canvas of whole pixels: at most half a pixel of a corner lies past its edge.
    assert corners.min() >= -0.5
    assert corners[:, 0].max() <= canvas_width + 0.5 and corners[:, 1].max() <= canvas_height + 0.5
    assert corners[:, 0].max() >= canvas_width - 0.5 and corners[:, 1].max() >= canvas_height - 0.5
    picture = np.full((height, width), 255, np.uint8)
    turned = cv2.warpAffine(picture, matrix, (canvas_width, canvas_height))
    assert turned.sum() / 255 == pytest.approx(height * width, rel=0.03)  # nothing of it cut off

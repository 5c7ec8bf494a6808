"""Geometry of the mask fit: control points, triangulation and the piecewise-affine warp."""
import cv2
import numpy as np
import pytest

from augment import fit
from augment.geometry import apply_affine


def rotation(degrees: float, scale: float = 1.0, offset=(0.0, 0.0)) -> np.ndarray:
    angle = np.radians(degrees)
    return np.array([
        [scale * np.cos(angle), -scale * np.sin(angle), offset[0]],
        [scale * np.sin(angle), scale * np.cos(angle), offset[1]],
    ])


def test_canonical_face_is_symmetric_with_unit_eye_distance():
    face = fit.CANONICAL_FACE
    left_eye, right_eye = face[36:42].mean(axis=0), face[42:48].mean(axis=0)
    assert np.linalg.norm(right_eye - left_eye) == pytest.approx(1.0, abs=0.01)
    assert face[8, 0] == pytest.approx(0.0, abs=1e-6)  # chin on the midline
    np.testing.assert_allclose(face[0] * (-1, 1), face[16], atol=1e-6)  # jaw ends mirror


def test_canonical_anchors_put_the_top_edge_between_eyes_and_nose_tip():
    face = fit.CANONICAL_FACE
    top = fit.CANONICAL_ANCHORS["top"][1]
    assert face[36:48, 1].max() < top < face[30, 1]
    assert fit.CANONICAL_ANCHORS["bottom"][1] > face[8, 1]


def test_control_points_move_with_the_face():
    """An affine pose of the landmarks moves every control point by that same pose."""
    pose = rotation(30, 40.0, (200, 150))
    points = fit.control_points(apply_affine(pose, fit.CANONICAL_FACE))
    np.testing.assert_allclose(points, apply_affine(pose, fit.canonical_control_points()), atol=1e-6)


def test_control_points_reject_wrong_shape():
    with pytest.raises(ValueError, match="68 landmarks"):
        fit.control_points(np.zeros((5, 2)))


def test_jaw_normals_point_away_from_the_nose():
    normals = fit.jaw_normals(fit.CANONICAL_FACE)
    outward = fit.CANONICAL_FACE[:17] - fit.CANONICAL_FACE[30]
    assert np.all(np.sum(normals * outward, axis=1) > 0)
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0)


def test_face_scale_ignores_rotation_and_follows_size():
    face = apply_affine(rotation(35, 50.0), fit.CANONICAL_FACE)
    assert fit.face_scale(face) == pytest.approx(50.0)


def test_anchors_to_template_maps_canonical_anchors_onto_the_png_anchors():
    pose = rotation(0, 120.0, (300, 40))
    anchors = {name: tuple(apply_affine(pose, np.array([point]))[0])
               for name, point in fit.CANONICAL_ANCHORS.items()}
    np.testing.assert_allclose(fit.anchors_to_template(anchors), pose, atol=1e-9)


def test_triangle_affines_are_exact_per_triangle_and_survive_flat_triangles():
    target = fit.canonical_control_points() * 50 + 200
    source = target * 1.3 + 7
    triangles = fit.control_triangles()
    matrices = fit.triangle_affines(source, target, triangles)
    for matrix, triangle in zip(matrices, triangles):
        np.testing.assert_allclose(apply_affine(matrix, target[triangle]), source[triangle], atol=1e-6)
    flat = target.copy()
    flat[triangles[0]] = flat[triangles[0][0]]  # collapse one triangle to a point
    assert np.all(np.isfinite(fit.triangle_affines(source, flat, triangles)))


def test_identity_warp_maps_every_pixel_to_itself():
    points = fit.canonical_control_points() * 50 + 200
    map_x, map_y, spread = fit.piecewise_affine_maps(points, points, fit.control_triangles(), (120, 150, 280, 300))
    xs, ys = np.meshgrid(np.arange(120, 280), np.arange(150, 300))
    np.testing.assert_allclose(map_x, xs, atol=1e-3)
    np.testing.assert_allclose(map_y, ys, atol=1e-3)
    np.testing.assert_allclose(spread, 1.0, atol=1e-4)


def test_warp_of_a_globally_posed_face_is_that_pose():
    """Piecewise-affine over an affine correspondence is the affine itself, everywhere."""
    template = fit.canonical_control_points() * 100 + 300
    pose = rotation(-28, 0.45, (40, 60))
    face = apply_affine(pose, template)
    box = (150, 150, 300, 300)
    map_x, map_y, spread = fit.piecewise_affine_maps(template, face, fit.control_triangles(), box)
    np.testing.assert_allclose(spread, 1 / 0.45, rtol=1e-4)  # the face is 0.45 of the template's size
    inverse = np.vstack([pose, [0, 0, 1]])
    inverse = np.linalg.inv(inverse)[:2]
    xs, ys = np.meshgrid(np.arange(150, 300), np.arange(150, 300))
    expected = apply_affine(inverse, np.stack([xs.ravel(), ys.ravel()], axis=1))
    np.testing.assert_allclose(map_x.ravel(), expected[:, 0], atol=0.02)
    np.testing.assert_allclose(map_y.ravel(), expected[:, 1], atol=0.02)


def warped_alpha(landmarks: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Warp a solid canonical-frame rectangle template onto landmarks; return its alpha and box."""
    template = np.zeros((220, 300, 4), np.float32)
    template[10:210, 10:290] = 1.0  # opaque inside a transparent border
    to_template = np.array([[100.0, 0.0, 150.0], [0.0, 100.0, 10.0]])  # canonical (-1.5..1.5, -0.1..2.1)
    warped, box = fit.warp_template(fit.halvings(template), to_template, landmarks, (400, 400))
    return warped[:, :, 3], box


def test_turned_head_gets_a_narrower_far_side():
    face = fit.CANONICAL_FACE * 60 + (200, 120)
    turned = face.copy()
    right = turned[:, 0] > 200
    turned[right, 0] = 200 + (turned[right, 0] - 200) * 0.55  # far half foreshortened
    alpha, (x0, y0, _, _) = warped_alpha(turned)
    row = alpha[int(face[30, 1]) - y0]
    covered = np.nonzero(row > 0.5)[0] + x0
    nose_x = turned[30, 0]
    left_width, right_width = nose_x - covered.min(), covered.max() - nose_x
    assert right_width < 0.75 * left_width


def test_warp_box_is_clipped_to_the_image_and_empty_when_off_it():
    face = fit.CANONICAL_FACE * 60 + (-500, -500)
    alpha, box = warped_alpha(face)
    assert alpha.size == 0 and (box[2] <= box[0] or box[3] <= box[1])


def test_delaunay_covers_the_hull_once_without_slivers_outside():
    points = np.random.default_rng(0).uniform(0, 100, (40, 2))
    triangles = fit.delaunay(points)
    corners = points[triangles]
    u, v = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
    areas = 0.5 * np.abs(u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0])
    hull = cv2.convexHull(points.astype(np.float32))
    assert areas.sum() == pytest.approx(cv2.contourArea(hull), rel=1e-4)
    # Delaunay: no point lies inside any triangle's circumcircle.
    for a, b, c in corners:
        d = 2 * (a[0] * (b[1] - c[1]) + b[0] * (c[1] - a[1]) + c[0] * (a[1] - b[1]))
        ux = ((a @ a) * (b[1] - c[1]) + (b @ b) * (c[1] - a[1]) + (c @ c) * (a[1] - b[1])) / d
        uy = ((a @ a) * (c[0] - b[0]) + (b @ b) * (a[0] - c[0]) + (c @ c) * (b[0] - a[0])) / d
        radius = np.hypot(a[0] - ux, a[1] - uy)
        assert (np.hypot(points[:, 0] - ux, points[:, 1] - uy) >= radius - 1e-6).all()


def test_eye_clearance_keeps_the_eyes_and_a_margin_free():
    face = fit.CANONICAL_FACE * 50 + (150, 100)
    keep = fit.eye_clearance(face, (0, 0, 300, 250))
    for point in face[36:48]:
        assert keep[int(round(point[1])), int(round(point[0]))] == 0.0
    below_eye = face[40] + (0, 0.1 * 50 + 3)  # just beyond the clearance under the left eye
    assert keep[int(below_eye[1]), int(below_eye[0])] > 0.5
    assert keep[int(face[30, 1]), int(face[30, 0])] == 1.0  # the nose tip may be covered


def test_bare_features_name_the_nose_and_mouth_points_a_mask_leaves_bare():
    face = fit.CANONICAL_FACE * 50 + (150, 100)
    box = (50, 100, 250, 250)  # from above the nose tip to below the chin
    alpha = np.ones((150, 200), np.float32)
    assert fit.bare_features(face, alpha, box, (300, 300)) == []
    mouth_left = face[48].round().astype(int)
    alpha[mouth_left[1] - 100 - 2:mouth_left[1] - 100 + 3, mouth_left[0] - 50 - 2:mouth_left[0] - 50 + 3] = 0.4
    assert fit.bare_features(face, alpha, box, (300, 300)) == [48]  # the left mouth corner alone
    alpha[:] = 1.0
    short = (50, 100, 250, int(face[57, 1]))  # the mask stops above the lower lip
    assert fit.bare_features(face, alpha[:short[3] - 100], short, (300, 300)) == [56, 57, 58]  # the lower lip's edge
    cut = (face.max(axis=0)[0] + face[:, 0].min()) / 2  # the picture's edge runs down the middle of the face
    on_picture = fit.bare_features(face, alpha[:, :int(cut) - 50], (50, 100, int(cut), 250), (300, int(cut)))
    assert on_picture == []  # the half of the mouth beyond the picture's edge is not judged
    off = fit.bare_features(face, np.zeros((0, 0), np.float32), (300, 300, 300, 300), (300, 300))
    assert off == fit.COVERED  # a mask that fell wholly off the picture covers nothing on it


def turned_face(squeeze: float, eye_distance: float = 50.0) -> np.ndarray:
    """The canonical face, its half with jaw points 0-7 squeezed to ``squeeze`` of its width."""
    face = fit.CANONICAL_FACE.copy()
    face[face[:, 0] < 0, 0] *= squeeze
    return face * eye_distance + (200, 150)


def value_at(field: np.ndarray, point: np.ndarray) -> float:
    return float(field[int(round(point[1])), int(round(point[0]))])


def test_side_widths_say_which_half_of_a_turned_face_looks_narrower():
    left, right = fit.side_widths(turned_face(0.5))
    assert left == pytest.approx(right * 0.5, rel=0.05)
    rolled = apply_affine(rotation(40, 1.0, (30, -20)), turned_face(0.5))
    np.testing.assert_allclose(fit.side_widths(rolled), (left, right), rtol=1e-6)


@pytest.mark.parametrize("squeeze", [1.0, 0.5])
def test_ear_loops_show_beside_a_side_facing_the_camera_and_not_beside_one_turned_away(squeeze):
    face = turned_face(squeeze)
    shown = fit.beside_the_face(face, (0, 0, 400, 320))
    past_left, past_right = (face[1] + (-0.3 * 50, 0)), (face[15] + (0.3 * 50, 0))  # where the loops meet the ears
    assert value_at(shown, past_right) == 1.0
    assert value_at(shown, past_left) == (1.0 if squeeze == 1.0 else 0.0)
    assert value_at(shown, face[1] + (-0.03 * 50, 0)) == 1.0  # the cloth standing off the cheek stays
    assert value_at(shown, face[30]) == 1.0
    # Under the chin the mask hangs past the jaw on both sides, whatever the turn.
    assert value_at(shown, face[8] + (-0.3 * 50, 0.2 * 50)) == 1.0


def test_a_side_turned_away_gets_a_wider_mask_edge_fading_at_chin_and_ear():
    face = turned_face(0.5)
    np.testing.assert_allclose(fit.side_facing(face), (0.0, 1.0))
    np.testing.assert_allclose(fit.side_facing(turned_face(0.8)), (0.5, 1.0))  # half turned: half the offset
    offsets = fit.far_edge_offsets(face)
    assert offsets[2:6] == pytest.approx([fit.FAR_EDGE] * 4)  # nose tip to mouth height
    assert offsets[0] == offsets[8] == 0.0 and not offsets[9:].any()  # the ear, the chin, the side facing us
    np.testing.assert_allclose(fit.far_edge_offsets(turned_face(0.8)), offsets / 2)
    assert not fit.far_edge_offsets(fit.CANONICAL_FACE).any()

    snug = fit.control_points(face)[len(fit.JAW + fit.BROWS + fit.NOSE + fit.EYES + fit.MOUTH_OUTER):][:17]
    reach = np.linalg.norm(snug - face[fit.JAW], axis=1) / fit.face_scale(face)
    np.testing.assert_allclose(reach, fit.SNUG_RING + offsets)
    # At the nose tip's height the widened edge shows past the outline, the ear loop beyond it not.
    shown = fit.beside_the_face(face, (0, 0, 400, 320))
    assert value_at(shown, face[2] + (-0.25 * 50, 0)) == 1.0
    assert value_at(shown, face[2] + (-0.4 * 50, 0)) == 0.0


def test_a_small_turned_face_keeps_its_whole_mask_inside_the_outline():
    face = turned_face(0.5, eye_distance=8.0)  # the stand-off is under a pixel here
    shown = fit.beside_the_face(face, (0, 0, 400, 320))
    for point in face[list(range(30, 36)) + list(range(48, 68))]:
        assert value_at(shown, point) == 1.0


def test_a_mask_pushed_up_over_the_eyes_is_cut_back_below_them():
    face = fit.CANONICAL_FACE * 60 + (200, 120)
    template = np.ones((220, 300, 4), np.float32)
    too_high = np.array([[100.0, 0.0, 150.0], [0.0, 100.0, 60.0]])  # canonical face 0.5 units too low on the PNG
    warped, (x0, y0, _, _) = fit.warp_template(fit.halvings(template), too_high, face, (400, 400))
    for x, y in face[36:48]:
        assert warped[int(round(y)) - y0, int(round(x)) - x0, 3] == 0.0
    nose = face[33]
    assert warped[int(nose[1]) - y0, int(nose[0]) - x0, 3] == 1.0


def test_a_side_squeezed_by_a_turned_head_reads_a_halved_template_and_does_not_speckle():
    """Read at full size through a strong squeeze, fine detail (an edge, a loop, a weave) aliases into
    specks of bare skin; a copy halved until it is squeezed at most 1.5:1 gives its average."""
    template = np.zeros((440, 600, 4), np.float32)
    template[20:420, 20:580] = 1.0
    template[:, 0:300:2] = 0.0  # 1-pixel stripes over the left half: half covered on average
    to_template = np.array([[200.0, 0.0, 300.0], [0.0, 200.0, 20.0]])
    face = turned_face(0.25)
    y0, y1, x0, x1 = int(face[31, 1]), int(face[5, 1]), int(face[4, 0]) + 2, int(face[31, 0]) - 2

    def far_cheek(template_at) -> np.ndarray:
        warped, box = fit.warp_template(template_at, to_template, face, (400, 400))
        return warped[y0 - box[1]:y1 - box[1], x0 - box[0]:x1 - box[0], 3]

    halved, full = far_cheek(fit.halvings(template)), far_cheek(lambda level: template)
    assert halved.size > 50
    np.testing.assert_allclose(halved, 0.5, atol=0.05)
    assert (full < 0.25).mean() > 0.2  # what the full-size copy gives there: specks


def test_largest_stretch_is_the_largest_singular_value():
    matrices = np.random.default_rng(0).normal(size=(200, 2, 2))
    matrices[0] = [[2.0, 0.0], [0.0, 0.0]]  # flat: one direction lost
    np.testing.assert_allclose(fit.largest_stretch(matrices), np.linalg.svd(matrices, compute_uv=False)[:, 0])

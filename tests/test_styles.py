"""Mask styles: loading, anchors from sidecars or from the alpha shape, and clear errors."""
import json

import cv2
import numpy as np
import pytest

from augment.draw_styles import STYLES, render_style
from augment.fit import CANONICAL_ANCHORS, CANONICAL_FACE, anchors_to_template
from augment.geometry import apply_affine
from augment.styles import (LOOP_FADE, LOOP_REACH, StyleError, body_tilt, derive_anchors, jaw_reach, load_style,
                            load_styles, mask_body, read_rgba)

from conftest import BUILTIN_STYLES, draw_flat_mask, draw_third_party_mask


def write_png(path, pixels):
    cv2.imwrite(str(path), pixels)


def test_builtin_styles_load_with_sidecar_anchors():
    styles, problems = load_styles([BUILTIN_STYLES])
    assert problems == []
    assert len(styles) >= 8
    assert {s.name for s in styles} == {s.name for s in STYLES}
    assert all(s.anchors_from == "sidecar" for s in styles)
    kinds = {s.name.split("_")[0] for s in styles}
    assert {"surgical", "kn95", "cloth"} <= kinds


def test_builtin_pngs_are_what_the_drawing_script_renders():
    """The committed PNGs are reproducible from the script (a changed script must re-render them)."""
    kinds = {recipe.kind: recipe for recipe in STYLES}
    for recipe in kinds.values():  # one of each construction
        rgba, sidecar = render_style(recipe)
        committed = cv2.cvtColor(cv2.imread(str(BUILTIN_STYLES / f"{recipe.name}.png"), cv2.IMREAD_UNCHANGED),
                                 cv2.COLOR_BGRA2RGBA)
        assert np.abs(committed.astype(int) - rgba.astype(int)).max() <= 1
        assert json.loads((BUILTIN_STYLES / f"{recipe.name}.json").read_text()) == sidecar


def test_builtin_sidecars_carry_the_drawing_scripts_weights():
    """The mix of styles a default run draws is the one the script states; weight 1 stays implicit."""
    styles = {style.name: style for style in load_styles([BUILTIN_STYLES])[0]}
    for recipe in STYLES:
        sidecar = json.loads((BUILTIN_STYLES / f"{recipe.name}.json").read_text())
        assert styles[recipe.name].weight == recipe.weight
        assert ("weight" in sidecar) == (recipe.weight != 1)
    weights = {recipe.weight for recipe in STYLES}
    assert 1 in weights and len(weights) > 1


def test_drawn_styles_have_texture_not_flat_colour():
    rgba, _ = render_style(STYLES[0])
    body = rgba[rgba[:, :, 3] == 255][:, :3].astype(float)
    assert body.std(axis=0).mean() > 4  # pleats, shading and fabric grain


def test_cloth_hem_darkens_the_edge_and_leaves_the_middle():
    from augment.draw_styles import PIXELS_PER_UNIT, SHAPES, canvas_size, fill, hem, outline

    body = outline(SHAPES["cloth"])
    size = canvas_size()
    coverage = fill(body, size)
    shading = hem(coverage, body, size)
    depth = cv2.distanceTransform((coverage > 0.5).astype(np.uint8), cv2.DIST_L2, 5) / PIXELS_PER_UNIT
    edge, stitched, middle = (depth > 0) & (depth < 0.015), (depth > 0.03) & (depth < 0.04), depth > 0.15
    assert shading[middle] == pytest.approx(1.0, abs=1e-3)
    assert edge.any() and shading[edge].mean() < 0.85  # the rim turns away from the light
    # Topstitching: dashes, so along the stitch line some pixels are much darker than others.
    assert shading[stitched].min() < 0.8 and shading[stitched].max() > 0.9


def test_cup_is_a_dome_lit_from_one_side_with_head_straps():
    """A moulded cup: its side away from the light darker than the side towards it, a rim seen as
    an edge, moulded rings round the lower face, a metal nose clip, and straps that leave its sides
    for the back of the head."""
    from augment.draw_styles import PIXELS_PER_UNIT, X_RANGE, Y_RANGE, body_outline, canvas_size, dome, fill

    cup = next(recipe for recipe in STYLES if recipe.kind == "cup")
    rgba, _ = render_style(cup)
    grey = rgba[:, :, :3].astype(float).mean(axis=2)

    def at(x, y):  # canonical units to PNG pixels
        return int(round((y - Y_RANGE[0]) * PIXELS_PER_UNIT)), int(round((x - X_RANGE[0]) * PIXELS_PER_UNIT))

    towards, away = grey[at(-0.35, 0.75)], grey[at(0.45, 1.55)]
    assert towards - away > 25
    assert grey[at(0.0, 1.07)] > away  # the middle of the shell faces the camera
    shading = dome(np.array([0.0, 0.0, 0.0]), np.array([1.07, 1.07 + 0.965 * 0.87, 1.07 + 0.93 * 0.87]))
    assert shading[1] < shading[0] - 0.1  # the groove of the rim ...
    assert shading[2] > shading[1]  # ... inside a raised flange
    # Rings: down the middle of the lower face the light rises and falls a few times; above the mouth it is smooth.
    below = dome(np.zeros(200), np.linspace(1.25, 1.8, 200))
    above = dome(np.zeros(200), np.linspace(0.45, 0.75, 200))
    turns = np.count_nonzero(np.diff(np.sign(np.diff(below))))
    assert turns >= 4 and np.count_nonzero(np.diff(np.sign(np.diff(above)))) < turns / 2
    # The nose clip: a grey band under the top edge, darker than the white shell beside it.
    assert grey[at(0.0, 0.31)] < grey[at(0.0, 0.45)] - 30
    # Straps beside the cup (outside its outline), on both sides, none hanging below the chin.
    inside = fill(body_outline("cup"), canvas_size()) > 0.5
    straps = (rgba[:, :, 3] > 128) & ~inside
    columns = np.flatnonzero(straps.any(axis=0))
    assert columns.min() < at(-1.1, 0)[1] and columns.max() > at(1.1, 0)[1]
    assert np.flatnonzero(straps.any(axis=1)).max() < at(0, 1.5)[0]


def test_a_black_surgical_mask_shows_its_pleats_by_their_glint():
    """On a black mask the dye shows nothing; the light caught along each of the three folds does."""
    from augment.draw_styles import PIXELS_PER_UNIT, X_RANGE, Y_RANGE

    black = next(recipe for recipe in STYLES if recipe.name == "surgical_black")
    grey = render_style(black)[0][:, :, :3].astype(float).mean(axis=2)
    column = int(round((0.3 - X_RANGE[0]) * PIXELS_PER_UNIT))
    rows = np.arange(int((0.35 - Y_RANGE[0]) * PIXELS_PER_UNIT), int((1.35 - Y_RANGE[0]) * PIXELS_PER_UNIT))
    down = grey[rows, column - 3:column + 4].mean(axis=1)  # down the mask, off its centre seam
    bright = down > np.median(down) + 15
    starts = np.flatnonzero(bright[1:] & ~bright[:-1])
    assert len(starts) == 3  # three bands, one per fold


def test_valved_styles_carry_a_grilled_disc_on_the_mask_and_their_twins_none():
    """An exhalation valve: a disc of the style's detail colour inside the mask, beside the mouth on
    a KN95 or foam mask and in front of it on a cup, its grille darker than its cap, its shadow on
    the mask below and right of it; the same style without a valve is plain there."""
    from augment.draw_styles import PIXELS_PER_UNIT, VALVE_CENTRE, VALVE_RADIUS, X_RANGE, Y_RANGE

    def at(x, y):
        return int(round((y - Y_RANGE[0]) * PIXELS_PER_UNIT)), int(round((x - X_RANGE[0]) * PIXELS_PER_UNIT))

    recipes = {recipe.name: recipe for recipe in STYLES}
    valved = [recipe for recipe in STYLES if recipe.valve]
    assert {recipe.kind for recipe in valved} == {"kn95", "cup", "sponge"}
    for recipe in valved:
        rgba, _ = render_style(recipe)
        twin, _ = render_style(recipes[recipe.name.removesuffix("_valve")])
        cx, cy = VALVE_CENTRE[recipe.kind]
        assert cx == 0.0 if recipe.kind == "cup" else cx > 0.3
        rim = rgba[at(cx - 0.6 * VALVE_RADIUS, cy - 0.6 * VALVE_RADIUS)][:3].astype(float)  # the cap, off the grille
        assert np.abs(rim - recipe.detail).max() < 50, recipe.name
        assert rgba[at(cx, cy)][3] == 255
        rows = [rgba[at(cx, cy + dy)][:3].astype(float).mean() for dy in np.linspace(-0.4, 0.4, 41) * VALVE_RADIUS]
        assert min(rows) < 0.8 * max(rows)  # dark slots across the cap
        below_right = at(cx + 0.75 * VALVE_RADIUS, cy + 0.9 * VALVE_RADIUS)
        assert rgba[below_right][:3].astype(float).mean() < 0.97 * twin[below_right][:3].astype(float).mean()
        assert np.abs(twin[at(cx, cy)][:3].astype(float) - recipe.colour).max() < 60  # no valve on the twin


def test_ear_loops_end_just_past_the_face_outline():
    """Seen from the front a loop runs back to the ear: it shows only a little way past the jaw,
    not as a handle standing out beside the face."""
    from augment.draw_styles import CORD_WIDTH, PIXELS_PER_UNIT, X_RANGE
    from augment.fit import CANONICAL_FACE

    outline = np.abs(CANONICAL_FACE[[0, 1, 15, 16], 0]).max()  # the jaw at the ears' height
    for recipe in {recipe.kind: recipe for recipe in STYLES if recipe.kind != "cup"}.values():
        rgba, _ = render_style(recipe)
        columns = np.flatnonzero((rgba[:, :, 3] > 64).any(axis=0)) / PIXELS_PER_UNIT + X_RANGE[0]
        reach = np.array([-columns.min(), columns.max()]) - outline
        assert (reach > 0.02).all(), recipe.name  # the loops are there ...
        assert (reach < 0.1 + CORD_WIDTH[recipe.kind] / 2).all(), recipe.name  # ... and end at the ear


def test_foam_masks_have_wide_shaded_straps_of_their_own_colour_and_a_centre_seam():
    """A foam mask's ear straps are bands cut from the same sheet: far wider than a cloth mask's
    cords, of the mask's hue but darker (they face the ears); the moulded seam runs down its middle."""
    from augment.draw_styles import X_RANGE, Y_RANGE, PIXELS_PER_UNIT, body_outline, canvas_size, fill

    def straps_and_front(recipe):
        """Width of each strap (canonical units), its mean colour, the front's median colour, the render."""
        rgba, _ = render_style(recipe)
        inside = fill(body_outline(recipe.kind), canvas_size()) > 0.01
        # The straps cross the row at 0.6 below the eyes on either side of the mask, once each.
        row = int(round((0.6 - Y_RANGE[0]) * PIXELS_PER_UNIT))
        strap = (rgba[row, :, 3] > 128) & ~inside[row]
        front = np.median(rgba[rgba[:, :, 3] == 255][:, :3].astype(float), axis=0)
        return strap.sum() / 2 / PIXELS_PER_UNIT, rgba[row, strap, :3].astype(float).mean(axis=0), front, rgba

    cloth = next(recipe for recipe in STYLES if recipe.kind == "cloth" and recipe.colour[0] > 80)
    cloth_width = straps_and_front(cloth)[0]
    foams = [recipe for recipe in STYLES if recipe.kind == "sponge"]
    assert any(recipe.colour[2] > recipe.colour[0] + 20 for recipe in foams)  # a coloured one tests the hue
    for recipe in foams:
        width, strap, front, rgba = straps_and_front(recipe)
        assert width > 3 * cloth_width
        shade = strap / front
        assert 0.45 < shade.mean() < 0.75 and np.ptp(shade) < 0.1, recipe.name
        if front.min() < 40:
            continue  # a seam in black foam is too dark to tell from the foam around it
        row, centre = int(round((1.2 - Y_RANGE[0]) * PIXELS_PER_UNIT)), int(round(-X_RANGE[0] * PIXELS_PER_UNIT))
        across = rgba[row - 2:row + 3, centre - 15:centre + 16, :3].astype(float).mean(axis=(0, 2))  # 5 rows
        assert across[13:18].min() < np.r_[across[:8], across[-8:]].mean() - 4, recipe.name  # the seam


def test_prints_show_each_of_their_colours_in_patches():
    """Gingham, camouflage and triangles: every colour of the recipe covers a good part of the mask, in
    patches (neighbouring pixels mostly share one), not as a blend or a speckle."""
    for pattern in ("gingham", "camouflage", "triangles"):
        recipe = next(recipe for recipe in STYLES if recipe.pattern == pattern)
        rgba, _ = render_style(recipe)
        colours = [recipe.colour, recipe.accent] + ([recipe.detail] if pattern != "gingham" else [])
        if pattern == "gingham":  # a band one way only is the two colours half and half
            colours.append(tuple((np.array(recipe.colour) + np.array(recipe.accent)) / 2))
        distances = np.stack([np.linalg.norm(rgba[:, :, :3].astype(float) - colour, axis=2) for colour in colours])
        nearest = np.argmin(distances, axis=0)
        body = rgba[:, :, 3] == 255
        shares = np.bincount(nearest[body], minlength=len(colours)) / body.sum()
        assert shares.min() > 0.08, (pattern, shares)
        same_as_right = (nearest[:, :-1] == nearest[:, 1:])[body[:, :-1] & body[:, 1:]]
        assert same_as_right.mean() > 0.85, pattern


def test_fingerprint_follows_the_look_not_the_weight():
    from dataclasses import replace

    from augment.styles import fingerprint

    style = load_style(BUILTIN_STYLES / "surgical_blue.png")
    assert fingerprint(style) == fingerprint(load_style(BUILTIN_STYLES / "surgical_blue.png"))
    assert fingerprint(replace(style, weight=style.weight + 1)) == fingerprint(style)
    assert fingerprint(replace(style, creases=0.5)) != fingerprint(style)
    moved = {**style.anchors, "top": (style.anchors["top"][0], style.anchors["top"][1] + 1)}
    assert fingerprint(replace(style, anchors=moved)) != fingerprint(style)
    repainted = style.rgba.copy()
    repainted[200, 290, 0] ^= 1
    assert fingerprint(replace(style, rgba=repainted)) != fingerprint(style)


def test_derived_anchors_ignore_ear_loops(tmp_path):
    draw_third_party_mask(tmp_path / "web.png")
    style = load_style(tmp_path / "web.png")
    assert style.anchors_from == "alpha"
    anchors = style.anchors
    assert anchors["top"][0] == pytest.approx(210, abs=3)
    assert anchors["top"][1] == pytest.approx(60, abs=3)
    assert anchors["bottom"][1] == pytest.approx(270, abs=3)
    # The body spans x 50..370; the loops reach out to ~2 and ~418.
    assert 45 <= anchors["left"][0] <= 60 and 360 <= anchors["right"][0] <= 375


def test_derived_anchors_span_a_mask_drawn_as_two_panels_with_a_transparent_seam(tmp_path):
    """A two-panel mask whose centre seam is left transparent is one mask, not its larger half."""
    draw_third_party_mask(tmp_path / "seam.png")
    rgba = cv2.imread(str(tmp_path / "seam.png"), cv2.IMREAD_UNCHANGED)
    rgba[:, 208:211, 3] = 0  # two panels, apart by 3 px down the whole height
    write_png(tmp_path / "seam.png", rgba)
    anchors = load_style(tmp_path / "seam.png").anchors
    assert anchors["top"][1] == pytest.approx(60, abs=3) and anchors["bottom"][1] == pytest.approx(270, abs=3)
    assert 45 <= anchors["left"][0] <= 60 and 360 <= anchors["right"][0] <= 375


@pytest.mark.parametrize("degrees", [15.0, -8.0])
def test_a_mask_turned_in_its_picture_gets_anchors_turned_with_it(tmp_path, degrees):
    """A web PNG of a mask lying at an angle is worn upright: its anchors are the upright mask's,
    turned as the mask is."""
    draw_third_party_mask(tmp_path / "web.png")
    rgba = cv2.imread(str(tmp_path / "web.png"), cv2.IMREAD_UNCHANGED)
    rgba = cv2.copyMakeBorder(rgba, 80, 80, 80, 80, cv2.BORDER_CONSTANT, value=(0, 0, 0, 0))
    upright = derive_anchors(rgba[:, :, 3])
    turn = cv2.getRotationMatrix2D((rgba.shape[1] / 2, rgba.shape[0] / 2), degrees, 1.0)
    turned = cv2.warpAffine(rgba, turn, rgba.shape[1::-1], flags=cv2.INTER_LINEAR)
    assert body_tilt(mask_body(turned[:, :, 3])) == pytest.approx(degrees, abs=0.5)
    anchors = derive_anchors(turned[:, :, 3])
    for name, point in upright.items():
        assert np.linalg.norm(apply_affine(turn, np.array([point]))[0] - anchors[name]) < 5, name


def test_an_upright_or_round_mask_is_not_turned():
    disc = np.zeros((200, 200), np.uint8)
    cv2.circle(disc, (100, 100), 80, 255, -1)
    wide = np.zeros((200, 300), np.uint8)
    cv2.ellipse(wide, (150, 100), (130, 70), 1.0, 0, 360, 255, -1)  # turned less than is worth mending
    assert body_tilt(disc > 0) == 0.0 and body_tilt(wide > 0) == 0.0
    for style in load_styles([BUILTIN_STYLES])[0]:
        assert body_tilt(mask_body(style.rgba[:, :, 3])) == 0.0, style.name


def test_an_alpha_of_two_separate_masks_is_reported_not_halved(tmp_path):
    rgba = np.zeros((300, 640, 4), np.uint8)
    for centre in (150, 490):
        cv2.ellipse(rgba, (centre, 150), (130, 110), 0, 0, 360, (200, 120, 40, 255), -1)
    write_png(tmp_path / "pair.png", rgba)
    with pytest.raises(StyleError, match=r"pair\.png: the alpha holds 2 separate shapes of similar size"):
        load_style(tmp_path / "pair.png")
    # Detached ear loops are far smaller than the body: still one mask.
    draw_third_party_mask(tmp_path / "loops.png", with_loops=False)
    rgba = cv2.imread(str(tmp_path / "loops.png"), cv2.IMREAD_UNCHANGED)
    for centre in (20, 400):
        cv2.ellipse(rgba, (centre, 120), (14, 60), 0, 0, 360, (240, 240, 240, 255), 3)
    write_png(tmp_path / "loops.png", rgba)
    assert load_style(tmp_path / "loops.png").anchors["left"][0] == pytest.approx(50, abs=5)


def test_derived_anchors_match_the_canonical_layout_of_a_drawn_style():
    """For a built-in style, anchors from its alpha land close to the exact ones in its sidecar."""
    style = load_style(BUILTIN_STYLES / "surgical_blue.png")
    derived = derive_anchors(style.rgba[:, :, 3])
    exact = anchors_to_template(style.anchors)
    approx = anchors_to_template(derived)
    corners = np.array([(-1, 0.3), (1, 0.3), (0, 1.8)])
    assert np.abs(apply_affine(exact, corners) - apply_affine(approx, corners)).max() < 0.12 * style.rgba.shape[1]


def reach_past_the_jaw(rgba, anchors, body=True):
    """How far (eye distances) the style's body (or, with ``body`` False, anything of it) reaches past
    ``jaw_reach`` at its worst height, as its anchors place it."""
    to_canonical = cv2.invertAffineTransform(anchors_to_template(anchors))
    rows, columns = np.nonzero(mask_body(rgba[:, :, 3]) if body else rgba[:, :, 3] > 0)
    points = apply_affine(to_canonical, np.stack([columns + 0.5, rows + 0.5], axis=1))
    heights, reach = jaw_reach()
    return float((np.abs(points[:, 0]) - np.interp(points[:, 1], heights, reach, right=0.0)).max())


def test_a_flat_mask_is_narrowed_to_wrap_round_the_jaw(tmp_path):
    draw_flat_mask(tmp_path / "flat.png")
    drawn = read_rgba(tmp_path / "flat.png")
    style = load_style(tmp_path / "flat.png")
    assert style.narrowed and style.anchors_from == "alpha"
    assert reach_past_the_jaw(drawn, style.anchors) > 0.5  # as drawn, its corners stand out beside the chin
    assert reach_past_the_jaw(style.rgba, style.anchors) < 0.05
    # Its loops, laid out flat beside it, end where loops go behind the ears; their roots stay.
    assert reach_past_the_jaw(drawn, style.anchors, body=False) > 0.3
    assert reach_past_the_jaw(style.rgba, style.anchors, body=False) < LOOP_REACH + LOOP_FADE
    assert ((style.rgba[:, :, 3] > 0) & ~mask_body(style.rgba[:, :, 3])).sum() > 50
    # Where the jaw leaves room (the cheeks) the body keeps its width, and it still goes under the chin.
    cheeks, left, right = round(style.anchors["left"][1]), round(style.anchors["left"][0]), round(style.anchors["right"][0])
    assert np.abs(style.rgba[cheeks, left:right].astype(int) - drawn[cheeks, left:right]).max() <= 1
    bottom_x, bottom_y = (round(v) for v in style.anchors["bottom"])
    assert style.rgba[bottom_y - 3, bottom_x, 3] == 255


def test_a_sidecar_keeps_a_style_as_drawn_with_follow_jaw_false(tmp_path):
    draw_flat_mask(tmp_path / "bandana.png")
    (tmp_path / "bandana.json").write_text(json.dumps({"follow_jaw": False}))
    style = load_style(tmp_path / "bandana.png")
    assert not style.narrowed and np.array_equal(style.rgba, read_rgba(tmp_path / "bandana.png"))
    (tmp_path / "bandana.json").write_text(json.dumps({"follow_jaw": "no"}))
    with pytest.raises(StyleError, match=r"bandana\.png: \"follow_jaw\" must be true or false"):
        load_style(tmp_path / "bandana.png")


def test_built_in_styles_are_drawn_for_the_face_and_not_narrowed():
    for path in sorted(BUILTIN_STYLES.glob("*.png")):
        style = load_style(path)
        assert not style.narrowed and np.array_equal(style.rgba, read_rgba(path)), path.name


def test_a_narrowed_flat_mask_worn_leaves_the_air_beside_the_chin_clear(tmp_path):
    from dataclasses import replace

    from augment.blend import MaskParams, placed_mask

    draw_flat_mask(tmp_path / "flat.png")
    narrowed = load_style(tmp_path / "flat.png")
    as_drawn = replace(narrowed, rgba=read_rgba(tmp_path / "flat.png"))
    face = CANONICAL_FACE * 60 + (200, 120)
    beside_chin = np.round(np.array([(-0.8, 1.75), (0.8, 1.75)]) * 60 + (200, 120)).astype(int)
    for style, expected in ((as_drawn, True), (narrowed, False)):
        warped, (x0, y0, _, _) = placed_mask((400, 400, 3), face, style, MaskParams(style.name))
        alpha = warped[beside_chin[:, 1] - y0, beside_chin[:, 0] - x0, 3]
        assert bool((alpha > 0.5).all()) is expected, style.narrowed


def test_a_large_style_is_reduced_as_it_loads_and_worn_as_before(tmp_path, monkeypatch):
    from augment import styles as styles_module
    from augment.blend import MaskParams, placed_mask

    original = load_style(BUILTIN_STYLES / "kn95_white.png")
    monkeypatch.setattr(styles_module, "MAX_STYLE_SIDE", 400)
    for suffix in (".png", ".json"):  # the sidecar's anchors are in the large PNG's pixels
        (tmp_path / f"kn95_white{suffix}").write_bytes((BUILTIN_STYLES / f"kn95_white{suffix}").read_bytes())
    small = load_style(tmp_path / "kn95_white.png")
    assert max(small.rgba.shape[:2]) == 400 and small.anchors_from == "sidecar"
    assert small.reduced_from == (original.rgba.shape[1], original.rgba.shape[0]) and original.reduced_from is None
    factor = 400 / max(original.rgba.shape[:2])
    for name, (x, y) in original.anchors.items():
        assert small.anchors[name] == pytest.approx((x * factor, y * factor), abs=0.5)
    face = CANONICAL_FACE * 60 + (200, 120)
    covered = []
    for style in (original, small):
        warped, (x0, y0, x1, y1) = placed_mask((400, 400, 3), face, style, MaskParams(style.name))
        on_picture = np.zeros((400, 400), bool)
        on_picture[y0:y1, x0:x1] = warped[:, :, 3] > 0.5
        covered.append(on_picture)
    assert (covered[0] & covered[1]).sum() / (covered[0] | covered[1]).sum() > 0.98


def test_mask_body_of_an_empty_alpha_is_empty():
    assert not mask_body(np.zeros((40, 40), np.uint8)).any()


@pytest.mark.parametrize("make, message", [
    (lambda p: write_png(p, np.full((50, 50, 3), 200, np.uint8)), "no alpha channel"),
    (lambda p: write_png(p, np.zeros((50, 50, 4), np.uint8)), "alpha channel is empty"),
    (lambda p: p.write_text("not a png"), "not a readable image"),
    (lambda p: write_png(p, np.full((8, 8, 4), 255, np.uint8)), "at least 16 px"),
    (lambda p: write_png(p, np.full((50, 50, 4), 255, np.uint8)), "opaque everywhere"),
])
def test_bad_style_files_name_the_file_and_the_reason(tmp_path, make, message):
    path = tmp_path / "bad.png"
    make(path)
    with pytest.raises(StyleError, match=message) as error:
        load_style(path)
    assert str(path) in str(error.value)


def test_a_broken_png_is_reported_in_one_line_with_nothing_else_on_the_terminal(tmp_path, capfd):
    draw_third_party_mask(tmp_path / "web.png")
    whole = (tmp_path / "web.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(whole[:len(whole) // 2])
    (tmp_path / "junk.png").write_bytes(whole[:8] + b"no chunks")
    for name in ("cut.png", "junk.png"):
        with pytest.raises(StyleError, match=f"{name}: not a readable image$"):
            load_style(tmp_path / name)
    assert capfd.readouterr().err == ""  # OpenCV, asked alone, prints its own complaint there


def test_a_webp_with_alpha_in_a_styles_folder_is_a_style_as_its_png_is(tmp_path):
    bgra = cv2.cvtColor(read_rgba(BUILTIN_STYLES / "surgical_blue.png"), cv2.COLOR_RGBA2BGRA)
    write_png(tmp_path / "blue.png", bgra)
    (tmp_path / "folder").mkdir()
    cv2.imwrite(str(tmp_path / "folder" / "blue.webp"), bgra, [cv2.IMWRITE_WEBP_QUALITY, 101])  # lossless
    [webp], problems = load_styles([tmp_path / "folder"])
    png = load_style(tmp_path / "blue.png")
    assert problems == [] and webp.name == "blue"
    assert webp.anchors == png.anchors and np.array_equal(webp.rgba[..., 3], png.rgba[..., 3])


def test_other_pictures_in_a_styles_folder_are_reported_not_passed_over(tmp_path):
    draw_third_party_mask(tmp_path / "web.png")
    write_png(tmp_path / "photo.jpg", np.full((50, 50, 3), 200, np.uint8))
    (tmp_path / "notes.txt").write_text("where the masks came from")
    (tmp_path / "._web.png").write_bytes(b"\x00\x05\x16\x07")  # what a Mac leaves beside a file copied off it
    styles, problems = load_styles([tmp_path])
    assert [style.name for style in styles] == ["web"]
    assert problems == [f"{tmp_path / 'photo.jpg'}: a JPG file cannot be a mask style; save it as a PNG (or WebP) "
                        "with transparency"]


def test_a_style_that_would_leave_a_frontal_face_s_nose_or_mouth_bare_is_reported(tmp_path):
    builtin = load_style(BUILTIN_STYLES / "surgical_blue.png")
    cut = cv2.cvtColor(builtin.rgba, cv2.COLOR_RGBA2BGRA)
    cut[: int(0.45 * cut.shape[0]), :, 3] = 0  # a band worn under the nose: its top half cut away
    write_png(tmp_path / "chin_band.png", cut)
    (tmp_path / "chin_band.json").write_text(json.dumps({"anchors": builtin.anchors}))
    with pytest.raises(StyleError, match=r"chin_band.png: worn as its anchors place it, the mask leaves \d+ of a "
                                         r"frontal face's 26 nose-tip and mouth landmarks bare"):
        load_style(tmp_path / "chin_band.png")
    # Without a sidecar too: a PNG with a window where the mouth goes (its anchors come from its outline).
    window = cv2.cvtColor(builtin.rgba, cv2.COLOR_RGBA2BGRA)
    mouth = apply_affine(anchors_to_template(derive_anchors(window[:, :, 3])), CANONICAL_FACE[48:60])
    cv2.fillPoly(window, [np.round(mouth).astype(np.int32)], (0, 0, 0, 0))
    write_png(tmp_path / "window.png", window)
    with pytest.raises(StyleError, match=r"window.png: .* leaves \d+ of a frontal face's 26"):
        load_style(tmp_path / "window.png")


@pytest.mark.parametrize("sidecar, message", [
    ("{not json", "unreadable sidecar"),
    ('{"anchors": {"top": [10, 10]}}', "miss bottom, left, right"),
    ('{"anchors": {"top": [10, 10], "bottom": [10, 90], "left": [0, 50], "right": [999, 50]}}', "outside"),
    ('{"anchors": {"top": [10, 90], "bottom": [10, 10], "left": [0, 50], "right": [90, 50]}}', "above"),
    ('{"anchors": {"top": "x", "bottom": [10, 90], "left": [0, 50], "right": [90, 50]}}', "numbers"),
])
def test_bad_sidecars_are_reported(tmp_path, sidecar, message):
    square = np.full((100, 100, 4), 255, np.uint8)
    square[:, :, 3] = np.pad(np.full((98, 98), 255, np.uint8), 1)  # transparent around
    write_png(tmp_path / "m.png", square)
    (tmp_path / "m.json").write_text(sidecar)
    with pytest.raises(StyleError, match=message):
        load_style(tmp_path / "m.png")


def test_a_sidecar_may_give_only_a_weight(tmp_path):
    draw_third_party_mask(tmp_path / "web.png")
    derived = load_style(tmp_path / "web.png")
    (tmp_path / "web.json").write_text('{"weight": 3}')
    weighted = load_style(tmp_path / "web.png")
    assert (derived.weight, weighted.weight) == (1, 3)
    assert weighted.anchors_from == "alpha" and weighted.anchors == derived.anchors


@pytest.mark.parametrize("key, value, message", [
    *(("weight", value, '"weight" must be a whole number from 1 to 1000')
      for value in ("0", "-1", "1.5", '"3"', "true", "1001", "null")),
    *(("creases", value, '"creases" must be a number from 0 to 1') for value in ("-0.1", "1.5", '"1"', "true", "null")),
])
def test_a_sidecar_value_out_of_its_range_is_reported(tmp_path, key, value, message):
    draw_third_party_mask(tmp_path / "web.png")
    (tmp_path / "web.json").write_text(f'{{"{key}": {value}}}')
    with pytest.raises(StyleError, match=message) as error:
        load_style(tmp_path / "web.png")
    assert str(tmp_path / "web.png") in str(error.value)


def test_a_sidecar_may_say_how_deeply_the_mask_creases(tmp_path):
    draw_third_party_mask(tmp_path / "web.png")
    assert load_style(tmp_path / "web.png").creases == 1.0
    (tmp_path / "web.json").write_text('{"creases": 0}')
    rigid = load_style(tmp_path / "web.png")
    assert rigid.creases == 0.0 and rigid.anchors_from == "alpha" and rigid.weight == 1
    builtin = {style.name: style for style in load_styles([BUILTIN_STYLES])[0]}
    assert (builtin["cup_white"].creases, builtin["kn95_white"].creases, builtin["cloth_grey"].creases) == (0, 0.5, 1)


@pytest.mark.parametrize("sidecar", ["{}", "[1, 2]", '{"anchor": {}}'])
def test_a_sidecar_with_neither_anchors_nor_weight_is_reported(tmp_path, sidecar):
    draw_third_party_mask(tmp_path / "web.png")
    (tmp_path / "web.json").write_text(sidecar)
    with pytest.raises(StyleError, match='needs "anchors"'):
        load_style(tmp_path / "web.png")


def test_load_styles_keeps_good_files_and_reports_bad_ones(tmp_path, styles_dir):
    write_png(styles_dir / "broken.png", np.full((50, 50, 3), 200, np.uint8))
    other = tmp_path / "more"
    other.mkdir()
    draw_third_party_mask(other / "surgical_blue.png")  # same name as a style already loaded
    styles, problems = load_styles([styles_dir, other])
    assert sorted(s.name for s in styles) == ["cloth_black", "surgical_blue"]
    assert any("broken.png" in p and "no alpha" in p for p in problems)
    assert any("already loaded" in p for p in problems)


def test_styles_loaded_side_by_side_come_back_in_file_order(tmp_path):
    for name in ("a", "c", "e", "g"):
        draw_third_party_mask(tmp_path / f"{name}.png")
    for name in ("b", "d", "f"):
        write_png(tmp_path / f"{name}.png", np.full((50, 50, 3), 200, np.uint8))  # no alpha
    styles, problems = load_styles([tmp_path])
    assert [style.name for style in styles] == ["a", "c", "e", "g"]
    assert [problem.split(":")[0] for problem in problems] == [str(tmp_path / f"{name}.png") for name in "bdf"]


def test_missing_style_folder_or_file_is_an_error(tmp_path):
    with pytest.raises(StyleError, match="nope: no such folder or picture"):
        load_styles([tmp_path / "nope"])
    (tmp_path / "notes.txt").write_text("a mask")
    with pytest.raises(StyleError, match="notes.txt: neither a folder of mask styles nor a mask picture"):
        load_styles([tmp_path / "notes.txt"])


def test_styles_load_from_folders_and_single_pictures_alike(tmp_path, styles_dir):
    draw_third_party_mask(tmp_path / "web.png")
    write_png(tmp_path / "photo.jpg", np.full((50, 50, 3), 200, np.uint8))  # named itself: reported, not passed over
    styles, problems = load_styles([styles_dir, tmp_path / "web.png", tmp_path / "photo.jpg"])
    assert [s.name for s in styles] == ["cloth_black", "surgical_blue", "web"]
    assert len(problems) == 1 and problems[0].startswith(str(tmp_path / "photo.jpg"))


def test_canonical_anchor_names_are_complete():
    assert set(CANONICAL_ANCHORS) == {"top", "bottom", "left", "right"}

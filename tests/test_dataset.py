"""The dataset's making: naming, splits, seeding, random parameters, input listing, input stamps,
large photos."""
import functools
import os
from collections import Counter
from dataclasses import replace

import cv2
import numpy as np
import pytest

from augment import dataset, images
from augment.blend import face_side_light
from augment.demo import astronaut
from augment.faces import face_box, find_faces
from augment.images import load_rgb, save_rgb
from augment.styles import load_styles

from conftest import BUILTIN_STYLES, PROJECT


def test_output_stems_are_flat_and_unique():
    stems = dataset.output_stems(["a.jpg", "a.png", "sub/b.jpg", "c.jpeg"])
    assert stems == {"a.jpg": "a-jpg", "a.png": "a-png", "sub/b.jpg": "sub__b", "c.jpeg": "c"}
    assert len(set(stems.values())) == 4


@pytest.mark.parametrize("sources", [
    ["a__b.jpg", "a/b.jpg"],  # the same name once flattened
    ["a-jpg.png", "a.jpg", "a.png"],  # a plain name that is another's name with its suffix
    ["x.tar.jpg", "x-tar.jpg", "x.tar.png", "x/tar.jpg", "x__tar.png"],
])
def test_output_stems_never_give_two_inputs_one_name(sources):
    stems = dataset.output_stems(sources)
    assert len(set(stems.values())) == len(sources)
    assert all("/" not in stem for stem in stems.values())
    assert dataset.output_stems(list(reversed(sources))) == stems  # whatever the order they come in


def test_split_is_per_source_stable_and_roughly_80_10_10():
    sources = [f"person_{i}.jpg" for i in range(3000)]
    splits = Counter(dataset.split_of(s) for s in sources)
    assert set(splits) == {"train", "val", "test"}
    assert abs(splits["train"] / 3000 - 0.8) < 0.03
    assert abs(splits["val"] / 3000 - 0.1) < 0.02
    assert [dataset.split_of(s) for s in sources[:50]] == [dataset.split_of(s) for s in sources[:50]]


def test_face_rng_depends_on_seed_source_and_face_only():
    draw = lambda *key: dataset.face_rng(*key).random()
    assert draw(0, "a.jpg", 0) == draw(0, "a.jpg", 0)
    assert len({draw(0, "a.jpg", 0), draw(1, "a.jpg", 0), draw(0, "b.jpg", 0), draw(0, "a.jpg", 1)}) == 4


def test_random_parameters_stay_in_their_ranges_and_every_style_is_drawn():
    styles, _ = load_styles([BUILTIN_STYLES])
    params = [dataset.draw_params(np.random.default_rng(i), "any") for i in range(400)]
    assert all(-0.07 <= p.shift <= 0.07 and 0.96 <= p.width <= 1.06 for p in params)
    assert all(0.2 <= p.shadow <= 0.45 and all(0.5 < t < 2.0 for t in p.tint) for p in params)
    assert {dataset.draw_style(0, f"{i}.jpg", 0, styles).name for i in range(400)} == {s.name for s in styles}


def test_styles_are_drawn_as_often_as_their_weights_say_whatever_their_order():
    styles, _ = load_styles([BUILTIN_STYLES])
    heavy, light = replace(styles[0], weight=3), replace(styles[1], weight=1)
    drawn = [dataset.draw_style(0, f"{i}.jpg", i % 3, [heavy, light]).name for i in range(4000)]
    assert abs(drawn.count(heavy.name) / 4000 - 0.75) < 0.03 and drawn.count(light.name) > 900
    assert drawn == [dataset.draw_style(0, f"{i}.jpg", i % 3, [light, heavy]).name for i in range(4000)]
    assert drawn != [dataset.draw_style(1, f"{i}.jpg", i % 3, [heavy, light]).name for i in range(4000)]


def test_a_style_added_removed_or_reweighted_changes_only_the_faces_that_take_or_lose_it():
    """So a folder made before is brought up to date by making those faces again."""
    styles, _ = load_styles([BUILTIN_STYLES])
    faces = [(f"{i}.jpg", i % 2) for i in range(3000)]

    def worn(style_list: list) -> list[str]:
        return [dataset.draw_style(7, source, index, style_list).name for source, index in faces]

    before, fewer = worn(styles), worn(styles[1:])
    changed = [old != new for old, new in zip(before, fewer)]
    assert changed == [old == styles[0].name for old in before]  # removed: exactly its wearers move
    heavier = worn([replace(styles[0], weight=styles[0].weight * 3), *styles[1:]])
    assert all(new == old or new == styles[0].name for old, new in zip(before, heavier))
    assert heavier.count(styles[0].name) > 2 * before.count(styles[0].name) > 0


def test_list_inputs_finds_images_recursively_and_skips_others(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / ".thumbnails").mkdir()
    for name in ("b.JPG", "a.png", "sub/c.webp", "notes.txt", ".hidden.jpg", ".thumbnails/a.png"):
        (tmp_path / name).write_bytes(b"x")
    found, problems = dataset.list_inputs(tmp_path)
    assert found == ["a.png", "b.JPG", "sub/c.webp"]
    assert problems == []


def test_list_inputs_follows_links_to_folders_but_not_round_a_loop(tmp_path):
    raw, elsewhere = tmp_path / "raw", tmp_path / "collection"
    (raw / "sub").mkdir(parents=True)
    elsewhere.mkdir()
    for path in (raw / "a.png", raw / "sub" / "b.png", elsewhere / "c.jpg"):
        path.write_bytes(b"x")
    (raw / "linked").symlink_to(elsewhere)
    (raw / "sub" / "up").symlink_to(raw)  # a loop
    (raw / "again").symlink_to(raw / "sub")  # a folder listed already
    found, problems = dataset.list_inputs(raw)
    assert found == ["a.png", "linked/c.jpg", "sub/b.png"]
    assert problems == []


def test_list_inputs_reports_a_directory_it_cannot_read(tmp_path, monkeypatch):
    def refuse(path, onerror=None, **_):
        onerror(PermissionError(13, "Permission denied", str(tmp_path / "locked")))
        return iter([(str(tmp_path), [], ["a.jpg"])])

    monkeypatch.setattr(os, "walk", refuse)
    found, problems = dataset.list_inputs(tmp_path)
    assert found == ["a.jpg"]
    assert problems == [{"path": str(tmp_path / "locked"), "reason": "cannot read directory: Permission denied"}]


def test_input_stamp_is_size_and_modification_time_or_none(tmp_path):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"12345")
    os.utime(photo, ns=(1_000, 2_000))
    assert dataset.input_stamp(photo) == [5, 2_000]
    assert dataset.input_stamp(tmp_path / "missing.jpg") is None


def _made(tmp_path, monkeypatch, picture: np.ndarray) -> tuple[dataset.ImageResult, int]:
    """``picture`` saved as a JPEG and put through ``process_image`` with the built-in styles: the
    result, and how often the photo was decoded in full."""
    raw, out = tmp_path / "raw", tmp_path / "out"
    save_rgb(raw / "photo.jpg", picture)
    full_decodes = []
    monkeypatch.setattr(dataset, "load_rgb", lambda path: full_decodes.append(path) or load_rgb(path))
    styles = {style.name: style for style in load_styles([BUILTIN_STYLES])[0]}
    result = dataset.process_image(raw, out, "photo.jpg", "photo", dataset.Settings(styles=tuple(sorted(styles))), styles)
    return result, len(full_decodes)


def _astronaut(zoom: float, canvas: int | None = None) -> np.ndarray:
    """The astronaut enlarged ``zoom`` times, alone or in the corner of a grey square ``canvas`` px wide."""
    face = cv2.resize(astronaut(), None, fx=zoom, fy=zoom, interpolation=cv2.INTER_CUBIC)
    picture = face if canvas is None else np.full((canvas, canvas, 3), 90, np.uint8)
    picture[:face.shape[0], :face.shape[1]] = face
    return picture


@pytest.mark.parametrize("zoom, canvas, full_decodes", [
    (4, None, 0),  # a face of ~390 px in 2048: its crop from the 1024-px decode still has over 512 px
    (2.5, 2000, 1),  # ~240 px in 2000: from the 1000-px decode its crop would have ~360 px
])
def test_a_large_jpeg_is_decoded_in_full_only_when_a_crop_needs_it(tmp_path, monkeypatch, zoom, canvas, full_decodes):
    picture = _astronaut(zoom, canvas)
    result, decoded = _made(tmp_path, monkeypatch, picture)
    assert decoded == full_decodes and result.skipped is None and len(result.records) == 2
    record = next(r for r in result.records if r["label"] == "with_mask")
    crop = load_rgb(tmp_path / "out" / record["path"])
    assert max(crop.shape[:2]) == 512  # the full --size, as from the whole photo
    # Box and crop are given in the photo's own pixels, where the face is.
    truth = face_box(find_faces(picture)[0].landmarks)
    side = truth[2] - truth[0]
    assert np.abs(np.subtract(record["source_box"], truth)).max() < 0.06 * side
    x0, y0, x1, y1 = record["crop"]
    assert x0 <= truth[0] and y0 <= max(truth[1], 0) and x1 >= truth[2] and y1 >= truth[3]
    assert max(x1 - x0, y1 - y0) > 2.5 * side


def test_a_jpeg_over_the_pixel_limit_is_made_from_a_reduced_copy_or_skipped_naming_its_size(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "MAX_PIXELS", 3_000_000)  # the 50-megapixel rule on photos a test can make
    result, _ = _made(tmp_path / "large_face", monkeypatch, _astronaut(4))  # 4.2 megapixels, read at 1.0
    assert result.skipped is None and len(result.records) == 2
    result, _ = _made(tmp_path / "small_face", monkeypatch, _astronaut(2.5, 2000))  # its crop needs all 4.0
    assert result.records == [] and result.skipped == "image too large: 2000x2000 is over 3 megapixels"


def _folded(face):
    """``face`` as dlib measures a head turned far to one side: the far jaw (points 9-16) folded onto the nose line."""
    landmarks = face.landmarks.copy()
    landmarks[9:17, 0] = landmarks[30, 0]
    return replace(face, landmarks=landmarks)


@pytest.mark.parametrize("full_images", [False, True])
def test_a_face_the_mask_would_leave_bare_is_left_out_and_a_photo_with_no_other_is_skipped(
        tmp_path, monkeypatch, face_image, full_images):
    raw = tmp_path / "raw"
    save_rgb(raw / "photo.png", face_image)
    face = find_faces(face_image)[0]
    styles = {style.name: style for style in load_styles([BUILTIN_STYLES])[0]}
    settings = dataset.Settings(full_images=full_images, styles=tuple(sorted(styles)))

    def made(faces: list, out: str) -> dataset.ImageResult:
        monkeypatch.setattr(dataset, "locate_faces", lambda image, settings: faces)
        return dataset.process_image(raw, tmp_path / out, "photo.png", "photo", settings, styles)

    folded = made([_folded(face)], "folded")
    assert folded.records == [] and folded.skipped == dataset.MISFIT
    assert not list((tmp_path / "folded").glob("with*/*"))  # nothing written for it
    both = made([_folded(face), face], "both")
    assert both.skipped is None
    masked = [record for record in both.records if record["label"] == "with_mask"]
    faces_masked = [face["face"] for face in masked[0]["faces"]] if full_images else [r["face"] for r in masked]
    assert faces_masked == [1]
    if not full_images:
        assert sorted(p.name for p in (tmp_path / "both").glob("with*/*")) == ["photo_1.jpg", "photo_1.jpg"]


def test_an_unexpected_failure_skips_the_photo_with_its_reason_on_one_line(tmp_path, monkeypatch, face_image):
    raw = tmp_path / "raw"
    save_rgb(raw / "photo.png", face_image)

    def fail(image, settings):
        raise RuntimeError("\n\nError detected at line 2957.\nFailing expression was x.\n")  # as dlib words it

    monkeypatch.setattr(dataset, "locate_faces", fail)
    result = dataset.process_image(raw, tmp_path / "out", "photo.png", "photo", dataset.Settings(), {})
    assert result.records == []
    assert result.skipped == "internal error: RuntimeError: Error detected at line 2957. Failing expression was x."


def test_masked_picture_masks_every_face_that_fits_the_way_generate_does(face_image):
    from test_faces import group_photo

    photo = group_photo(face_image)
    before = photo.copy()
    faces = find_faces(photo, upsample=1, unmasked=True)
    styles, _ = load_styles([BUILTIN_STYLES])
    masked, worn = dataset.masked_picture(photo, faces, styles, seed=3, source="group.jpg")
    assert np.array_equal(photo, before) and sorted(worn) == list(range(len(faces))) and len(faces) >= 2
    again, _ = dataset.masked_picture(photo, faces, reversed(styles), seed=3, source="group.jpg")
    assert np.array_equal(masked, again)  # the same draws, whatever order the styles come in
    for index, face in enumerate(faces):
        mouth = face.landmarks[48:68].mean(axis=0).round().astype(int)
        eye = face.landmarks[36:42].mean(axis=0).round().astype(int)
        assert np.abs(masked[mouth[1], mouth[0]].astype(int) - photo[mouth[1], mouth[0]]).max() > 25
        assert np.array_equal(masked[eye[1], eye[0]], photo[eye[1], eye[0]])
        style, params, _ = dataset.dress(3, "group.jpg", index, styles,
                                          functools.partial(face_side_light, photo, face.landmarks))
        assert worn[index] == params and params.style == style.name


def test_the_readmes_python_example_runs(face_image, brightness_model_path, tmp_path, capsys):
    readme = (PROJECT / "README.md").read_text()
    example = readme.split("## Use from Python", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    save_rgb(tmp_path / "photo.jpg", face_image)
    example = (example.replace('"photo.jpg"', repr(str(tmp_path / "photo.jpg")))
               .replace('"masked.jpg"', repr(str(tmp_path / "masked.jpg")))
               .replace('"mask_images"', repr(str(BUILTIN_STYLES)))
               .replace('"models/mask_classifier.keras"', repr(str(brightness_model_path))))
    exec(compile(example, "README.md", "exec"), {})
    masked = load_rgb(tmp_path / "masked.jpg")
    assert np.abs(masked.astype(int) - load_rgb(tmp_path / "photo.jpg")).max() > 25
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 1 and printed[0].split()[-2] in ("with_mask", "without_mask")


def test_a_style_lit_from_one_side_turns_to_the_face_s_light():
    styles, _ = load_styles([BUILTIN_STYLES])
    kn95 = [style for style in styles if style.name == "kn95_white"]  # drawn lit from the picture's left
    surgical = [style for style in styles if style.name == "surgical_blue"]  # lit evenly
    for index in range(5):
        lit_left = dataset.dress(0, "a.jpg", index, kn95, face_light=lambda: 0.5)[1]
        lit_right = dataset.dress(0, "a.jpg", index, kn95, face_light=lambda: -0.5)[1]
        assert not lit_left.mirrored and lit_right.mirrored
        # Turning the mask is not a draw of the face's generator: every other choice stays.
        assert replace(lit_right, mirrored=False) == lit_left
        assert not dataset.dress(0, "a.jpg", index, kn95, face_light=lambda: 0.02)[1].mirrored  # light unclear
        assert not dataset.dress(0, "a.jpg", index, surgical, face_light=lambda: -0.5)[1].mirrored  # the style's even
    # The face's light is read only for a style lit from one side: most styles need no reading.
    read = []
    dataset.dress(0, "a.jpg", 0, surgical, face_light=lambda: read.append(1) or -0.5)
    dataset.dress(0, "a.jpg", 0, kn95, face_light=lambda: read.append(2) or -0.5)
    assert read == [2]

"""A generated dataset's faces on one picture: reading the manifest, choosing faces, the sheet itself."""
import json

import numpy as np
import pytest

from augment.images import save_rgb
from augment.sheet import PAIRS_PER_ROW, Pair, SheetError, matching_pairs, pair_sheet, read_pairs, sample_pairs


def crop_record(name: str, label: str, style: str | None, detector: str = "hog", split: str = "train") -> dict:
    return {"path": f"{label}/{name}", "label": label, "source": name.rsplit("_", 1)[0] + ".jpg", "face": 0,
            "detector": detector, "box": [1, 1, 9, 9], "style": style, "params": None, "split": split}


def write_dataset(folder, records, colour=(200, 120, 90)) -> None:
    """A manifest of ``records`` and a small picture for each, the masked ones darker."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))
    for record in records:
        (folder / record["label"]).mkdir(exist_ok=True)
        shade = 0.5 if record["label"] == "with_mask" else 1.0
        save_rgb(folder / record["path"], np.full((40, 30, 3), np.multiply(colour, shade), np.uint8))


def pairs_of(*specs) -> list[Pair]:
    return [Pair(name, split, styles, detectors) for name, split, styles, detectors in specs]


def test_read_pairs_takes_one_pair_per_masked_file_from_crops_and_whole_pictures(tmp_path):
    crops = [crop_record(f"p{i}_0.jpg", label, worn if label == "with_mask" else None, split=split)
             for i, (worn, split) in enumerate([("kn95_white", "train"), ("cloth_black", "test")])
             for label in ("without_mask", "with_mask")]
    whole = {"path": "with_mask/group.jpg", "label": "with_mask", "source": "group.jpg", "size": [9, 9], "split": "val",
             "faces": [{"face": 0, "detector": "hog", "style": "surgical_blue"},
                       {"face": 1, "detector": "cnn", "style": "surgical_blue"}]}
    write_dataset(tmp_path, crops[::-1] + [whole])
    pairs = read_pairs(tmp_path)
    assert [pair.name for pair in pairs] == ["group.jpg", "p0_0.jpg", "p1_0.jpg"]
    assert pairs[0] == Pair("group.jpg", "val", ("surgical_blue", "surgical_blue"), ("hog", "cnn"))
    assert pairs[2].styles == ("cloth_black",) and pairs[2].split == "test"


def test_read_pairs_names_a_folder_without_a_manifest_and_a_broken_line(tmp_path):
    with pytest.raises(SheetError, match="not a generated dataset"):
        read_pairs(tmp_path)
    (tmp_path / "manifest.jsonl").write_text(json.dumps(crop_record("a_0.jpg", "with_mask", "x")) + "\n{not json\n")
    with pytest.raises(SheetError, match="line 2 is not a manifest record"):
        read_pairs(tmp_path)


def test_matching_pairs_keeps_what_every_given_choice_allows():
    pairs = pairs_of(("a", "train", ("kn95_white",), ("hog",)), ("b", "test", ("kn95_white",), ("cnn",)),
                     ("c", "test", ("cloth_black", "kn95_white"), ("hog", "hog-up1")),
                     ("d", "val", ("cloth_black",), ("hog",)))
    assert matching_pairs(pairs) == pairs
    assert [p.name for p in matching_pairs(pairs, styles=("cloth_black",))] == ["c", "d"]
    assert [p.name for p in matching_pairs(pairs, styles=("kn95_white",), split="test")] == ["b", "c"]
    assert [p.name for p in matching_pairs(pairs, detectors=("cnn", "hog-up1"))] == ["b", "c"]
    assert [p.name for p in matching_pairs(pairs, styles=("cloth_black",), detectors=("hog",), split="val")] == ["d"]


def test_a_choice_nothing_matches_says_what_there_is():
    pairs = pairs_of(("a", "train", ("kn95_white",), ("hog",)), ("b", "test", ("cloth_black",), ("cnn",)),
                     ("c", "test", ("kn95_white",), ("hog",)))
    with pytest.raises(SheetError, match=r"no face with style foam; these have: cloth_black \(1\), kn95_white \(2\)"):
        matching_pairs(pairs, styles=("foam",))
    # what is listed is what the earlier choices left: b, found by the CNN, wears another style
    with pytest.raises(SheetError, match=r"no face with detector cnn; these have: hog \(2\)$"):
        matching_pairs(pairs, styles=("kn95_white",), detectors=("cnn",))


def test_sample_pairs_draws_by_the_seed_and_keeps_name_order():
    pairs = pairs_of(*[(f"n{i:03d}", "train", ("s",), ("hog",)) for i in range(100)])
    first, again, other = (sample_pairs(pairs, 10, seed) for seed in (0, 0, 1))
    assert first == again and first != other
    assert len(first) == 10 and len(set(first)) == 10
    assert [p.name for p in first] == sorted(p.name for p in first)
    assert sample_pairs(pairs[:4], 10) == pairs[:4]


def test_pair_sheet_puts_each_face_beside_its_masked_twin(tmp_path):
    records = [crop_record(f"p{i}_0.jpg", label, "kn95_white" if label == "with_mask" else None)
               for i in range(4) for label in ("without_mask", "with_mask")]
    write_dataset(tmp_path, records)
    sheet, problems = pair_sheet(tmp_path, read_pairs(tmp_path), cell=100)
    assert problems == []
    assert sheet.dtype == np.uint8 and sheet.shape == (200, 2 * PAIRS_PER_ROW * 100, 3)
    # first pair: the unmasked picture in the first cell, its darker masked twin in the second
    unmasked, masked = sheet[30:60, 40:60].reshape(-1, 3), sheet[30:60, 140:160].reshape(-1, 3)
    assert np.allclose(unmasked.mean(axis=0), (200, 120, 90), atol=3)
    assert np.allclose(masked.mean(axis=0), (100, 60, 45), atol=3)
    # the fourth pair starts the second row; the cells after it stay white
    assert sheet[100:200, 200:].min() == 255 and sheet[130:160, 40:60].mean() < 200


def test_pair_sheet_leaves_out_a_pair_it_cannot_read_and_says_so(tmp_path):
    records = [crop_record(f"p{i}_0.jpg", label, "kn95_white" if label == "with_mask" else None)
               for i in range(2) for label in ("without_mask", "with_mask")]
    write_dataset(tmp_path, records)
    (tmp_path / "with_mask" / "p0_0.jpg").write_bytes(b"not a picture")
    sheet, problems = pair_sheet(tmp_path, read_pairs(tmp_path), cell=100)
    assert len(problems) == 1 and problems[0].startswith(f"{tmp_path / 'with_mask' / 'p0_0.jpg'}: ")
    assert problems[0].endswith("its pair is left out")
    assert sheet[30:60, 140:160].mean() < 200 and sheet[:, 200:].min() == 255  # only p1 is shown, first
    (tmp_path / "without_mask" / "p1_0.jpg").unlink()
    with pytest.raises(SheetError, match="none of the 2 chosen pairs could be read"):
        pair_sheet(tmp_path, read_pairs(tmp_path))


def test_pair_sheet_decodes_whole_photos_no_larger_than_its_cells(tmp_path, monkeypatch):
    from augment import images

    monkeypatch.setattr(images, "MAX_PIXELS", 1_000_000)  # a photo this size could not be decoded whole
    record = {"path": "with_mask/photo.jpg", "label": "with_mask", "source": "photo.jpg", "split": "train",
              "size": [1600, 1200], "faces": [{"face": 0, "detector": "hog", "style": "kn95_white"}]}
    (tmp_path / "manifest.jsonl").write_text(json.dumps(record) + "\n")
    for label, shade in (("without_mask", 1.0), ("with_mask", 0.5)):
        (tmp_path / label).mkdir()
        save_rgb(tmp_path / label / "photo.jpg", np.full((1200, 1600, 3), np.multiply((200, 120, 90), shade), np.uint8))
    with pytest.raises(images.ImageError, match="too large"):
        images.load_rgb(tmp_path / "with_mask" / "photo.jpg")
    sheet, problems = pair_sheet(tmp_path, read_pairs(tmp_path), cell=100)
    assert problems == [] and sheet.shape == (100, 600, 3)
    assert np.allclose(sheet[30:60, 40:60].reshape(-1, 3).mean(axis=0), (200, 120, 90), atol=3)
    assert np.allclose(sheet[30:60, 140:160].reshape(-1, 3).mean(axis=0), (100, 60, 45), atol=3)

"""Output bookkeeping: clearing out stale and changed inputs' files, the manifest and the report."""
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from augment import dataset, outputs
from augment.styles import MaskStyle


def test_remove_stale_keeps_what_an_unreadable_directory_may_still_hold(tmp_path):
    out, raw = tmp_path / "out", tmp_path / "raw"
    outputs.prepare_output(out)
    for source, stem in (("gone.jpg", "gone"), ("locked/kept.jpg", "locked__kept"), ("here.jpg", "here")):
        paths = [f"{label}/{stem}_0.jpg" for label in dataset.LABELS]
        for path in paths:
            (out / path).write_bytes(b"jpeg")
        part = {"source": source, "stamp": [4, 1], "records": [{"path": path} for path in paths], "skipped": None}
        (out / dataset.IMAGE_PARTS / f"{stem}.json").write_text(json.dumps(part))
    (out / dataset.IMAGE_PARTS / "notes.json").write_text("[1, 2]")  # not a record: left alone
    problems = [{"path": str(raw / "locked"), "reason": "cannot read directory: Permission denied"}]
    parts = outputs.read_parts(out)
    assert sorted(parts) == ["gone", "here", "locked__kept"]
    removed, changed = outputs.remove_stale(out, raw, {"here.jpg": "here"}, {"here.jpg": [4, 1]}, problems, parts)
    assert removed == ["gone.jpg"] and changed == [] and sorted(parts) == ["here", "locked__kept"]
    assert sorted(p.name for p in (out / "with_mask").iterdir()) == ["here_0.jpg", "locked__kept_0.jpg"]
    assert sorted(p.name for p in (out / dataset.IMAGE_PARTS).iterdir()) == ["here.json", "locked__kept.json",
                                                                             "notes.json"]
    assert outputs.remove_stale(out, raw, {"here.jpg": "here"}, {"here.jpg": [4, 1]}, [],
                                outputs.read_parts(out)) == (["locked/kept.jpg"], [])


def test_remove_stale_deletes_the_outputs_of_an_input_whose_file_has_changed(tmp_path):
    out, raw = tmp_path / "out", tmp_path / "raw"
    outputs.prepare_output(out)
    paths = [f"{label}/photo_0.jpg" for label in dataset.LABELS]
    for path in paths:
        (out / path).write_bytes(b"jpeg")
    part = {"source": "photo.jpg", "stamp": [2048, 7], "records": [{"path": path} for path in paths], "skipped": None}
    (out / dataset.IMAGE_PARTS / "photo.json").write_text(json.dumps(part))
    parts = outputs.read_parts(out)
    assert outputs.remove_stale(out, raw, {"photo.jpg": "photo"}, {"photo.jpg": [2048, 7]}, [], parts) == ([], [])
    assert sorted(parts) == ["photo"]
    assert outputs.remove_stale(out, raw, {"photo.jpg": "photo"}, {"photo.jpg": [2048, 9]}, [], parts) == (
        [], ["photo.jpg"])
    assert parts == {} and [list((out / label).iterdir()) for label in dataset.LABELS] == [[], []]
    assert not (out / dataset.IMAGE_PARTS / "photo.json").exists()


def test_the_manifest_is_read_back_from_each_inputs_part_in_path_order_with_the_split_of_its_copies(tmp_path):
    out = tmp_path / "out"
    outputs.prepare_output(out)
    # Stems "c" and "c0": sorted by path, c0's files come before c's ("c0_0" < "c_0"). Their
    # pictures are copies (one signature), so both take the split of "c.jpg"; "b.jpg" keeps its own.
    copy_signature = "0f" * 64
    for stem, faces, signature in (("c", 2, copy_signature), ("c0", 1, copy_signature), ("b", 1, "f0" * 64)):
        records = [{"path": f"{label}/{stem}_{index}.jpg", "label": label, "source": f"{stem}.jpg", "face": index,
                    "style": "s"} for index in range(faces) for label in dataset.LABELS]
        part = {"source": f"{stem}.jpg", "stamp": [1, 1], "signature": signature, "records": records, "skipped": None}
        (out / dataset.IMAGE_PARTS / f"{stem}.json").write_text(json.dumps(part))
    finished = [done for done, _ in outputs.read_parts(out).values()]
    assert all(not hasattr(done, "records") for done in finished)
    split, copies = outputs.splits(finished)
    assert split == {"c.jpg": dataset.split_of("c.jpg"), "c0.jpg": dataset.split_of("c.jpg"),
                     "b.jpg": dataset.split_of("b.jpg")} and copies == 2
    assert dataset.split_of("c0.jpg") != dataset.split_of("c.jpg")  # by name alone they would part
    outputs.write_manifest(out, finished, split)
    lines = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [line["path"] for line in lines] == ["with_mask/b_0.jpg", "with_mask/c0_0.jpg", "with_mask/c_0.jpg",
                                                "with_mask/c_1.jpg", "without_mask/b_0.jpg",
                                                "without_mask/c0_0.jpg", "without_mask/c_0.jpg",
                                                "without_mask/c_1.jpg"]
    assert all(line["label"] == line["path"].split("/")[0] for line in lines)
    assert all(line["split"] == split[line["source"]] for line in lines)
    report = outputs.summarise(finished, [], [], 1.0, resumed=2, removed=[], changed=[], restyled=[], split=split,
                               copies=copies)
    assert (report["faces"], report["with_mask"], report["without_mask"]) == (4, 4, 4)
    assert report["splits"] == {"val": 4}  # c.jpg's split, and b.jpg's
    assert report["copies"] == 2 and report["styles"] == {"s": 4}


def test_photos_whose_faces_are_copies_share_a_split():
    # Every signature below is far from every other unless it is the same string: the pictures
    # differ (a copy turned or zoomed), the faces tell.
    def done(source: str, picture: str, faces: tuple[str, ...]) -> outputs.Finished:
        return outputs.Finished(source, source.split(".")[0], (), None, (), picture * 64,
                                tuple(face * 64 for face in faces))

    zoomed = next(f"zoomed{i}.jpg" for i in range(100) if dataset.split_of(f"zoomed{i}.jpg") != dataset.split_of("a.jpg"))
    finished = [done("a.jpg", "0f", ("33",)), done(zoomed, "f0", ("33",)),
                done("m.jpg", "55", ("cc", "aa")), done("n.jpg", "5a", ("aa",)),  # m's second face is n's
                done("solo.jpg", "3c", ("c3",)), outputs.Finished("unread.jpg", "unread", (), "unreadable", ())]
    split, copies = outputs.splits(finished)
    assert split == {"a.jpg": dataset.split_of("a.jpg"), zoomed: dataset.split_of("a.jpg"),
                     "m.jpg": dataset.split_of("m.jpg"), "n.jpg": dataset.split_of("m.jpg"),
                     "solo.jpg": dataset.split_of("solo.jpg"), "unread.jpg": dataset.split_of("unread.jpg")}
    assert copies == 4


def test_photos_of_one_folder_share_a_split_when_split_by_folder():
    def done(source: str, picture: str, face: str) -> outputs.Finished:
        return outputs.Finished(source, source.replace("/", "__"), (), None, (), picture * 64, (face * 64,))

    other = next(f"ann/{i}.jpg" for i in range(2, 200) if dataset.split_of(f"ann/{i}.jpg") != dataset.split_of("ann/1.jpg"))
    finished = [done("ann/1.jpg", "0f", "33"), done(other, "f0", "cc"),
                done("bob/1.jpg", "55", "aa"), done("carl/copy.jpg", "55", "aa"),  # a copy of bob's photo
                done("carl/other.jpg", "5a", "c3"), done("top.jpg", "3c", "96")]
    by_photo, copies = outputs.splits(finished)
    assert by_photo[other] != by_photo["ann/1.jpg"] and copies == 2
    by_folder, copies = outputs.splits(finished, "folder")
    # Folders join through copies: carl's photos take the split of bob's, whose copy carl holds.
    assert by_folder == {"ann/1.jpg": dataset.split_of("ann/1.jpg"), other: dataset.split_of("ann/1.jpg"),
                         **{name: dataset.split_of("bob/1.jpg") for name in ("bob/1.jpg", "carl/copy.jpg",
                                                                              "carl/other.jpg")},
                         "top.jpg": dataset.split_of("top.jpg")}
    assert copies == 2  # copies are still counted as copies of a picture, not of a folder
    with pytest.raises(ValueError, match="unknown split grouping 'person'"):
        outputs.splits(finished, "person")


def test_a_change_of_styles_alone_is_described_with_the_styles_edited_and_any_other_change_refused(tmp_path):
    settings = dataset.Settings(styles=("a", "b"), style_fingerprints=(("a", "1"), ("b", "2")))
    assert outputs.check_settings(tmp_path, settings) is None  # a new folder
    outputs.save_settings(tmp_path, settings)
    assert outputs.check_settings(tmp_path, settings) is None
    edited = replace(settings, style_fingerprints=(("a", "1"), ("b", "3")))
    assert outputs.check_settings(tmp_path, edited) == ("b edited", {"b"})
    renamed = replace(edited, styles=("a", "b", "c"), style_weights=(("c", 3),),
                      style_fingerprints=(("a", "1"), ("b", "3"), ("c", "2")))
    assert outputs.check_settings(tmp_path, renamed) == ("c added, b edited", {"b"})
    reweighted = replace(settings, styles=("a",), style_weights=(("a", 3),), style_fingerprints=(("a", "1"),))
    assert outputs.check_settings(tmp_path, reweighted) == ("b removed, a weight 1 -> 3", set())
    with pytest.raises(dataset.SettingsChanged, match="margin was 1.0, now 0.5; style_fingerprints: b changed"):
        outputs.check_settings(tmp_path, replace(edited, margin=0.5))
    stamp = tmp_path / outputs.SETTINGS_STAMP
    stamp.write_text(json.dumps({**json.loads(stamp.read_text()), "style_fingerprints": "by hand"}))
    with pytest.raises(dataset.SettingsChanged, match="style_fingerprints was 'by hand'"):
        outputs.check_settings(tmp_path, settings)


def test_forget_restyled_deletes_the_files_of_inputs_with_a_face_drawing_another_style_or_an_edited_one(tmp_path):
    styles = [MaskStyle(name, Path(f"{name}.png"), np.zeros((4, 4, 4), np.uint8), {}, "alpha") for name in "abc"]

    def made(stem: str, faces: int) -> None:
        records = [{"path": f"with_mask/{stem}_{i}.jpg", "label": "with_mask", "source": f"{stem}.jpg", "face": i,
                    "style": dataset.draw_style(0, f"{stem}.jpg", i, styles[:2]).name} for i in range(faces)]
        for record in records:
            (tmp_path / record["path"]).parent.mkdir(exist_ok=True)
            (tmp_path / record["path"]).write_bytes(b"jpeg")
        part = tmp_path / dataset.IMAGE_PARTS / f"{stem}.json"
        part.parent.mkdir(parents=True, exist_ok=True)
        part.write_text(json.dumps({"source": f"{stem}.jpg", "stamp": [1, 1], "records": records, "skipped": None}))

    for number in range(40):
        made(f"photo{number}", 1 + number % 2)
    made("none", 0)
    parts = outputs.read_parts(tmp_path)
    assert outputs.forget_restyled(tmp_path, parts, 0, styles[:2], []) == []  # nothing changed
    wore_b = sorted(done.source for done, _ in parts.values() if "b" in dict(done.styles).values())
    assert outputs.forget_restyled(tmp_path, dict(parts), 0, styles[:2], {"b"}) == wore_b
    takes_c = sorted(done.source for done, _ in outputs.read_parts(tmp_path).values()
                     if any(dataset.draw_style(0, done.source, face, styles).name == "c" for face, _ in done.styles))
    assert 0 < len(takes_c) < 30  # of the 40 photos left; "c" is drawn by about a third of the faces
    parts = outputs.read_parts(tmp_path)
    assert outputs.forget_restyled(tmp_path, parts, 0, styles, []) == takes_c
    assert sorted(done.source for done, _ in outputs.read_parts(tmp_path).values()) == sorted(
        done.source for done, _ in parts.values())
    kept = {path.name for path in (tmp_path / "with_mask").iterdir()}
    assert kept == {path.rpartition("/")[2] for done, _ in parts.values() for path in done.paths}

"""Which images a training run sees, in which split, with which face box."""
import json
import signal
import threading
import time
from collections import Counter

import numpy as np
import pytest
from skimage import data

from augment.dataset import split_of
from augment.demo import astronaut
from augment.images import load_rgb, save_rgb
from train.data import DataError, class_folders, copies_together, load_folders, load_samples, pair_key

GREY = np.full((40, 40, 3), 128, np.uint8)


def test_class_folders_need_two_non_empty_labels_or_as_many_as_asked(tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        class_folders(tmp_path / "missing")
    (tmp_path / "with_mask").mkdir()
    (tmp_path / "without_mask").mkdir()
    with pytest.raises(DataError, match=r"at least 1 non-empty class folder \(.*found none"):
        class_folders(tmp_path, at_least=1)
    save_rgb(tmp_path / "with_mask" / "a.png", GREY)
    with pytest.raises(DataError, match=r"at least 2 non-empty class folders.*found with_mask"):
        class_folders(tmp_path)
    assert list(class_folders(tmp_path, at_least=1)) == ["with_mask"]
    save_rgb(tmp_path / "without_mask" / "a.png", GREY)
    (tmp_path / "without_mask" / "notes.txt").write_text("not an image")
    (tmp_path / "without_mask" / "._a.png").write_bytes(b"\x00\x05\x16\x07")  # a Mac's shadow of a.png
    save_rgb(tmp_path / "without_mask" / ".thumbnails" / "a.png", GREY)  # a viewer's cache
    assert {label: [p.name for p in paths] for label, paths in class_folders(tmp_path).items()} == {
        "with_mask": ["a.png"], "without_mask": ["a.png"]}


def test_the_folder_above_a_generated_dataset_is_refused_naming_the_dataset(tmp_path):
    for label in ("with_mask", "without_mask"):
        save_rgb(tmp_path / "generated" / label / "a.png", GREY)
    (tmp_path / "generated" / "manifest.jsonl").write_text("")
    save_rgb(tmp_path / "photos" / "a.png", GREY)  # beside it, a folder that could pass for a label
    with pytest.raises(DataError, match=r"sub-folder generated/ is a generated dataset, not a label; give --data "
                                        + str(tmp_path / "generated")):
        class_folders(tmp_path)
    assert list(class_folders(tmp_path / "generated")) == ["with_mask", "without_mask"]


def test_paired_names_share_a_key_and_so_a_split():
    labels = ["with_mask", "without_mask"]
    from pathlib import Path
    assert pair_key(Path("12.jpg"), labels) == pair_key(Path("12-with-mask.jpg"), labels) == "12"
    assert pair_key(Path("face_3_with_mask.png"), labels) == pair_key(Path("face_3.png"), labels)
    assert pair_key(Path("12.jpg"), labels) != pair_key(Path("13.jpg"), labels)


def test_split_shares_follow_the_hash():
    shares = Counter(split_of(f"face{i}") for i in range(5000))
    assert shares["train"] / 5000 == pytest.approx(0.8, abs=0.03)
    assert shares["val"] / 5000 == pytest.approx(0.1, abs=0.02)
    assert split_of("face7") == split_of("face7")


def test_folder_without_manifest_keeps_pairs_together(tmp_path):
    for i in range(30):
        save_rgb(tmp_path / "without_mask" / f"{i}.png", GREY)
        save_rgb(tmp_path / "with_mask" / f"{i}-with-mask.png", GREY)
    samples, labels, source = load_samples(tmp_path)
    assert source == "file names" and labels == ["with_mask", "without_mask"]
    by_name = {s.path.name: s.split for s in samples}
    assert all(by_name[f"{i}.png"] == by_name[f"{i}-with-mask.png"] for i in range(30))
    assert len(set(by_name.values())) > 1
    assert all(s.box is None for s in samples)


def test_copies_of_one_picture_and_their_pairs_share_a_split(tmp_path):
    photo, cat, coffee = astronaut(), data.chelsea(), data.coffee()
    covered = photo.copy()
    covered[260:, 150:350] = (40, 90, 160)  # the face's other version: not a copy of the photo
    mirrored_name = next(f"copy{i}" for i in range(100) if split_of(f"copy{i}") != split_of("photo"))
    for name, image in (("photo", photo), (mirrored_name, np.ascontiguousarray(photo[:, ::-1])),
                        ("cat", cat), ("coffee", coffee)):
        save_rgb(tmp_path / "without_mask" / f"{name}.png", image)
    save_rgb(tmp_path / "with_mask" / "photo-with-mask.png", covered)
    save_rgb(tmp_path / "with_mask" / "cat-with-mask.png", cat[:, ::-1])
    samples, labels, source = load_samples(tmp_path)
    assert source == "file names"
    assert split_of(pair_key(samples[0].path, labels)) == samples[0].split
    # An unreadable file (None) keeps its split and counts for nothing.
    images = [None if sample.path.stem == "coffee" else load_rgb(sample.path) for sample in samples]
    together, copies = copies_together(samples, images, labels)

    split = {f"{s.label}/{s.path.stem}": s.split for s in together}
    assert split[f"without_mask/{mirrored_name}"] == split["without_mask/photo"] == split["with_mask/photo-with-mask"]
    assert split[f"without_mask/{mirrored_name}"] != {f"{s.label}/{s.path.stem}": s.split for s in samples}[
        f"without_mask/{mirrored_name}"]
    # The cat's mirror image in with_mask/ is its pair by name already: not a copy of another face.
    assert split["with_mask/cat-with-mask"] == split["without_mask/cat"] == split_of("cat")
    assert split["without_mask/coffee"] == split_of("coffee")
    assert copies == 3  # the photo, its masked version and its mirrored copy


def test_manifest_gives_splits_and_boxes_for_crops_and_whole_images(tmp_path):
    for label in ("with_mask", "without_mask"):
        save_rgb(tmp_path / label / "a_0.jpg", GREY)
        save_rgb(tmp_path / label / "b.jpg", GREY)
    records = [
        {"path": "with_mask/a_0.jpg", "label": "with_mask", "split": "val", "box": [1, 2, 30, 31]},
        {"path": "without_mask/a_0.jpg", "label": "without_mask", "split": "val", "box": [1, 2, 30, 31]},
        {"path": "with_mask/b.jpg", "label": "with_mask", "split": "train",
         "faces": [{"box": [0, 0, 10, 10]}, {"box": [20, 20, 39, 39]}]},
        {"path": "without_mask/b.jpg", "label": "without_mask", "split": "train", "faces": [{"box": [0, 0, 10, 10]}]},
        {"path": "with_mask/gone.jpg", "label": "with_mask", "split": "train", "box": [0, 0, 5, 5]},
    ]
    (tmp_path / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    samples, labels, source = load_samples(tmp_path)
    assert source == "manifest"
    assert [(s.path.name, s.label, s.split, s.box) for s in samples] == [
        ("a_0.jpg", "with_mask", "val", (1, 2, 30, 31)),
        ("a_0.jpg", "without_mask", "val", (1, 2, 30, 31)),
        ("b.jpg", "with_mask", "train", (0, 0, 10, 10)),
        ("b.jpg", "with_mask", "train", (20, 20, 39, 39)),
        ("b.jpg", "without_mask", "train", (0, 0, 10, 10)),
    ]


def test_images_added_to_a_generated_dataset_by_hand_are_used_and_counted(tmp_path):
    """Real masked photos dropped into a generated dataset's with_mask/ are not in its manifest:
    they are taken as face crops, split by their names, and said to be there, not passed over."""
    for label in ("with_mask", "without_mask"):
        save_rgb(tmp_path / label / "a_0.jpg", GREY)
    save_rgb(tmp_path / "with_mask" / "my_photo.jpg", GREY)
    save_rgb(tmp_path / "with_mask" / "another.png", GREY)
    records = [{"path": f"{label}/a_0.jpg", "label": label, "split": "val", "box": [1, 2, 30, 31]}
               for label in ("with_mask", "without_mask")]
    (tmp_path / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    samples, labels, source = load_samples(tmp_path)
    assert source == "manifest; 2 images not in it by their file names"
    assert [(s.path.name, s.label, s.split, s.box) for s in samples] == [
        ("a_0.jpg", "with_mask", "val", (1, 2, 30, 31)),
        ("a_0.jpg", "without_mask", "val", (1, 2, 30, 31)),
        ("another.png", "with_mask", split_of(pair_key(tmp_path / "another.png", labels)), None),
        ("my_photo.jpg", "with_mask", split_of(pair_key(tmp_path / "my_photo.jpg", labels)), None),
    ]


def test_several_folders_train_together_each_with_the_labels_it_has(tmp_path):
    generated, mine, mine_too = tmp_path / "generated", tmp_path / "mine", tmp_path / "mine_too"
    records = []
    for label in ("with_mask", "without_mask"):
        save_rgb(generated / label / "a_0.jpg", GREY)
        records.append({"path": f"{label}/a_0.jpg", "label": label, "split": "val", "box": [1, 2, 30, 31]})
    (generated / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    save_rgb(mine / "with_mask" / "street.jpg", GREY)  # your own masked photos alone
    save_rgb(mine_too / "mask_weared_incorrect" / "chin.jpg", GREY)
    samples, labels, sources = load_folders([generated, mine, mine_too])
    assert labels == ["mask_weared_incorrect", "with_mask", "without_mask"]
    assert sources == {generated: "manifest", mine: "file names", mine_too: "file names"}
    assert [(s.path.parent.parent.name, s.label, s.split) for s in samples] == [
        ("generated", "with_mask", "val"), ("generated", "without_mask", "val"),
        ("mine", "with_mask", split_of("street")), ("mine_too", "mask_weared_incorrect", split_of("chin"))]
    save_rgb(tmp_path / "mine_again" / "with_mask" / "x.jpg", GREY)
    with pytest.raises(DataError, match="together need at least 2 labels"):
        load_folders([mine, tmp_path / "mine_again"])
    with pytest.raises(DataError, match="needs at least 2 non-empty class folders"):
        load_folders([mine])  # one folder alone still needs two labels
    with pytest.raises(DataError, match="given twice, or inside another --data folder"):
        load_folders([generated, generated / "with_mask"])


def test_a_broken_manifest_line_is_named(tmp_path):
    for label in ("with_mask", "without_mask"):
        save_rgb(tmp_path / label / "a.jpg", GREY)
    (tmp_path / "manifest.jsonl").write_text('{"path": "with_mask/a.jpg"\n')
    with pytest.raises(DataError, match="manifest.jsonl: line 1"):
        load_samples(tmp_path)


def test_decoding_reports_unreadable_files_and_keeps_the_order(tmp_path):
    from train.features import decode_images

    paths = []
    for number in range(6):
        paths.append(tmp_path / f"{number}.png")
        save_rgb(paths[-1], np.full((8, 8, 3), number, np.uint8))
    paths[2].write_text("not an image")
    images, problems = decode_images(paths, workers=3, progress=False)
    assert [None if image is None else int(image[0, 0, 0]) for image in images] == [0, 1, None, 3, 4, 5]
    assert problems == [{"path": str(paths[2]), "reason": "not a readable image"}]


def test_a_picture_listed_once_per_face_is_decoded_once(tmp_path, monkeypatch):
    from train import features

    for name in "ab":
        save_rgb(tmp_path / f"{name}.png", np.full((8, 8, 3), ord(name), np.uint8))
    decoded, load = [], features.load_rgb
    monkeypatch.setattr(features, "load_rgb", lambda path: decoded.append(path.name) or load(path))
    paths = [tmp_path / name for name in ("a.png", "a.png", "b.png", "a.png", "missing.png", "missing.png")]
    images, problems = features.decode_images(paths, workers=2, progress=False,
                                              reduce=lambda index, image: image[:1, :1] + index)
    assert sorted(decoded) == ["a.png", "b.png", "missing.png"]
    assert [None if image is None else int(image[0, 0, 0]) for image in images] == [97, 98, 100, 100, None, None]
    assert [problem["path"] for problem in problems] == [str(tmp_path / "missing.png")]


def test_ctrl_c_stops_decoding_without_decoding_the_rest(tmp_path, monkeypatch, ctrl_c_default):
    from train import features

    started, release = [], threading.Event()

    def slow_load(path):
        started.append(path)
        release.wait(10)
        return GREY

    monkeypatch.setattr(features, "load_rgb", slow_load)

    def press_ctrl_c_while_two_decode():
        while len(started) < 2:
            time.sleep(0.01)
        signal.raise_signal(signal.SIGINT)
        time.sleep(1.0)  # the decoding stops while these two are still at work
        release.set()

    threading.Thread(target=press_ctrl_c_while_two_decode).start()
    with pytest.raises(KeyboardInterrupt):
        features.decode_images([tmp_path / f"{number}.png" for number in range(40)], workers=2, progress=False)
    assert len(started) == 2  # the other 38 were never begun

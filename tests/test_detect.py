"""The detector: matching and AP maths, drawing, images, video and VOC evaluation end to end."""
import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from augment.cli import PROJECT
from augment.images import load_rgb, save_rgb
from detect.cli import drawn_targets, main
from detect.draw import GREEN, RED, draw_faces
from detect.evaluate import SIZED_AP, Truth, ap_hits, average_precision, match, read_voc
from detect.faces import CLASSIFIER_WEIGHT, LabelledFace, classifier_weight, fuse_opinions, label_faces
from train.data import DataError
from train.model import build_network, load_classifier, save_model_file
from train.views import RESIZE, face_views


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    """An untrained classifier: enough to exercise every path; its labels are what the tests check."""
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    network = build_network(0.35, "none", 32, classes=2, seed=0)
    save_model_file(network.model, path, {"labels": ["with_mask", "without_mask"], "input_size": 32, "resize": RESIZE})
    return path


def test_average_precision_known_values():
    assert average_precision([0.9, 0.8], [True, True], 2) == pytest.approx(1.0)
    assert average_precision([0.9, 0.8], [False, True], 2) == pytest.approx(0.25)  # half the truths, at precision 1/2
    assert average_precision([0.9, 0.8, 0.7], [True, False, True], 2) == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert average_precision([], [], 3) == 0.0
    assert average_precision([0.5], [False], 0) is None


def test_match_is_one_to_one_best_overlap_first():
    truths = [Truth((0, 0, 10, 10), "with_mask"), Truth((8, 0, 18, 10), "without_mask")]
    faces = [LabelledFace((1, 0, 11, 10), "with_mask", 0.9, 1.0)]
    assert match(truths, faces, 0.3) == {0: 0}
    assert match(truths, [], 0.3) == {}
    assert match(truths, [LabelledFace((50, 50, 60, 60), "with_mask", 0.9, 1.0)], 0.3) == {}


def test_sized_ap_leaves_out_small_faces_and_small_false_alarms():
    truths = [Truth((0, 0, 50, 50), "with_mask"), Truth((100, 0, 120, 20), "with_mask")]
    faces = [LabelledFace((0, 0, 50, 50), "with_mask", 0.9, 1.0),  # the tall face
             LabelledFace((100, 0, 120, 20), "with_mask", 0.8, 1.0),  # the small face: not asked for
             LabelledFace((200, 0, 210, 10), "with_mask", 0.7, 1.0),  # a small false alarm
             LabelledFace((300, 0, 360, 60), "with_mask", 0.6, 1.0)]  # a tall false alarm
    assert ap_hits(truths, faces, "with_mask") == ([0.9, 0.8, 0.7, 0.6], [True, True, False, False])
    assert ap_hits(truths, faces, "with_mask", 40) == ([0.9, 0.6], [True, False])
    assert ap_hits(truths, faces, "without_mask", 40) == ([], [])


def test_fused_opinions_let_the_surer_one_decide():
    detector = np.array([[0.7, 0.3], [0.6, 0.4], [0.5, 0.5]])
    classifier = np.array([[0.9, 0.1], [0.05, 0.95], [0.2, 0.8]])
    fused = fuse_opinions(detector, classifier)
    assert fused.shape == (3, 2) and np.allclose(fused.sum(axis=1), 1)
    assert 0.7 < fused[0, 0] < 0.9  # both say masked: between the two
    assert fused[1].argmax() == 1 and fused[2].argmax() == 1  # the confident classifier outweighs a hesitant detector
    undecided = fuse_opinions(detector, np.full((3, 2), 0.5))
    assert (undecided.argmax(axis=1) == detector.argmax(axis=1)).all()  # an undecided opinion leaves the choice
    assert np.allclose(fuse_opinions(detector, detector), detector)  # agreeing with itself changes nothing
    assert np.allclose(fuse_opinions(detector, classifier, 0.0), detector)  # no say: the detector's odds stand
    assert np.allclose(fuse_opinions(detector, classifier, 1.0), classifier)
    weighted = fuse_opinions(detector, classifier, np.array([0.5, 0.1, 0.5]))
    assert np.allclose(weighted[[0, 2]], fused[[0, 2]]) and weighted[1].argmax() == 0  # little say: the detector keeps it


def test_the_classifier_weighs_more_on_taller_faces():
    weights = [classifier_weight(height) for height in (10, 24, 40, 60, 80, 300)]
    assert weights[0] == weights[1] == 0.0 and weights[-2] == weights[-1] == CLASSIFIER_WEIGHT
    assert weights == sorted(weights) and 0 < weights[2] < weights[3] < CLASSIFIER_WEIGHT


def test_size_buckets_use_the_box_height():
    assert [Truth((0, 0, 50, h), "x").bucket for h in (23, 24, 39.9, 40)] == ["<24", "24-40", "24-40", ">=40"]


def test_read_voc_and_its_errors(tmp_path):
    good = tmp_path / "a.xml"
    good.write_text("<annotation><filename>a.png</filename><object><name>with_mask</name><bndbox><xmin>1</xmin>"
                    "<ymin>2</ymin><xmax>30</xmax><ymax>40</ymax></bndbox></object></annotation>")
    assert read_voc(good) == ("a.png", [Truth((1.0, 2.0, 30.0, 40.0), "with_mask")])
    bad = tmp_path / "b.xml"
    bad.write_text("<annotation><object>")
    with pytest.raises(DataError, match="b.xml: not a PASCAL VOC annotation"):
        read_voc(bad)


def test_drawing_colours_boxes_by_label():
    canvas = np.zeros((200, 300, 3), np.uint8)
    faces = [LabelledFace((20, 60, 100, 140), "with_mask", 0.97, 1.0),
             LabelledFace((150, 60, 230, 140), "without_mask", 0.6, 1.0)]
    drawn = draw_faces(canvas, faces, "12.0 FPS")
    assert drawn.shape == canvas.shape and not drawn[:10, :10].any() and not canvas.any()
    assert tuple(drawn[58, 21]) == GREEN and tuple(drawn[58, 151]) == RED  # caption bands above the boxes


def test_label_faces_finds_and_labels_the_face(model_path, face_image):
    classifier = load_classifier(model_path)
    faces = label_faces(face_image, classifier, "hog", 1)
    assert len(faces) == 1
    face = faces[0]
    assert face.label in ("with_mask", "without_mask") and 0.5 <= face.confidence <= 1
    x0, y0, x1, y1 = face.box
    assert 40 < x1 - x0 < 160 and 70 < (x0 + x1) / 2 < 190  # the astronaut's face, not the whole picture
    assert label_faces(np.zeros((100, 100, 3), np.uint8), classifier) == []


def test_a_face_is_labelled_from_the_mean_of_its_two_views(face_image, brightness_model_path):
    classifier = load_classifier(brightness_model_path)
    [face] = label_faces(face_image, classifier, "hog", 1)
    both = classifier.predict_resized(face_views(face_image, face.box, classifier.size).astype(np.float32))
    assert not np.allclose(both[0], both[1], atol=1e-3)  # the two views disagree ...
    mean = both.mean(axis=0)  # ... and the label is their mean's
    assert face.label == classifier.labels[int(mean.argmax())] and face.confidence == pytest.approx(mean.max(), abs=1e-5)


def test_a_large_folder_has_its_faces_found_by_processes_with_the_same_results(model_path, face_image, tmp_path,
                                                                               monkeypatch):
    """dlib holds Python's lock, so from FOLDER_IN_PROCESSES images on a process per core finds the faces."""
    from augment import interrupts

    save_rgb(tmp_path / "in" / "face.jpg", face_image)
    save_rgb(tmp_path / "in" / "small.png", cv2.resize(face_image, (256, 256)))
    save_rgb(tmp_path / "in" / "wall.png", np.full((90, 120, 3), 70, np.uint8))
    (tmp_path / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    in_processes = []
    real_in_order = interrupts.in_order
    monkeypatch.setattr(interrupts, "in_order", lambda *args, **kwargs: in_processes.append(
        kwargs.get("processes", False)) or real_in_order(*args, **kwargs))
    records = {}
    for folder_in_processes in (2, 100):
        monkeypatch.setattr("detect.cli.FOLDER_IN_PROCESSES", folder_in_processes)
        report = tmp_path / f"{folder_in_processes}.json"
        result = CliRunner().invoke(main, ["image", str(tmp_path / "in"), "--model", str(model_path), "--out",
                                           str(tmp_path / f"out{folder_in_processes}"), "--json", str(report)])
        assert result.exit_code == 0, result.output
        assert "broken.png" in result.stderr and "1 of 4 images could not be used" in result.stderr
        records[folder_in_processes] = json.loads(report.read_text())
    assert in_processes == [True, False]
    assert records[2] == records[100] and [len(r["faces"]) for r in records[2]] == [1, 1, 0]


def test_image_command_draws_prints_and_skips_bad_files(model_path, face_image, tmp_path):
    save_rgb(tmp_path / "in" / "face.jpg", face_image)
    (tmp_path / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "in" / "._face.jpg").write_bytes(b"\x00\x05\x16\x07")  # a Mac's shadow file: passed over
    result = CliRunner().invoke(main, ["image", str(tmp_path / "in"), "--model", str(model_path),
                                       "--out", str(tmp_path / "out"), "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    assert "broken.png" in result.stderr and "1 of 2 images could not be used" in result.stderr
    assert "images: " in result.stderr and "face.jpg: " in result.stdout  # a bar for a folder, results apart
    assert "images: " not in result.stdout and "broken.png" not in result.stdout
    assert (tmp_path / "out" / "face.detected.jpg").is_file()
    records = json.loads((tmp_path / "r.json").read_text())
    assert [r["image"].endswith("face.jpg") for r in records] == [True]
    assert len(records[0]["faces"]) == 1 and set(records[0]["faces"][0]) >= {"box", "label", "confidence"}

    # Drawn beside the inputs, then run again: the drawings are outputs, not more inputs.
    (tmp_path / "in" / "broken.png").unlink()
    (tmp_path / "in" / "._face.jpg").unlink()
    for _ in range(2):
        result = CliRunner().invoke(main, ["image", str(tmp_path / "in"), "--model", str(model_path)])
        assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["face.detected.jpg", "face.jpg"]


def test_images_without_a_face_found_by_dlib_bring_a_hint_of_the_other_detectors(model_path, face_image, tmp_path):
    save_rgb(tmp_path / "in" / "face.jpg", face_image)
    save_rgb(tmp_path / "in" / "wall.jpg", np.full((120, 160, 3), 128, np.uint8))
    result = CliRunner().invoke(main, ["image", str(tmp_path / "in"), "--model", str(model_path)])
    assert result.exit_code == 0, result.output
    assert "wall.jpg: no face found" in result.stdout
    # Images are looked at with the generator's cascade unless told otherwise; after HOG alone, it is suggested.
    assert "no face found in 1 of 2 images; dlib's auto misses many masked faces: try --detector maskdet\n" in result.stderr
    result = CliRunner().invoke(main, ["image", str(tmp_path / "in"), "--model", str(model_path), "--detector", "hog"])
    assert "dlib's hog misses many masked faces: try --detector maskdet or --detector auto" in result.stderr

    (tmp_path / "in" / "wall.jpg").unlink()
    result = CliRunner().invoke(main, ["image", str(tmp_path / "in" / "face.jpg"), "--model", str(model_path)])
    assert result.exit_code == 0 and "--detector maskdet" not in result.stderr


def test_drawings_of_images_with_the_same_name_do_not_overwrite_each_other(tmp_path):
    folder = tmp_path / "in"
    files = [folder / "x" / "a.jpg", folder / "x" / "a.png", folder / "y" / "a.jpg", folder / "y" / "b.jpg"]
    beside = drawn_targets(files, None)
    assert [path.relative_to(folder).as_posix() for path in beside] == [
        "x/a-jpg.detected.jpg", "x/a-png.detected.jpg", "y/a.detected.jpg", "y/b.detected.jpg"]
    gathered = drawn_targets(files, tmp_path / "out")
    assert [path.name for path in gathered] == [
        "x__a-jpg.detected.jpg", "x__a-png.detected.jpg", "y__a.detected.jpg", "y__b.detected.jpg"]
    assert all(path.parent == tmp_path / "out" for path in gathered)
    assert drawn_targets([folder / "y" / "b.jpg"], tmp_path / "out") == [tmp_path / "out" / "b.detected.jpg"]


def test_image_command_writes_one_picture_to_the_file_named(model_path, face_image, tmp_path):
    save_rgb(tmp_path / "a.jpg", face_image)
    save_rgb(tmp_path / "b.jpg", face_image)
    drawn = tmp_path / "drawn" / "a_labelled.png"
    result = CliRunner().invoke(main, ["image", str(tmp_path / "a.jpg"), "--model", str(model_path), "--out", str(drawn)])
    assert result.exit_code == 0, result.output
    assert drawn.read_bytes().startswith(b"\x89PNG") and load_rgb(drawn).shape == face_image.shape
    assert not list(tmp_path.glob("*.detected.jpg"))

    for out, message in ((tmp_path / "both.jpg", "a file name, but 2 images were given; give a folder"),
                         (tmp_path / "a.gif", "cannot write .gif pictures; use .jpg or .png")):
        images = [str(tmp_path / "a.jpg")] + ([str(tmp_path / "b.jpg")] if out.stem == "both" else [])
        result = CliRunner().invoke(main, ["image", *images, "--model", str(model_path), "--out", str(out)])
        assert result.exit_code == 1 and message in result.output and not out.exists()


def test_image_command_looks_for_faces_on_a_reduced_copy_and_reports_full_size_boxes(model_path, face_image,
                                                                                       tmp_path):
    large = cv2.resize(face_image, None, fx=4, fy=4, interpolation=cv2.INTER_LINEAR)  # as a phone photo is large
    save_rgb(tmp_path / "large.png", large)

    def boxes(*options):
        report = tmp_path / "r.json"
        result = CliRunner().invoke(main, ["image", str(tmp_path / "large.png"), "--model", str(model_path),
                                           "--out", str(tmp_path / "out"), "--json", str(report), *options])
        assert result.exit_code == 0, result.output
        return [face["box"] for record in json.loads(report.read_text()) for face in record["faces"]]

    full, reduced = boxes("--detect-side", "0"), boxes("--detect-side", "512")
    assert reduced and all(box[2] - box[0] > 150 for box in reduced)  # the face at the photo's scale ...
    for box in reduced:  # ... where the photo itself shows it
        error = min(np.abs(np.subtract(box, other)).max() for other in full)
        assert error < 0.15 * (box[2] - box[0])
    result = CliRunner().invoke(main, ["image", str(tmp_path / "large.png"), "--model", str(model_path),
                                       "--detect-side", "10"])
    assert result.exit_code == 2 and "--detect-side" in result.output and "0 or at least 64" in result.output


def test_image_records_give_the_upright_size_the_boxes_belong_to(model_path, face_image, tmp_path):
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: shown turned a quarter clockwise, as phones save portraits
    Image.fromarray(np.ascontiguousarray(np.rot90(face_image[:, :200], 1))).save(tmp_path / "turned.jpg", exif=exif)
    report = tmp_path / "r.json"
    result = CliRunner().invoke(main, ["image", str(tmp_path / "turned.jpg"), "--model", str(model_path),
                                       "--out", str(tmp_path / "out"), "--json", str(report)])
    assert result.exit_code == 0, result.output
    [record] = json.loads(report.read_text())
    assert record["size"] == [200, 256] and len(record["faces"]) == 1  # stored 256 x 200, shown 200 x 256
    x0, y0, x1, y1 = record["faces"][0]["box"]
    assert 0 <= x0 < x1 <= 200 and 0 <= y0 < y1 <= 256


def test_no_output_is_written_over_an_input(model_path, face_image, clip, tmp_path):
    save_rgb(tmp_path / "a.jpg", face_image)
    save_rgb(tmp_path / "a.detected.jpg", face_image)  # given by name, it is an input like any other
    untouched = {path: path.read_bytes() for path in (tmp_path / "a.jpg", tmp_path / "a.detected.jpg", clip)}
    for arguments in (["image", str(tmp_path / "a.jpg"), "--out", str(tmp_path / "a.jpg")],
                      ["image", str(tmp_path / "a.jpg"), "--json", str(tmp_path / "a.jpg")],
                      ["image", str(tmp_path / "a.jpg"), str(tmp_path / "a.detected.jpg")],
                      ["video", str(clip), "--out", str(clip), "--no-display"],
                      ["video", str(clip), "--json", str(clip), "--no-display"]):
        result = CliRunner().invoke(main, [*arguments, "--model", str(model_path)])
        assert result.exit_code == 1 and "is an input, and inputs are only read" in result.output, arguments
    assert all(path.read_bytes() == content for path, content in untouched.items())


def test_ctrl_c_in_a_folder_of_images_keeps_the_json_of_those_labelled(model_path, face_image, tmp_path, monkeypatch,
                                                                        ctrl_c_default):
    for number in range(4):
        marked = face_image.copy()
        marked[0, 0] = number  # which image a worker thread has in hand
        save_rgb(tmp_path / "in" / f"{number}.png", marked)

    def find(rgb):
        if rgb[0, 0, 0] == 2:  # Ctrl-C once image 1 is drawn, while image 2 is being worked on
            deadline = time.monotonic() + 10
            while not (tmp_path / "out" / "1.detected.jpg").exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            signal.raise_signal(signal.SIGINT)
            time.sleep(0.5)  # still at work when the main thread next looks
        return []

    monkeypatch.setattr("detect.cli._labeller", lambda *args, **kwargs: (find, None))
    result = CliRunner().invoke(main, ["image", str(tmp_path / "in"), "--model", str(model_path),
                                       "--out", str(tmp_path / "out"), "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 130 and "interrupted after 2 of 4 images" in result.stderr
    records = json.loads((tmp_path / "r.json").read_text())
    assert [Path(r["image"]).name for r in records] == ["0.png", "1.png"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Ctrl-C works as before afterwards


def test_bad_model_or_source_fails_in_one_line_before_work(model_path, tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["image", "x.jpg", "--model", str(tmp_path / "none.keras")])
    assert result.exit_code == 1 and "none.keras: model file not found" in result.output
    result = runner.invoke(main, ["video", str(tmp_path / "missing.mp4"), "--model", str(model_path), "--no-display"])
    assert result.exit_code == 1 and "missing.mp4: video file not found" in result.output
    result = runner.invoke(main, ["video", "97", "--model", str(model_path), "--no-display"])
    assert result.exit_code == 1 and "97: no camera with this index" in result.output
    for name in ("fake.mp4", "fake.jpg"):  # FFmpeg opens the second as a stream of JPEGs, then finds none
        (tmp_path / name).write_text("not a video")
        result = runner.invoke(main, ["video", str(tmp_path / name), "--model", str(model_path), "--no-display"])
        assert result.exit_code == 1 and f"{name}: cannot be read as a video" in result.output


def test_a_folder_with_no_images_is_one_clear_error(model_path, face_image, tmp_path):
    (tmp_path / "empty").mkdir()
    save_rgb(tmp_path / "one.png", face_image)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "read.txt").write_text("not a picture")
    result = CliRunner().invoke(main, ["image", str(tmp_path / "one.png"), str(tmp_path / "empty"),
                                       str(tmp_path / "notes"), "--model", str(model_path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{tmp_path / 'empty'}, {tmp_path / 'notes'}: no images (.jpg," in result.output
    assert not (tmp_path / "one.detected.jpg").exists()  # refused before any work


def test_a_bad_video_source_prints_only_the_one_line_reason(tmp_path):
    # FFmpeg and OpenCV print their own warnings straight to the terminal unless told not to.
    (tmp_path / "fake.jpg").write_text("not a video")
    for source, reason in ((str(tmp_path / "fake.jpg"), "cannot be read as a video"), ("97", "no camera"),
                           ("rtsp://127.0.0.1:1/none", "cannot be opened or read as a video stream")):
        result = subprocess.run([sys.executable, "-m", "detect", "video", source, "--no-display"], cwd=PROJECT,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 1 and result.stdout == ""
        assert result.stderr.count("\n") == 1 and reason in result.stderr


@pytest.fixture()
def clip(tmp_path, face_image):
    """A 12-frame video: the astronaut (a face of ~45 px) drifting right, at 320x240."""
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (320, 240))
    for shift in range(12):
        frame = np.zeros((240, 320, 3), np.uint8)
        frame[:, 2 * shift:2 * shift + 256][:240] = face_image[:240, :, ::-1]
        writer.write(frame)
    writer.release()
    return path


def test_video_command_writes_a_record_per_frame(model_path, clip, tmp_path):
    out, report = tmp_path / "annotated.mp4", tmp_path / "video.json"
    result = CliRunner().invoke(main, ["video", str(clip), "--model", str(model_path), "--no-display",
                                       "--every", "4", "--upsample", "1", "--out", str(out), "--json", str(report)])
    assert result.exit_code == 0, result.output
    written = json.loads(report.read_text())
    assert written["frames"] == 12 and len(written["records"]) == 12 and written["fps"] > 0
    assert written["interrupted"] is False
    assert [r["detected"] for r in written["records"]][:5] == [True, False, False, False, True]
    assert all(len(r["faces"]) == 1 for r in written["records"])
    capture = cv2.VideoCapture(str(out))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    capture.release()


def test_ctrl_c_ends_a_video_run_and_keeps_the_frames_seen(model_path, clip, tmp_path, monkeypatch):
    calls = []

    def find(rgb):
        calls.append(rgb.shape)
        if len(calls) == 3:  # Ctrl-C while the fifth frame is being detected on
            raise KeyboardInterrupt
        return []

    monkeypatch.setattr("detect.cli._labeller", lambda *args, **kwargs: (find, None))
    out, report = tmp_path / "annotated.mp4", tmp_path / "video.json"
    result = CliRunner().invoke(main, ["video", str(clip), "--model", str(model_path), "--no-display",
                                       "--every", "2", "--out", str(out), "--json", str(report)])
    assert result.exit_code == 130 and "4 frames" in result.output and "stopped by Ctrl-C" in result.output
    written = json.loads(report.read_text())
    assert written["interrupted"] is True
    assert written["frames"] == 4 and [r["frame"] for r in written["records"]] == [0, 1, 2, 3]
    capture = cv2.VideoCapture(str(out))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 4  # a playable file of the frames seen
    capture.release()


def test_a_stream_lost_for_good_keeps_the_frames_seen_and_fails(model_path, tmp_path, monkeypatch):
    from detect import sources

    monkeypatch.setattr(sources, "RECONNECT_PAUSE_S", 0.01)
    connections = iter([CountingCapture(5, sizes={0: (64, 48)}), CountingCapture(3, sizes={0: (64, 48)})])

    def open_source(name):  # the stream opens, and once again when lost; then it is gone
        if (capture := next(connections, None)) is None:
            raise sources.VideoError(f"{name}: cannot be opened or read as a video stream")
        return sources.VideoSource(name, capture, capture.read()[1])

    monkeypatch.setattr(sources, "open_source", open_source)
    monkeypatch.setattr("detect.cli._labeller", lambda *args, **kwargs: (lambda rgb: [], None))
    report = tmp_path / "video.json"
    result = CliRunner().invoke(main, ["video", "rtsp://cam/1", "--model", str(model_path),
                                       "--no-display", "--json", str(report)])
    assert result.exit_code == 1
    assert "Error: rtsp://cam/1: no frame came after frame" in result.stderr and "3 tries" in result.stderr
    written = json.loads(report.read_text())
    assert written["failure"].startswith("no frame came after frame") and written["frames"] >= 2
    numbers = [r["frame"] for r in written["records"]]
    assert numbers == sorted(set(numbers)) and numbers[-1] == 7  # the second connection's frames go on from 5


def test_json_lines_are_written_as_the_frames_come(model_path, tmp_path, monkeypatch):
    """A camera watched for hours: each frame's record is on disk before the next frame, the run's
    summary last."""
    from detect import sources

    monkeypatch.setattr(sources, "open_source", lambda name: sources.VideoSource(name, CountingCapture(8)))
    report = tmp_path / "not_yet_made" / "camera.jsonl"
    lines_before_each_frame = []

    def find(rgb):
        lines_before_each_frame.append(len(report.read_text().splitlines()) if report.exists() else 0)
        return []

    monkeypatch.setattr("detect.cli._labeller", lambda *args, **kwargs: (find, None))
    result = CliRunner().invoke(main, ["video", "clip.mp4", "--model", str(model_path), "--no-display",
                                       "--every", "1", "--json", str(report)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert [record["frame"] for record in lines[:-1]] == list(range(8))
    assert lines_before_each_frame == list(range(8))
    assert lines[-1]["source"] == "clip.mp4" and lines[-1]["frames"] == 8 and lines[-1]["failure"] is None
    assert "records" not in lines[-1]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
def test_json_lines_on_a_full_disk_fail_naming_the_file():
    from detect.video import RecordLines

    lines = RecordLines(Path("/dev/full"))  # every write to it fails as on a full disk
    with pytest.raises(OSError, match="No space left on device.*/dev/full"):
        lines.write({"frame": 0})


def test_records_given_away_as_they_come_are_not_kept():
    from detect.sources import VideoSource
    from detect.video import process_video

    given = []
    result = process_video(VideoSource("clip.mp4", CountingCapture(5)), lambda rgb: [], every=2, on_record=given.append)
    assert result.records == [] and result.frames == 5
    assert [(record["frame"], record["detected"]) for record in given] == [(0, True), (1, False), (2, True), (3, False),
                                                                           (4, True)]


def test_ctrl_c_while_the_model_loads_ends_quietly_with_status_130(model_path, clip, tmp_path, monkeypatch):
    def loading(*args, **kwargs):
        raise KeyboardInterrupt  # TensorFlow takes seconds to load: long enough to change one's mind

    monkeypatch.setattr("detect.cli._labeller", loading)
    report = tmp_path / "video.json"
    result = CliRunner().invoke(main, ["video", str(clip), "--model", str(model_path), "--no-display",
                                       "--json", str(report)])
    assert result.exit_code == 130 and "interrupted" in result.output and "Aborted" not in result.output
    assert not report.exists()


class CountingCapture:
    """A stand-in for ``cv2.VideoCapture``: frames numbered 0..count-1 as fast as they are asked for;
    with ``gated``, frames after the first only once ``gate`` is set; ``broken_at``: that frame raises.
    Frames are ``sizes[n]`` (width, height) from frame n on; it reports the first size, or with
    ``sizeless`` 0 x 0, as some cameras do, and ``fps`` frames a second; the last frame's time stamp
    is ``stamps[n]`` milliseconds, or 0 (none). Frame n's pixels are n * ``step`` (mod 256)."""

    def __init__(self, count: int, gated: bool = False, broken_at: int | None = None,
                 sizes: dict[int, tuple[int, int]] | None = None, sizeless: bool = False,
                 stamps: list[float] | None = None, step: int = 1, fps: float = 10.0):
        self.count, self.given, self.released, self.broken_at, self.step = count, 0, False, broken_at, step
        self.fps = fps
        self.sizes, self.sizeless, self.stamps = sizes or {0: (2, 2)}, sizeless, stamps
        self.gate, self.exhausted = threading.Event(), threading.Event()
        if not gated:
            self.gate.set()

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.given > 0:
            self.gate.wait()
        if self.given == self.count:
            self.exhausted.set()
            return False, None
        if self.given == self.broken_at:
            raise cv2.error("corrupt packet")
        width, height = self.sizes[max(n for n in self.sizes if n <= self.given)]
        self.given += 1
        return True, np.full((height, width, 3), (self.given - 1) * self.step % 256, np.uint8)

    def get(self, prop: int) -> float:
        reported = {cv2.CAP_PROP_FPS: self.fps, cv2.CAP_PROP_FRAME_WIDTH: self.sizes[0][0],
                    cv2.CAP_PROP_FRAME_HEIGHT: self.sizes[0][1],
                    cv2.CAP_PROP_POS_MSEC: self.stamps[self.given - 1] if self.stamps and self.given else 0.0}
        return 0.0 if self.sizeless and prop != cv2.CAP_PROP_FPS else float(reported.get(prop, 0))

    def release(self) -> None:
        self.released = True


@pytest.mark.parametrize("live", [False, True])
def test_a_file_gives_every_frame_and_a_camera_only_the_newest(live):
    from detect.sources import SourceLost, frames

    capture = CountingCapture(30, gated=True)
    stream = frames(capture, buffered=64, live=live, fps=10.0)
    first, first_time, _ = next(stream)
    capture.gate.set()
    assert capture.exhausted.wait(10)  # the source ran ahead while the first frame was being worked on
    rest = []
    with pytest.raises(SourceLost) if live else contextlib.nullcontext():  # a camera has no end: it is lost
        rest.extend(stream)
    numbers = [first] + [number for number, _, _ in rest]
    assert all(int(pixels[0, 0, 0]) == number for number, _, pixels in rest)
    if live:
        assert numbers == [0, 29]  # everything in between was dropped, the newest kept
        assert first_time == 0.0 and rest[0][1] > 0.0  # counted from the first frame's arrival
    else:
        assert numbers == list(range(30))
        assert [seconds for _, seconds, _ in rest] == pytest.approx([n / 10 for n in range(1, 30)])  # no stamps: fps
    assert capture.released


def test_leaving_a_live_stream_early_stops_its_reader():
    from detect.sources import frames

    capture = CountingCapture(10**9)
    stream = frames(capture, live=True)
    taken = [next(stream)[0] for _ in range(3)]
    stream.close()
    assert taken == sorted(set(taken)) and capture.released
    given = capture.given
    time.sleep(0.2)
    assert capture.given == given  # nothing reads any more


@pytest.mark.parametrize("live", [False, True])
def test_a_stream_that_breaks_ends_with_the_reason_instead_of_hanging(live):
    from detect.sources import SourceLost, frames

    capture = CountingCapture(30, broken_at=3)
    taken = []
    with pytest.raises(SourceLost, match="frame 3: cannot be read"):
        for number, _, _ in frames(capture, live=live):
            taken.append(number)
    assert taken == ([0, 1, 2] if not live else sorted(set(taken))) and capture.released


def test_a_lost_stream_is_opened_again_and_its_frames_go_on(monkeypatch):
    from detect import sources

    monkeypatch.setattr(sources, "RECONNECT_PAUSE_S", 0.01)
    first, second = CountingCapture(3), CountingCapture(2)
    opened = []

    def reopen():
        opened.append(len(opened))
        if len(opened) != 2:  # the camera is not back yet, then gone for good
            raise sources.VideoError("rtsp://cam/1: cannot be opened or read as a video stream")
        return sources.VideoSource("rtsp://cam/1", second)

    taken = []
    with pytest.raises(sources.SourceLost, match="no frame came after frame 4, and 3 tries"):
        for number, _, _ in sources.frames(first, buffered=64, live=True, reopen=reopen):
            taken.append(number)
            time.sleep(0.02)  # slower than the source: the newest frame only
    assert len(opened) == 5  # one failed, one gave frames, then three in a row failed
    assert taken == sorted(set(taken)) and taken[-1] == 4  # numbered on over both captures, the last one given
    assert first.released and second.released


def test_a_camera_that_stops_sending_is_lost_without_a_reopener():
    from detect.sources import SourceLost, frames

    capture = CountingCapture(2)
    with pytest.raises(SourceLost, match="no frame came after frame 1$"):
        list(frames(capture, live=True))
    assert capture.released


@pytest.mark.parametrize("live", [False, True])
def test_ctrl_c_while_waiting_for_a_frame_stops_the_stream(live, ctrl_c_default):
    from detect.sources import frames

    capture = CountingCapture(30, gated=True)  # the second frame comes only after Ctrl-C
    stream = frames(capture, live=live)
    next(stream)

    def press_ctrl_c_then_let_the_frame_come():
        time.sleep(0.2)  # while the stream waits
        signal.raise_signal(signal.SIGINT)
        time.sleep(0.5)  # the stream's end waits for the reader to stop
        capture.gate.set()

    threading.Thread(target=press_ctrl_c_then_let_the_frame_come).start()
    with pytest.raises(KeyboardInterrupt):
        next(stream)
    assert capture.released and signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_file_is_opened_once_and_its_probed_first_frame_comes_first(clip):
    from detect.sources import frames, open_source

    source = open_source(str(clip))
    assert not source.live and source.first is not None and source.length == 12
    streamed = list(frames(source.capture, first=source.first))
    capture = cv2.VideoCapture(str(clip))
    direct = []
    while (read := capture.read())[0]:
        direct.append(read[1])
    capture.release()
    assert [number for number, _, _ in streamed] == list(range(len(direct))) and len(direct) == 12
    assert [seconds for _, seconds, _ in streamed] == pytest.approx([n / 10 for n in range(12)])  # a 10-fps clip
    assert all(np.array_equal(frame, expected) for (_, _, frame), expected in zip(streamed, direct))


def test_a_stream_url_is_opened_as_a_video_and_an_ip_cameras_runs_live(clip):
    from detect.sources import VideoError, frames, is_live, open_source

    assert [is_live(s) for s in ("0", "rtsp://cam.local/1", "RTSP://cam/1", "http://host/clip.mp4", "clip.mp4",
                                 "C:/clips/a.mp4")] == [True, True, True, False, False, False]
    source = open_source(clip.resolve().as_uri())  # file://..., as FFmpeg reads an http:// file
    assert not source.live and source.first is not None and source.length == 12
    assert [number for number, _, _ in frames(source.capture, first=source.first)] == list(range(12))
    with pytest.raises(VideoError, match="rtsp://127.0.0.1:1/none: cannot be opened or read as a video stream"):
        open_source("rtsp://127.0.0.1:1/none")  # nothing listens on port 1: refused at once


def test_frames_are_timed_by_the_files_stamps_where_the_frame_rate_varies():
    from detect.sources import frame_time, frames

    stamps = [0.0, 33.3, 66.7, 100.0, 200.0, 300.0]  # 30 frames a second, then 10 (a phone in dim light)
    capture = CountingCapture(6, stamps=stamps)
    assert [seconds for _, seconds, _ in frames(capture, fps=15.0)] == pytest.approx([ms / 1000 for ms in stamps])
    assert frame_time(0.0, 5, 15.0) == pytest.approx(5 / 15)  # a file that gives no stamps


def test_an_annotated_video_keeps_every_frame_at_the_first_frames_size(tmp_path):
    from detect.sources import VideoSource
    from detect.video import process_video

    capture = CountingCapture(6, sizes={0: (64, 48), 3: (32, 24)}, sizeless=True)  # and changes size
    out = tmp_path / "out.mp4"
    result = process_video(VideoSource("stream.mp4", capture), lambda rgb: [], every=2, out=out)
    assert result.frames == 6 and capture.released
    written = cv2.VideoCapture(str(out))
    assert int(written.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    assert (written.get(cv2.CAP_PROP_FRAME_WIDTH), written.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (64, 48)
    written.release()
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_an_annotated_video_of_a_variable_rate_file_keeps_its_time(tmp_path):
    from detect.sources import VideoSource
    from detect.video import process_video

    # 30 frames a second for 0.1 s, then 5 (a phone in dim light); the file says 10 on average.
    stamps = [0.0, 33.3, 66.7, 100.0, 300.0, 500.0, 700.0]
    capture = CountingCapture(7, sizes={0: (64, 48)}, stamps=stamps, step=30)
    out = tmp_path / "vfr.mp4"
    result = process_video(VideoSource("phone.mp4", capture), lambda rgb: [], every=1, out=out)
    assert [record["time"] for record in result.records] == pytest.approx([ms / 1000 for ms in stamps], abs=1e-3)
    written = cv2.VideoCapture(str(out))
    shown = []
    while (read := written.read())[0]:
        shown.append(int(round(read[1].mean() / 30)))  # CountingCapture's frame n is filled with 30 n
    written.release()
    # At 10 frames a second, frame k of the video shows the newest frame of the file at k / 10 s.
    assert shown == [0, 3, 3, 4, 4, 5, 5, 6]


def test_a_file_reporting_its_time_base_for_a_frame_rate_gets_a_playable_video(tmp_path):
    from detect.sources import VideoSource
    from detect.video import MAX_FILE_VIDEO_FPS, process_video

    stamps = [n * 1000 / 30 for n in range(15)]  # half a second at 30 frames a second ...
    capture = CountingCapture(15, sizes={0: (64, 48)}, stamps=stamps, fps=1000.0)  # ... said to be 1000 (WebM)
    out = tmp_path / "webm.mp4"
    process_video(VideoSource("browser.webm", capture), lambda rgb: [], every=1, out=out)
    written = cv2.VideoCapture(str(out))
    assert written.get(cv2.CAP_PROP_FPS) == MAX_FILE_VIDEO_FPS == 60
    assert int(written.get(cv2.CAP_PROP_FRAME_COUNT)) == 29  # each frame twice, the last once: half a second
    written.release()


def test_a_camera_video_keeps_the_cameras_time_through_dropped_frames(tmp_path, monkeypatch):
    from detect import sources
    from detect.sources import VideoSource
    from detect.video import process_video

    monkeypatch.setattr(sources, "RECONNECT_PAUSE_S", 0.01)
    monkeypatch.setattr(sources, "open_source", lambda name: sources.VideoSource(name, CountingCapture(0)))

    capture = CountingCapture(50, sizes={0: (64, 48)})  # frames come faster than they are worked on

    def slow(rgb):
        time.sleep(0.02)
        return []

    out = tmp_path / "camera.mp4"
    result = process_video(VideoSource("0", capture), slow, every=1, out=out)
    assert result.frames < 50 and result.failure  # frames were dropped, then the camera was gone ...
    written = cv2.VideoCapture(str(out))
    assert int(written.get(cv2.CAP_PROP_FRAME_COUNT)) == 50 and written.get(cv2.CAP_PROP_FPS) == 10  # ... not time
    written.release()


def test_a_video_that_breaks_keeps_the_frames_before_it_and_says_why(tmp_path):
    from detect.sources import VideoSource
    from detect.video import process_video

    out = tmp_path / "out.mp4"
    out.write_bytes(b"last run's video")
    capture = CountingCapture(30, broken_at=4, sizes={0: (64, 48)})
    result = process_video(VideoSource("stream.mp4", capture), lambda rgb: [], out=out)
    assert result.frames == 4 and result.failure.startswith("frame 4: cannot be read")
    assert result.as_json("stream.mp4")["failure"] == result.failure
    written = cv2.VideoCapture(str(out))
    assert int(written.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
    written.release()
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"] and capture.released


def test_a_camera_lost_before_its_first_frame_leaves_the_earlier_video_whole(tmp_path, monkeypatch):
    from detect import sources, video

    monkeypatch.setattr(sources, "RECONNECT_PAUSE_S", 0.01)
    monkeypatch.setattr(sources, "open_source", lambda name: sources.VideoSource(name, CountingCapture(0)))
    out = tmp_path / "out.mp4"
    out.write_bytes(b"last run's video")
    with pytest.raises(sources.SourceLost, match="^0: no frame came, and 3 tries to open it again"):
        video.process_video(sources.VideoSource("0", CountingCapture(0)), lambda rgb: [], out=out)
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"] and out.read_bytes() == b"last run's video"


def test_evaluate_on_a_voc_folder(model_path, face_image, tmp_path):
    data = tmp_path / "voc"
    save_rgb(data / "images" / "one.png", face_image)
    (data / "annotations").mkdir()
    (data / "annotations" / "one.xml").write_text(
        "<annotation><filename>one.png</filename>"
        "<object><name>with_mask</name><bndbox><xmin>80</xmin><ymin>30</ymin><xmax>140</xmax><ymax>95</ymax></bndbox></object>"
        "<object><name>mask_weared_incorrect</name><bndbox><xmin>0</xmin><ymin>200</ymin><xmax>20</xmax><ymax>220</ymax></bndbox></object>"
        "</annotation>")
    report = tmp_path / "eval.json"
    result = CliRunner().invoke(main, ["evaluate", "--model", str(model_path), "--data", str(data), "--report", str(report)])
    assert result.exit_code == 0, result.output
    written = json.loads(report.read_text())
    assert written["detector"] == "auto" and written["images"] == 1 and written["ms_per_image"] > 0
    masked = written["classes"]["with_mask"]
    assert masked["n"] == 1 and masked["found"][">=40"] == 1.0 and masked["found"]["<24"] is None
    assert masked["missed_by_detector"] == 0
    assert masked["recall"]["all"] in (0.0, 1.0) and masked["misclassified"] == 1 - masked["recall"]["all"]
    assert masked["recall50"]["all"] <= masked["recall"]["all"]
    assert masked[SIZED_AP] == masked["ap50"]  # the one face is taller than 40 px
    wrong_wear = written["classes"]["mask_weared_incorrect"]
    assert wrong_wear["recall"] is None and wrong_wear["ap50"] is None and wrong_wear["found"]["<24"] == 0.0
    assert wrong_wear["recall50"] is None and wrong_wear[SIZED_AP] is None
    assert f"({SIZED_AP} " in result.output and "at IoU 0.5" in result.output
    result = CliRunner().invoke(main, ["evaluate", "--model", str(model_path), "--data", str(data), "--no-classify"])
    assert result.exit_code == 1 and "the auto detector needs the classifier" in result.output

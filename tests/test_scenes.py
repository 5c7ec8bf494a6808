"""Generated scenes with boxes, and the centre-point detector's targets, network and training."""
import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from augment.cli import main as augment_main
from augment.geometry import box_iou
from augment.scenes import SceneSettings, annotation_box, compose_scene, face_box_from_annotation, load_tiles, _textures
from detect.evaluate import read_voc
from detect.targets import STRIDE, decode, render_targets


def test_targets_decode_back_to_the_boxes():
    boxes = np.array([[40, 30, 90, 100], [150, 120, 170, 142]], np.float32)
    heat, regression, weight = render_targets(boxes, np.array([0, 1]), (32, 32), 2)
    assert heat.shape == (32, 32, 2) and heat.max() == 1.0 and weight.sum() == 2
    found = decode(heat, regression, threshold=0.5)
    assert sorted(label for _, label, _, _ in found) == [0, 1]
    for box, label, score, shares in found:
        assert box_iou(box, tuple(boxes[label])) > 0.99 and score == pytest.approx(1.0)
        assert shares.shape == (2,) and shares.sum() == pytest.approx(1.0) and shares.argmax() == label


def test_decoded_score_is_the_chance_of_a_face_of_any_label():
    heat = np.zeros((8, 8, 2), np.float32)
    heat[3, 4] = (0.3, 0.3)  # a face the detector cannot place in one class
    heat[6, 1] = (0.0, 0.2)
    regression = np.zeros((8, 8, 4), np.float32)
    found = decode(heat, regression, threshold=0.25)
    assert len(found) == 1
    _, _, score, shares = found[0]
    assert score == pytest.approx(0.51) and np.allclose(shares, 0.5)


def test_targets_skip_boxes_off_the_grid_or_degenerate():
    boxes = np.array([[500, 500, 540, 540], [10, 10, 11, 30]], np.float32)
    heat, _, weight = render_targets(boxes, np.array([0, 1]), (16, 16), 2)
    assert heat.max() == 0 and weight.sum() == 0
    assert decode(heat, np.zeros((16, 16, 4), np.float32)) == []
    assert STRIDE == 8


def test_annotation_box_is_the_face_box_reframed():
    x0, y0, x1, y1 = annotation_box((100.0, 100.0, 200.0, 200.0))
    assert x1 - x0 < 100 and y1 - y0 > 100 and (y0 + y1) / 2 > 150  # narrower, taller, lower
    assert face_box_from_annotation((x0, y0, x1, y1)) == pytest.approx((100.0, 100.0, 200.0, 200.0))


def test_clutter_regions_hold_no_face(face_image, face_landmarks):
    from augment.faces import face_box
    from augment.geometry import share_covered
    from augment.scenes import clutter_region

    face = annotation_box(face_box(face_landmarks))
    rng = np.random.default_rng(0)
    regions = {clutter_region(face, face_image.shape, rng) for _ in range(12)} - {None}
    assert len(regions) == 3  # below the chin, left and right of the face
    for region in regions:
        assert 0 <= region[0] < region[2] <= 256 and 0 <= region[1] < region[3] <= 256
        assert share_covered(face, region) < 0.15  # at most a strip of the face's edge
    width, height = face[2] - face[0], face[3] - face[1]  # a crop cut at the face's box: no room beside it
    assert clutter_region((0.0, 0.0, width, height), (int(height), int(width), 3), rng) is None


@pytest.fixture(scope="module")
def scenes_dir(tmp_path_factory, face_image):
    """A few scenes made end to end by the CLI from one real face."""
    from augment.images import save_rgb

    root = tmp_path_factory.mktemp("scenes")
    save_rgb(root / "raw" / "face.png", face_image)
    result = CliRunner().invoke(augment_main, ["scenes", "--raw", str(root / "raw"), "--out", str(root / "out"),
                                               "--count", "6", "--workers", "1"])
    assert result.exit_code == 0, result.output
    return root / "out"


def test_scenes_have_matching_voc_coco_and_manifest(scenes_dir):
    records = [json.loads(line) for line in (scenes_dir / "manifest.jsonl").read_text().splitlines()]
    coco = json.loads((scenes_dir / "annotations.json").read_text())
    assert len(records) == 6 == len(coco["images"])
    assert sum(len(r["objects"]) for r in records) == len(coco["annotations"]) > 6
    for record in records:
        name, truths = read_voc(scenes_dir / "annotations" / (record["image"].split("/")[1][:-4] + ".xml"))
        assert name == record["image"].split("/")[1]
        assert [t.label for t in truths] == [o["label"] for o in record["objects"]]
        for truth in truths:
            x0, y0, x1, y1 = truth.box
            assert 0 <= (x0 + x1) / 2 <= record["width"] and 0 <= (y0 + y1) / 2 <= record["height"]
    labels = {o["label"] for r in records for o in r["objects"]}
    assert labels == {"with_mask", "without_mask"}


def test_scenes_are_reproducible_and_resume(scenes_dir):
    before = (scenes_dir / "images" / "scene_000003.jpg").read_bytes()
    tiles, textures = load_tiles(scenes_dir / "faces"), _textures()
    one, objects = compose_scene(np.random.default_rng([0, 3]), tiles, textures, SceneSettings())
    again, same = compose_scene(np.random.default_rng([0, 3]), tiles, textures, SceneSettings())
    assert np.array_equal(one, again) and objects == same
    result = CliRunner().invoke(augment_main, ["scenes", "--raw", str(scenes_dir.parent / "raw"), "--out",
                                               str(scenes_dir), "--count", "6", "--workers", "1"])
    assert result.exit_code == 0 and (scenes_dir / "images" / "scene_000003.jpg").read_bytes() == before


def test_scenes_given_to_the_generator_as_its_photos_are_refused(scenes_dir, tmp_path):
    result = CliRunner().invoke(augment_main, ["generate", "--raw", str(scenes_dir), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and not (tmp_path / "out").exists()
    assert f"{scenes_dir}: generated scenes, not photos of unmasked faces" in result.output


# What the tests below train: small and quick, and the same whether from the command line or not.
TINY_DETECTOR = {"weights": "none", "side": 64, "inference_side": 128, "epochs": 2, "batch_size": 4,
                 "learning_rate": 0.002}


@pytest.fixture(scope="module")
def tiny_detector(scenes_dir, tmp_path_factory):
    """A detector trained from the command line on the scenes, for two epochs of one-batch steps."""
    from detect.cli import main as detect_main

    model = tmp_path_factory.mktemp("detector") / "det.keras"
    options = [item for key, value in TINY_DETECTOR.items() for item in (f"--{key.replace('_', '-')}", str(value))]
    result = CliRunner().invoke(detect_main, ["train-detector", "--scenes", str(scenes_dir), "--model", str(model),
                                              *options])
    assert result.exit_code == 0, result.output
    assert f"wrote {model}" in result.output
    return model


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_detector_trains_saves_loads_and_detects(tiny_detector, tmp_path, face_image, brightness_model_path):
    from detect.cli import main as detect_main
    from augment.images import save_rgb
    from detect.faces import CLASSIFIER_RAMP, classifier_weight, fuse_opinions, make_labeller
    from detect.network import load_detector
    from train.model import ModelError, build_network, load_classifier, load_model_file, save_model_file
    from train.views import RESIZE, face_views

    model = tiny_detector
    assert load_model_file(model, "detector")[1]["recipe"]["learning_rate"] == 0.002
    metrics = json.loads((model.parent / "det" / "metrics.json").read_text())
    assert len(metrics["history"]["loss"]) == 2 and (model.parent / "det" / "curves.png").is_file()
    assert not (model.parent / "det" / "checkpoint.keras").exists()  # a finished run leaves none behind
    detector = load_detector(model)
    assert detector.labels == ["with_mask", "without_mask"] and detector.side == 128
    found = detector.detect(face_image, threshold=0.0)
    assert found and all(face.label in detector.labels and 0 <= face.score <= 1 for face in found)
    find, labels = make_labeller("maskdet", None, model, threshold=0.0)
    faces = find(face_image)
    assert labels == detector.labels and len(faces) == len(found)
    assert [face.label for face in faces] == [face.label for face in found]  # alone, the detector's labels stand
    single = detector.detect(face_image, threshold=0.0, mirror=False)
    find_single, _ = make_labeller("maskdet", None, model, threshold=0.0, mirror=False)
    assert single and [face.box for face in find_single(face_image)] == [item.box for item in single]

    # With a classifier (labels in the other order), it weighs in on faces over 24 px.
    classifier = tmp_path / "classifier.keras"
    network = build_network(0.35, "none", 32, classes=2, seed=0)
    save_model_file(network.model, classifier, {"labels": ["without_mask", "with_mask"], "input_size": 32,
                                                "resize": RESIZE})
    find, _ = make_labeller("maskdet", classifier, model, threshold=0.0)
    fused = find(face_image)
    assert [face.box for face in fused] == [face.box for face in faces]
    assert all(face.confidence <= face.score for face in fused)
    tall = [i for i, face in enumerate(faces) if face.box[3] - face.box[1] > CLASSIFIER_RAMP[0]]
    short = [i for i in range(len(faces)) if i not in tall]
    assert tall and any(fused[i].confidence != pytest.approx(faces[i].confidence) for i in tall)
    assert all(fused[i] == faces[i] for i in short)
    # The classifier's opinion is the mean of its two views of each face, as for dlib's faces.
    find, _ = make_labeller("maskdet", brightness_model_path, model, threshold=0.0)
    judge = load_classifier(brightness_model_path)
    opinion = judge.predict_views([face_views(face_image, face_box_from_annotation(found[i].box), judge.size)
                                   for i in tall])
    shares = fuse_opinions(np.stack([found[i].shares for i in tall]), opinion,
                           np.array([classifier_weight(found[i].box[3] - found[i].box[1]) for i in tall]))
    assert [face.confidence for face in (find(face_image)[i] for i in tall)] == pytest.approx(
        [found[i].score * share.max() for i, share in zip(tall, shares)], abs=1e-5)
    other = tmp_path / "other.keras"
    save_model_file(network.model, other, {"labels": ["cat", "dog"], "input_size": 32, "resize": RESIZE})
    with pytest.raises(ModelError, match="differ from the detector's"):
        make_labeller("maskdet", other, model)

    # From the command line: --no-classify needs no classifier file; without it a missing one is a one-line error.
    save_rgb(tmp_path / "photo.png", face_image)
    arguments = ["image", str(tmp_path / "photo.png"), "--detector", "maskdet", "--detector-model", str(model),
                 "--threshold", "0", "--model", str(tmp_path / "missing.keras"), "--json", str(tmp_path / "out.json")]
    result = CliRunner().invoke(detect_main, arguments + ["--no-classify"])
    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / "out.json").read_text())
    assert [face["label"] for face in written[0]["faces"]] == [face.label for face in faces]
    result = CliRunner().invoke(detect_main, arguments + ["--no-classify", "--no-mirror"])
    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / "out.json").read_text())
    assert [face["box"] for face in written[0]["faces"]] == [[round(float(v), 1) for v in item.box] for item in single]
    result = CliRunner().invoke(detect_main, arguments)
    assert result.exit_code == 1 and "missing.keras" in result.output
    with pytest.raises(ModelError, match="is a mask detector, not a mask classifier"):
        load_classifier(model)
    result = CliRunner().invoke(detect_main, ["train-detector", "--scenes", str(tmp_path / "nothing"), "--model",
                                              str(tmp_path / "unmade.keras"), "--weights", "none"])
    assert result.exit_code == 1 and "no manifest.jsonl" in result.output
    crops = tmp_path / "crops"  # a generator's dataset of face crops, given for scenes
    crops.mkdir()
    (crops / "manifest.jsonl").write_text(json.dumps({"path": "with_mask/a.jpg", "label": "with_mask"}) + "\n")
    result = CliRunner().invoke(detect_main, ["train-detector", "--scenes", str(crops), "--model",
                                              str(tmp_path / "unmade.keras"), "--weights", "none"])
    assert result.exit_code == 1 and not isinstance(result.exception, KeyError)
    assert f"{crops / 'manifest.jsonl'}: line 1 is not a scene record" in result.output
    result = CliRunner().invoke(detect_main, ["train-detector", "--scenes", str(crops), "--model",
                                              str(tmp_path / "detector.h5"), "--weights", "none"])
    assert result.exit_code == 1 and "detector.h5: a model file's name ends in .keras" in result.output


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_interrupted_detector_training_resumes_where_it_stopped(scenes_dir, tiny_detector, tmp_path, monkeypatch):
    import detect.train_detector as trainer
    from train.backend import keras
    from train.checkpoint import read_checkpoint
    from train.model import load_model_file

    recipe = trainer.DetectorRecipe(**TINY_DETECTOR)
    whole = json.loads((tiny_detector.parent / "det" / "metrics.json").read_text())

    # The stream of a resumed run is the uninterrupted one's, from where it stopped.
    records = [r for r in trainer.load_scenes(scenes_dir) if trainer.split_of(r["image"]) != "val"]
    stream = [images.numpy() for images, _ in trainer.scene_dataset(records, recipe, True).take(3)]
    later = [images.numpy() for images, _ in trainer.scene_dataset(records, recipe, True, skip=4).take(2)]
    assert all(np.array_equal(a, b) for a, b in zip(stream[1:], later))

    class Interrupt(keras().callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "epoch_bar", lambda *args: Interrupt())
    model = tmp_path / "det.keras"
    with pytest.raises(KeyboardInterrupt):
        trainer.train_detector(scenes_dir, model, recipe, progress=False)
    checkpoint = tmp_path / "det" / "unfinished" / "checkpoint.keras"
    state = read_checkpoint(checkpoint)
    assert not model.exists() and state["epochs_done"] == 1 and len(state["history"]["loss"]) == 1
    monkeypatch.undo()

    # From the command line, Ctrl-C says where the finished epochs are.
    from detect.cli import main as detect_main

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "train_detector", ctrl_c)
    result = CliRunner().invoke(detect_main, ["train-detector", "--scenes", str(scenes_dir), "--model", str(model),
                                              "--weights", "none"])
    assert result.exit_code == 130
    assert f"every finished epoch, in {checkpoint.parent}, is kept; run the same command again" in result.stderr
    monkeypatch.undo()

    # Other settings do not resume it; the same ones go on from epoch 2 and end as the uninterrupted run.
    assert trainer.resume(keras().Sequential(), checkpoint, {"recipe": "other"}) is None
    resumed = trainer.train_detector(scenes_dir, model, recipe, progress=False)
    assert resumed["history"]["loss"][0] == state["history"]["loss"][0]
    assert resumed["history"]["loss"] == pytest.approx(whole["history"]["loss"], rel=1e-3)
    weights = load_model_file(model, "detector")[0].get_weights()
    reference = load_model_file(tiny_detector, "detector")[0].get_weights()
    assert all(np.allclose(a, b, rtol=1e-3, atol=1e-5) for a, b in zip(weights, reference))
    assert not checkpoint.parent.exists()


def test_pose_tile_moves_landmarks_with_the_pixels(face_image, face_landmarks):
    from augment.faces import face_box, find_faces
    from augment.scenes import pose_tile

    settings = SceneSettings(roll=15.0, yaw=0.0)  # dlib measures flat-turned faces a little differently
    for seed in range(4):
        posed, moved = pose_tile(face_image, face_landmarks, np.random.default_rng(seed), settings)
        assert posed.shape == face_image.shape and moved.shape == (68, 2)
        found = find_faces(posed)
        assert len(found) == 1  # the known answer: landmarks measured again on the posed picture
        assert box_iou(face_box(found[0].landmarks), face_box(moved)) > 0.93


def test_pose_tile_turns_landmarks_exactly_with_the_pixels(face_landmarks):
    from augment.scenes import pose_tile

    dots = np.zeros((256, 256, 3), np.uint8)
    chosen = face_landmarks[::6]
    for x, y in chosen:
        cv2.circle(dots, (int(round(x)), int(round(y))), 1, (255, 255, 255), -1)
    settings = SceneSettings(roll=15.0, yaw=30.0)
    for seed in range(4):
        posed, moved = pose_tile(dots, chosen, np.random.default_rng(seed), settings)
        _, _, _, centres = cv2.connectedComponentsWithStats((posed[:, :, 0] > 40).astype(np.uint8))
        # Each landmark went where its dot went (two dots close together may merge into one).
        distances = [np.hypot(*(centres[1:] - point).T).min() for point in moved]
        assert max(distances) < 1.5


def test_suppress_keeps_the_best_of_overlapping_boxes():
    from detect.network import Detection, suppress

    shares = np.array([0.5, 0.5])
    first, best, apart = (Detection((0, 0, 10, 10), "with_mask", 0.6, shares),
                          Detection((1, 0, 11, 10), "without_mask", 0.9, shares),
                          Detection((50, 50, 60, 60), "with_mask", 0.4, shares))
    assert suppress([first, best, apart]) == [best, apart]
    assert suppress([]) == []


def test_drop_parts_drops_boxes_inside_a_close_up_face():
    from detect.network import Detection, drop_parts

    shares = np.array([0.5, 0.5], np.float32)
    face = (0, 0, 100, 100)
    eyes, chin_half_out, apart, whole = (Detection(box, "without_mask", 0.9, shares) for box in
                                         [(20, 20, 80, 50), (30, 60, 70, 140), (150, 0, 200, 50), (-5, 0, 105, 100)])
    # The eyes lie inside the face, the chin box half inside; a face beside it and a box as large
    # as the face (the same face, left to suppression) stay.
    assert drop_parts([eyes, chin_half_out, apart, whole], [face]) == [apart, whole]
    assert drop_parts([eyes, chin_half_out], [face], inside=0.6) == [chin_half_out]
    assert drop_parts([eyes], []) == [eyes]


def test_detect_reduces_a_large_image_once_and_maps_the_boxes_back(monkeypatch):
    from detect.network import Detection, Detector

    detector = Detector.__new__(Detector)  # the looks themselves are replaced: no network needed
    detector.side = 100
    seen = []

    def looks(rgb, threshold, side, mirror):
        seen.append(rgb.shape)
        return [Detection((10.0, 20.0, 30.0, 40.0), "with_mask", 0.9, np.array([0.9, 0.1], np.float32))]

    monkeypatch.setattr(detector, "_looks", looks)
    [found] = detector.detect(np.zeros((300, 400, 3), np.uint8))
    assert seen == [(75, 100, 3)] and found.box == pytest.approx((40.0, 80.0, 120.0, 160.0))
    [small] = detector.detect(np.zeros((60, 80, 3), np.uint8))  # no larger than the side: looked at as it is
    assert seen[-1] == (60, 80, 3) and small.box == (10.0, 20.0, 30.0, 40.0)
    # A panorama keeps half the side on its short side, as a 2:1 photo does, rather than shrink to 100 x 12.
    [wide] = detector.detect(np.zeros((300, 2400, 3), np.uint8))
    assert seen[-1] == (50, 400, 3) and wide.box == pytest.approx((60.0, 120.0, 180.0, 240.0))


def test_inputs_are_padded_to_few_shapes_and_a_panorama_on_a_coarser_grid():
    from detect.network import pad_to_grid

    image = np.full((100, 150, 3), 7, np.uint8)
    padded = pad_to_grid(image)
    assert padded.shape == (128, 192, 3) and (padded[:100, :150] == 7).all() and padded.sum() == image.sum()
    assert pad_to_grid(np.zeros((320, 640, 3), np.uint8)).shape == (320, 640, 3)  # 2:1 is not a panorama
    assert pad_to_grid(np.zeros((250, 1100, 3), np.uint8)).shape == (256, 1280, 3)
    assert pad_to_grid(np.zeros((1100, 250, 3), np.uint8)).shape == (1280, 256, 3)


def test_mirrored_box_is_the_same_box_in_the_mirror_image():
    from detect.network import mirrored_box

    image = np.zeros((20, 30), np.uint8)
    image[4:9, 2:12] = 1  # a box (2, 4, 12, 9): x1, y1 exclusive
    box = mirrored_box((2, 4, 12, 9), 30)
    assert box == (18, 4, 28, 9)
    assert image[:, ::-1][4:9, box[0]:box[2]].all() and image[:, ::-1].sum() == 50
    assert mirrored_box(box, 30) == (2, 4, 12, 9)


def test_fuse_twins_averages_each_faces_two_looks():
    from detect.network import Detection, fuse_twins

    labels = ["with_mask", "without_mask"]
    seen = Detection((10, 10, 30, 30), "with_mask", 0.8, np.array([0.6, 0.4], np.float32))
    mirrored = Detection((12, 10, 32, 34), "without_mask", 0.2, np.array([0.2, 0.8], np.float32))
    alone = Detection((100, 100, 120, 120), "without_mask", 0.5, np.array([0.3, 0.7], np.float32))
    fused = fuse_twins([mirrored, alone, seen], labels)
    assert len(fused) == 2 and fused[1][:3] == alone[:3] and fused[1].shares == pytest.approx(alone.shares)
    face = fused[0]
    # Weighted by score (0.8 and 0.2): the box and shares lean to the surer look; its score is kept.
    assert face.box == pytest.approx((10.4, 10.0, 30.4, 30.8))
    assert face.shares == pytest.approx([0.52, 0.48]) and face.label == "with_mask" and face.score == 0.8
    # Boxes overlapping less than TWIN_OVERLAP are two faces; scores of 0 still average.
    apart = Detection((22, 10, 42, 30), "with_mask", 0.0, np.array([0.5, 0.5], np.float32))
    assert len(fuse_twins([seen, apart], labels)) == 2
    zero = fuse_twins([seen._replace(score=0.0), mirrored._replace(score=0.0)], labels)
    assert zero[0].box == pytest.approx((11, 10, 31, 32))
    assert fuse_twins([], labels) == []


def test_scenes_without_any_face_fail_in_one_line(tmp_path):
    from augment.images import save_rgb

    save_rgb(tmp_path / "raw" / "wall.png", np.full((120, 160, 3), 128, np.uint8))
    result = CliRunner().invoke(augment_main, ["scenes", "--raw", str(tmp_path / "raw"), "--out",
                                               str(tmp_path / "out"), "--count", "2", "--workers", "1"])
    assert result.exit_code == 1
    assert "no face crops with landmarks" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("close_up", [0.0, 1.0])
def test_training_cuts_move_the_boxes_with_the_pixels(close_up):
    from detect.train_detector import training_cut

    scene = np.zeros((300, 400, 3), np.uint8)
    boxes = np.array([[50, 40, 130, 140], [250, 150, 330, 250]], np.float32)
    for x0, y0, x1, y1 in boxes.astype(int):
        scene[y0:y1, x0:x1] = 255
    for seed in range(6):
        cut, moved = training_cut(scene, boxes, 128, np.random.default_rng(seed), close_up)
        assert cut.shape == (128, 128, 3) and moved.shape == (2, 4)
        for x0, y0, x1, y1 in moved:  # inside each moved box, where it is in the cut, the pixels are white
            top, bottom = np.clip([int(y0) + 2, int(y1) - 2], 0, 128)
            left, right = np.clip([int(x0) + 2, int(x1) - 2], 0, 128)
            inner = cut[top:bottom, left:right]
            assert inner.size == 0 or inner.min() > 200
        if close_up:  # one face fills 60-110 % of the cut
            heights = moved[:, 3] - moved[:, 1]
            assert np.any((heights >= 0.6 * 128 - 1) & (heights <= 1.1 * 128 + 1))

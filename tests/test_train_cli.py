"""``python -m train fit`` and ``evaluate`` end to end on a small synthetic face set."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from augment.images import save_rgb
from train.cli import main

LOWER_FACE = np.array([[70, 140], [186, 140], [176, 200], [128, 226], [80, 200]], np.int32)


def masked(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = face.copy()
    cv2.fillPoly(out, [LOWER_FACE], tuple(int(v) for v in rng.integers(0, 256, 3)))
    return out


@pytest.fixture(scope="module")
def labelled(tmp_path_factory, face_image) -> "Path":  # noqa: F821
    """40 pairs of shifted, relit astronaut crops, with and without a painted mask; no manifest."""
    folder = tmp_path_factory.mktemp("labelled")
    rng = np.random.default_rng(0)
    for i in range(40):
        dx, dy = rng.integers(-12, 13, 2)
        face = np.clip(np.roll(face_image, (dy, dx), axis=(0, 1)) * rng.uniform(0.7, 1.2), 0, 255).astype(np.uint8)
        save_rgb(folder / "without_mask" / f"{i}.jpg", face)
        save_rgb(folder / "with_mask" / f"{i}-with-mask.jpg", masked(face, rng))
    return folder


@pytest.fixture(scope="module")
def trained(labelled, tmp_path_factory):
    model = tmp_path_factory.mktemp("models") / "small.keras"
    result = CliRunner().invoke(main, ["fit", "--data", str(labelled), "--model", str(model), "--weights", "none",
                                       "--alpha", "0.35", "--size", "32", "--epochs", "12", "--views", "2",
                                       "--heads", "2", "--fine-tune-epochs", "1", "--tflite"])
    assert result.exit_code == 0, result.output
    return model, result.output


def test_fit_writes_the_model_and_its_run_folder(trained, labelled):
    model, output = trained
    assert "split by file name" in output
    assert "warning: --weights none: the frozen base's random features" in output  # said before the work
    assert f"{labelled}: with_mask 40, without_mask 40 (split by the file names)" in output  # before the work
    run = model.with_suffix("")
    for name in ("labels.txt", "metrics.json", "history.json", "curves.png", "confusion_val.png",
                 "model.tflite", "model_int8.tflite"):
        assert (run / name).is_file(), name
    assert (run / "labels.txt").read_text().split() == ["with_mask", "without_mask"]
    summary = json.loads((run / "metrics.json").read_text())
    assert sum(summary["images"].values()) == 80
    assert f"copies of one picture (mirrored, resized, re-saved) with their pairs: {summary['copies']} images" in output
    for split, metrics in summary["metrics"].items():
        assert metrics["n"] == summary["images"][split]
        assert np.array(metrics["confusion"]).sum() == metrics["n"]
    history = json.loads((run / "history.json").read_text())
    assert len(history["loss"]) == 13  # 12 cached-head epochs (the two heads' mean), then 1 of fine-tuning
    from train.model import load_classifier
    classifier = load_classifier(model)
    assert classifier.metadata["recipe"]["heads"] == 2
    assert classifier.model.get_layer("heads_mean") is not None  # the saved model averages its two heads
    assert summary["tflite"]["float32"]["agreement"] == 1.0
    assert summary["tflite"]["int8"]["bytes"] < summary["tflite"]["float32"]["bytes"]


def test_fit_takes_several_folders_together(labelled, tmp_path):
    mine = tmp_path / "mine"
    for path in sorted((labelled / "with_mask").iterdir())[:6]:  # a few masked photos of one's own
        save_rgb(mine / "with_mask" / f"mine-{path.name}", cv2.flip(cv2.imread(str(path)), 1))
    model = tmp_path / "both.keras"
    result = CliRunner().invoke(main, ["fit", "--data", str(labelled), "--data", str(mine), "--model", str(model),
                                       "--weights", "none", "--alpha", "0.35", "--size", "32", "--epochs", "1",
                                       "--views", "1", "--heads", "1"])
    assert result.exit_code == 0, result.output
    assert f"{mine}: with_mask 6 (split by the file names)" in result.output
    assert "labels: with_mask 46, without_mask 40; each one's loss weighted" in result.output
    summary = json.loads((tmp_path / "both" / "metrics.json").read_text())
    assert sum(summary["images"].values()) == 86
    assert summary["split_from"] == {str(labelled): "file names", str(mine): "file names"}
    from train.model import load_classifier
    assert load_classifier(model).metadata["data"] == [str(labelled), str(mine)]


@pytest.mark.parametrize("name", ["model.h5", "model", "model.keras.bak"])
def test_a_model_name_keras_cannot_save_is_refused_before_training(labelled, tmp_path, name):
    result = CliRunner().invoke(main, ["fit", "--data", str(labelled), "--model", str(tmp_path / name),
                                       "--weights", "none", "--alpha", "0.35", "--size", "32"])
    assert result.exit_code == 1 and f"{tmp_path / name}: a model file's name ends in .keras" in result.output
    assert "decode" not in result.output and list(tmp_path.iterdir()) == []


def test_evaluate_reports_and_skips_unreadable_images(trained, labelled, tmp_path):
    model, _ = trained
    data = tmp_path / "real"
    for label in ("with_mask", "without_mask"):
        for path in sorted((labelled / label).iterdir())[:5]:
            (data / label).mkdir(parents=True, exist_ok=True)
            (data / label / path.name).write_bytes(path.read_bytes())
    (data / "with_mask" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    report, errors = tmp_path / "eval.json", tmp_path / "errors.png"
    result = CliRunner().invoke(main, ["evaluate", "--model", str(model), "--data", str(data),
                                                       "--report", str(report), "--errors", str(errors)])
    assert result.exit_code == 0, result.output
    assert "broken.jpg" in result.stderr
    written = json.loads(report.read_text())
    assert written["n"] == 10 and written["labels"] == ["with_mask", "without_mask"]
    assert np.array(written["confusion"]).sum() == 10
    assert set(written["per_class"]) == {"with_mask", "without_mask"}
    assert [s["path"].endswith("broken.jpg") for s in written["skipped"]] == [True]
    assert len(written["predictions"]) == 10
    assert report.with_suffix(".confusion.png").is_file()
    assert errors.is_file() == (written["accuracy"] < 1)


def test_evaluate_scores_several_folders_together(trained, labelled, tmp_path):
    model, _ = trained
    masked, unmasked = tmp_path / "my_masked", tmp_path / "my_unmasked"
    for folder, label in ((masked, "with_mask"), (unmasked, "without_mask")):
        for path in sorted((labelled / label).iterdir())[:4]:
            (folder / label).mkdir(parents=True, exist_ok=True)
            (folder / label / path.name).write_bytes(path.read_bytes())
    report = tmp_path / "both.json"
    result = CliRunner().invoke(main, ["evaluate", "--model", str(model), "--data", str(masked), "--data",
                                       str(unmasked), "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert f"{masked}, {unmasked}: accuracy" in result.output
    written = json.loads(report.read_text())
    assert written["n"] == 8 and {name: c["n"] for name, c in written["per_class"].items()} == {
        "with_mask": 4, "without_mask": 4}
    assert [Path(p["path"]).parent.parent for p in written["predictions"]] == [masked] * 4 + [unmasked] * 4


def test_evaluate_scores_a_folder_of_one_label(trained, labelled, tmp_path):
    """A user's folder of masked photos alone: the share the model finds masked."""
    model, _ = trained
    data = tmp_path / "masked_only" / "with_mask"
    data.mkdir(parents=True)
    for path in sorted((labelled / "with_mask").iterdir())[:6]:
        (data / path.name).write_bytes(path.read_bytes())
    report = tmp_path / "eval.json"
    result = CliRunner().invoke(main, ["evaluate", "--model", str(model), "--data", str(data.parent),
                                       "--report", str(report)])
    assert result.exit_code == 0, result.output
    written = json.loads(report.read_text())
    assert written["n"] == 6 and written["labels"] == ["with_mask", "without_mask"]
    assert written["per_class"]["without_mask"]["n"] == 0 and written["per_class"]["without_mask"]["recall"] is None
    assert written["accuracy"] == written["per_class"]["with_mask"]["recall"]
    assert f"accuracy {written['accuracy']:.1%} on 6 (recall: with_mask" in result.output


def test_detect_crops_the_largest_face(trained, tmp_path, face_image):
    model, _ = trained
    for label in ("with_mask", "without_mask"):
        save_rgb(tmp_path / "d" / label / "face.png", face_image)
        save_rgb(tmp_path / "d" / label / "wall.png", np.full((80, 80, 3), 90, np.uint8))
    result = CliRunner().invoke(main, ["evaluate", "--model", str(model), "--data", str(tmp_path / "d"), "--detect"])
    assert result.exit_code == 0, result.output
    assert "faces found in 2, whole image used for 2" in result.output


def test_clear_errors_before_any_work(trained, tmp_path):
    model, _ = trained
    (tmp_path / "one" / "with_mask").mkdir(parents=True)
    save_rgb(tmp_path / "one" / "with_mask" / "a.png", np.zeros((8, 8, 3), np.uint8))
    runner = CliRunner()
    result = runner.invoke(main, ["fit", "--data", str(tmp_path / "one"), "--model", str(tmp_path / "m.keras"),
                                  "--weights", "none", "--size", "32"])
    assert result.exit_code == 1 and "at least 2 non-empty class folders" in result.output
    result = runner.invoke(main, ["evaluate", "--model", str(tmp_path / "nothing.keras"), "--data", str(tmp_path)])
    assert result.exit_code == 1 and "nothing.keras: model file not found" in result.output
    (tmp_path / "three" / "mask_weared_incorrect").mkdir(parents=True)
    (tmp_path / "three" / "with_mask").mkdir(parents=True)
    for label in ("mask_weared_incorrect", "with_mask"):
        save_rgb(tmp_path / "three" / label / "a.png", np.zeros((8, 8, 3), np.uint8))
    result = runner.invoke(main, ["evaluate", "--model", str(model), "--data", str(tmp_path / "three")])
    assert result.exit_code == 1 and "mask_weared_incorrect are labels the model does not know" in result.output


def test_a_run_refused_for_its_data_leaves_no_folder_behind(tmp_path):
    model = tmp_path / "models" / "new" / "m.keras"
    result = CliRunner().invoke(main, ["fit", "--data", str(tmp_path / "missing"), "--model", str(model),
                                       "--weights", "none"])
    assert result.exit_code == 1 and "missing: not a folder" in result.output
    assert list(tmp_path.iterdir()) == []


def test_outputs_that_cannot_be_written_are_named_before_any_work(trained, labelled, tmp_path):
    model, _ = trained
    blocked = tmp_path / "a-file"
    blocked.write_text("a file where a folder would have to be")
    for arguments, named in (
            (["fit", "--data", str(labelled), "--model", str(blocked / "m.keras"), "--weights", "none"],
             blocked / "m.keras"),
            (["evaluate", "--model", str(model), "--data", str(labelled), "--report", str(blocked / "r.json")],
             blocked / "r.json"),
            (["evaluate", "--model", str(model), "--data", str(labelled), "--errors", str(blocked / "e.png")],
             blocked / "e.png")):
        result = CliRunner().invoke(main, arguments)
        assert result.exit_code == 1
        assert result.output.strip().splitlines() == [f"Error: {named}: cannot be written ({blocked} is a file)"]


def test_a_second_training_of_one_model_stops_at_once_and_keeps_the_first_one_s_work(labelled, tmp_path):
    from augment.images import held

    model = tmp_path / "m.keras"
    (tmp_path / "m" / "unfinished").mkdir(parents=True)
    (tmp_path / "m" / "unfinished" / "run.json").write_text("{}")  # the first run's saved work
    with held(tmp_path / "m"):  # as the first run holds it
        result = CliRunner().invoke(main, ["fit", "--data", str(labelled), "--model", str(model), "--weights", "none",
                                           "--size", "32"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        f"Error: {tmp_path / 'm'}: another run is writing there now; wait for it to end, or stop it")
    assert (tmp_path / "m" / "unfinished" / "run.json").read_text() == "{}" and not model.exists()


def test_an_interrupted_training_goes_on_from_its_saved_work(labelled, tmp_path, monkeypatch, capsys):
    from train import fit as training

    recipe = training.Recipe(weights="none", alpha=0.35, size=32, epochs=3, views=2, heads=2, fine_tune_epochs=2,
                             batch_size=16)
    whole = training.fit(labelled, tmp_path / "whole.keras", recipe, progress=False)
    whole_history = json.loads((tmp_path / "whole" / "history.json").read_text())
    assert not (tmp_path / "whole" / "unfinished").exists()

    real_bar, real_views = training.epoch_bar, training.view_dataset

    def bar_then_ctrl_c(total, description, enabled=True, done=0):
        bar = real_bar(total, description, enabled, done)
        if description == "fine-tune":  # Ctrl-C once the first fine-tuning epoch is saved
            def on_epoch_end(epoch, logs=None):
                raise KeyboardInterrupt
            bar.on_epoch_end = on_epoch_end
        return bar

    monkeypatch.setattr(training, "epoch_bar", bar_then_ctrl_c)
    model = tmp_path / "cut.keras"
    with pytest.raises(KeyboardInterrupt):
        training.fit(labelled, model, recipe, progress=False)
    unfinished = tmp_path / "cut" / "unfinished"
    assert list((unfinished / "train_features").glob("*.npy")) and list((unfinished / "train_features_2").glob("*.npy"))
    assert (unfinished / "fine_tune.keras").is_file()
    assert not model.exists()

    bars = []
    monkeypatch.setattr(training, "epoch_bar", lambda *args: bars.append(args[1:]) or real_bar(*args))
    computed = []
    monkeypatch.setattr(training, "view_dataset", lambda *args: computed.append(args[3]) or real_views(*args))
    resumed = training.fit(labelled, model, recipe, progress=True)
    assert "going on with the work an interrupted run saved there" in capsys.readouterr().out
    # No view was rendered for features (all came from the saved chunks): only fine-tuning's own.
    train_count, val_count = resumed["images"]["train"], resumed["images"]["val"]
    assert computed == [[(index, 4 + epoch) for epoch in range(2) for index in range(train_count)],
                        [(index, 0) for index in range(val_count)]]  # after the two heads' views 0-1 and 2-3
    # Fine-tuning went on after its epoch 1.
    assert bars == [("head 1/2 (cached)", True, 0), ("head 2/2 (cached)", True, 0), ("fine-tune", True, 1)]
    history = json.loads((tmp_path / "cut" / "history.json").read_text())
    assert len(history["loss"]) == 5
    # The cached head phase and the saved fine-tuning epoch are the uninterrupted run's, number for number.
    assert history["loss"][:4] == whole_history["loss"][:4]
    assert resumed["images"] == whole["images"]
    assert not unfinished.exists()


def test_ctrl_c_says_where_the_work_is_kept(labelled, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("train.fit.fit", interrupted)
    model = tmp_path / "m.keras"
    result = CliRunner().invoke(main, ["fit", "--data", str(labelled), "--model", str(model), "--weights", "none"])
    assert result.exit_code == 130
    assert f"interrupted: the work done so far, in {tmp_path / 'm' / 'unfinished'}, is kept" in result.stderr
    assert "run the same command again to go on" in result.stderr


def test_evaluate_frames_a_generated_dataset_by_its_manifest_boxes(brightness_model_path, tmp_path):
    """A generated crop holds its face in a wide margin, a full picture several faces: each face is
    scored at its box, as the model learnt and as `detect` frames faces, not the whole file."""
    from train.model import load_classifier
    from train.views import face_views

    data = tmp_path / "generated"
    crop = np.full((120, 120, 3), 20, np.uint8)
    crop[40:80, 40:80] = 230  # a bright face in a dark margin
    picture = np.full((100, 200, 3), 120, np.uint8)
    picture[20:60, 20:60], picture[30:70, 130:170] = 250, 10
    boxes = {"crop": (40.0, 40.0, 80.0, 80.0), "left": (20.0, 20.0, 60.0, 60.0), "right": (130.0, 30.0, 170.0, 70.0)}
    save_rgb(data / "with_mask" / "a.png", crop)
    save_rgb(data / "without_mask" / "b.png", picture)
    records = [{"path": "with_mask/a.png", "label": "with_mask", "split": "test", "box": list(boxes["crop"])},
               {"path": "without_mask/b.png", "label": "without_mask", "split": "test",
                "faces": [{"box": list(boxes["left"])}, {"box": list(boxes["right"])}]}]
    (data / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    report = tmp_path / "eval.json"
    result = CliRunner().invoke(main, ["evaluate", "--model", str(brightness_model_path), "--data", str(data),
                                       "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert "3 faces framed by their generated dataset's boxes" in result.output
    written = json.loads(report.read_text())
    assert written["n"] == 3 and written["manifest_boxes"] == 3
    classifier = load_classifier(brightness_model_path)
    expected = classifier.predict_views([face_views(crop, boxes["crop"], classifier.size),
                                         face_views(picture, boxes["left"], classifier.size),
                                         face_views(picture, boxes["right"], classifier.size)])
    whole = classifier.predict_views([face_views(crop, None, classifier.size)])
    assert [p["box"] for p in written["predictions"]] == [list(b) for b in boxes.values()]
    assert [p["confidence"] for p in written["predictions"]] == pytest.approx(expected.max(axis=1), abs=1e-4)
    assert [p["predicted"] for p in written["predictions"]] == [classifier.labels[i] for i in expected.argmax(axis=1)]
    assert not np.allclose(expected[0], whole[0], atol=1e-2)  # the whole crop would have been scored otherwise

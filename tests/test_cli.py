"""The command line end to end on tiny folders: outputs, manifest, report, bad input, resume."""
import errno
import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from augment.cli import PROJECT, main
from augment.dataset import RECIPE, split_of
from augment.faces import find_faces
from augment.geometry import box_iou
from augment.images import encode_image, load_rgb, save_rgb

from conftest import BUILTIN_STYLES, children_of, draw_flat_mask, draw_third_party_mask
from test_blend import EYES, NOSE_AND_MOUTH, changed
from test_faces import group_photo
from test_images import png_header_only


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result


def generate(raw, out, styles, *extra):
    return run("generate", "--raw", raw, "--out", out, "--styles", styles, "--workers", "1", *extra)


def folder_digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def test_generate_writes_paired_crops_manifest_and_report(raw_dir, styles_dir, tmp_path):
    before = folder_digest(raw_dir)
    out = tmp_path / "out"
    result = generate(raw_dir, out, styles_dir)
    assert result.exit_code == 0, result.output
    assert "2 faces from 3 images" in result.output and "1 no face found" in result.output
    assert folder_digest(raw_dir) == before  # the input folder is never touched

    with_mask = sorted(p.name for p in (out / "with_mask").iterdir())
    without_mask = sorted(p.name for p in (out / "without_mask").iterdir())
    assert with_mask == without_mask == ["tilted_0.jpg", "upright_0.jpg"]
    report = json.loads((out / "report.json").read_text())
    assert report["inputs"] == 3 and report["faces"] == 2
    assert report["with_mask"] == report["without_mask"] == 2
    assert report["skipped"] == [{"path": "noface.png", "reason": "no face found"}]
    assert report["seconds"] > 0

    manifest = records(out)
    assert [r["path"] for r in manifest] == sorted(r["path"] for r in manifest)
    for record in manifest:
        pair = [r for r in manifest if r["source"] == record["source"] and r["face"] == record["face"]]
        assert {r["label"] for r in pair} == {"with_mask", "without_mask"}
        assert len({r["split"] for r in pair}) == 1  # both versions of a face in one split
        image = load_rgb(out / record["path"])
        x0, y0, x1, y1 = record["box"]
        assert 0 <= x0 < x1 <= image.shape[1] + 1 and 0 <= y0 < y1 <= image.shape[0] + 1
        assert len(record["landmarks"]) == 68
        if record["label"] == "with_mask":
            assert record["style"] in ("surgical_blue", "cloth_black")
            assert set(record["params"]) == {"style", "shift", "width", "tint", "shadow", "creases", "mirrored"}
        else:
            assert record["style"] is None


def test_copies_of_a_photo_share_its_split(raw_dir, styles_dir, tmp_path):
    upright = load_rgb(raw_dir / "upright.png")
    save_rgb(raw_dir / "upright_mirror.jpg", np.ascontiguousarray(upright[:, ::-1]), quality=80)
    zoomed = cv2.resize(upright, None, fx=1.2, fy=1.2, interpolation=cv2.INTER_CUBIC)[12:276, 27:291]
    save_rgb(raw_dir / "upright_crop.jpg", np.ascontiguousarray(zoomed), quality=80)
    for name in ("upright_mirror.jpg", "upright_crop.jpg"):
        assert split_of(name) != split_of("upright.png")  # by name alone they would part
    out = tmp_path / "out"
    result = generate(raw_dir, out, styles_dir)
    assert result.exit_code == 0, result.output
    # The mirror image by the whole picture; the zoomed crop and the photo turned by 25 degrees
    # (raw_dir's tilted.jpg) by their faces.
    assert "4 images are copies of others" in result.output
    splits = {record["source"]: record["split"] for record in records(out)}
    assert splits == {name: split_of("upright.png")
                      for name in ("upright.png", "upright_mirror.jpg", "upright_crop.jpg", "tilted.jpg")}
    report = json.loads((out / "report.json").read_text())
    assert report["copies"] == 4 and sum(report["splits"].values()) == 4


def test_split_by_folder_reaches_the_manifest_and_report_and_may_change_on_a_rerun(raw_dir, styles_dir, tmp_path):
    person = raw_dir / "ann"
    person.mkdir()
    (raw_dir / "upright.png").rename(person / "upright.png")
    out = tmp_path / "out"
    assert generate(raw_dir, out, styles_dir).exit_code == 0
    assert json.loads((out / "report.json").read_text())["split_by"] == "photo"
    # The splits are drawn over every input at the end of each run, so a resumed run may regroup.
    result = generate(raw_dir, out, styles_dir, "--split-by", "folder")
    assert result.exit_code == 0, result.output
    assert "3 images kept from an earlier run" in result.output
    report = json.loads((out / "report.json").read_text())
    assert report["split_by"] == "folder" and f"split by folder (2 {split_of('ann/upright.png')})" in result.output
    assert {record["split"] for record in records(out)} == {split_of("ann/upright.png")}
    refused = run("generate", "--raw", raw_dir, "--out", out, "--split-by", "person")
    assert refused.exit_code == 2 and "'person' is not one of 'photo', 'folder'" in refused.output


def test_an_unknown_split_grouping_stops_the_library_call_before_any_work(raw_dir, styles_dir, tmp_path):
    from augment.dataset import DatasetError
    from augment.generate import generate as run_generation

    with pytest.raises(DatasetError, match="unknown split grouping 'person'; choose from photo, folder"):
        run_generation(raw_dir, tmp_path / "out", [styles_dir], split_by="person", workers=1, progress=False)
    assert not (tmp_path / "out").exists()


def test_the_masked_crop_differs_from_its_pair_only_over_nose_and_mouth(raw_dir, styles_dir, tmp_path):
    out = tmp_path / "out"
    generate(raw_dir, out, styles_dir)
    for record in records(out):
        if record["label"] != "with_mask":
            continue
        masked = load_rgb(out / record["path"])
        plain = load_rgb(out / "without_mask" / Path(record["path"]).name)
        assert masked.shape == plain.shape
        landmarks = np.array(record["landmarks"])
        assert changed(plain, masked, landmarks[NOSE_AND_MOUTH]).mean() > 0.95
        assert not changed(plain, masked, landmarks[EYES]).any()


def test_crops_frame_the_face_like_the_detector_and_are_found_again(raw_dir, styles_dir, tmp_path):
    out = tmp_path / "out"
    generate(raw_dir, out, styles_dir)
    plain = load_rgb(out / "without_mask" / "upright_0.jpg")
    faces = find_faces(plain)
    assert len(faces) == 1
    record = next(r for r in records(out) if r["path"] == "without_mask/upright_0.jpg")
    assert box_iou(faces[0].box, record["box"]) > 0.7  # the manifest's box is where a detector sees the face


def test_bad_inputs_are_skipped_with_reasons_and_the_run_goes_on(raw_dir, styles_dir, tmp_path):
    (raw_dir / "empty.jpg").write_bytes(b"")
    (raw_dir / "text.jpg").write_text("this is not a picture")
    (raw_dir / "cut.jpg").write_bytes((raw_dir / "tilted.jpg").read_bytes()[:400])
    png_header_only(raw_dir / "huge.png", 20000, 20000)
    (raw_dir / "dangling.jpg").symlink_to(raw_dir / "missing.jpg")
    out = tmp_path / "out"
    result = generate(raw_dir, out, styles_dir)
    assert result.exit_code == 0
    reasons = {item["path"]: item["reason"] for item in json.loads((out / "report.json").read_text())["skipped"]}
    assert reasons["empty.jpg"] == "empty file"
    assert reasons["text.jpg"] == "not a readable image"
    assert reasons["cut.jpg"].startswith("corrupt image")
    assert reasons["huge.png"].startswith("image too large: 20000x20000")
    assert reasons["dangling.jpg"].startswith("cannot read")
    assert "warning: skipped" in result.output and "huge.png" in result.output
    assert sorted(p.name for p in (out / "with_mask").iterdir()) == ["tilted_0.jpg", "upright_0.jpg"]
    assert generate(raw_dir, tmp_path / "strict", styles_dir, "--strict").exit_code == 1


def test_same_seed_same_bytes_with_any_number_of_workers(raw_dir, styles_dir, tmp_path):
    generate(raw_dir, tmp_path / "one", styles_dir)
    two = run("generate", "--raw", raw_dir, "--out", tmp_path / "two", "--styles", styles_dir, "--workers", "2")
    assert two.exit_code == 0, two.output
    first, second = folder_digest(tmp_path / "one"), folder_digest(tmp_path / "two")
    images = [key for key in first if key.endswith(".jpg")]
    assert images and all(first[key] == second[key] for key in images)
    assert first["manifest.jsonl"] == second["manifest.jsonl"]
    other = generate(raw_dir, tmp_path / "seed1", styles_dir, "--seed", "1")
    assert other.exit_code == 0
    assert folder_digest(tmp_path / "seed1")["with_mask/upright_0.jpg"] != first["with_mask/upright_0.jpg"]


def test_workers_run_the_same_copy_of_the_code_as_the_run(raw_dir, styles_dir, tmp_path):
    """A run that imports the project from another folder than the installed one (a second
    checkout, a notebook's sys.path) has its workers run that folder's code too."""
    copy = tmp_path / "checkout"
    shutil.copytree(PROJECT / "augment", copy / "augment", ignore=shutil.ignore_patterns("__pycache__"))
    with open(copy / "augment" / "copies.py", "a") as module:  # a picture hash only this copy gives
        module.write('\n\ndef signature(rgb):\n    return "0f" * 64\n')
    out = tmp_path / "out"
    script = ("import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path; "
              "from augment.generate import generate; "
              "generate(Path(sys.argv[2]), Path(sys.argv[3]), [Path(sys.argv[4])], workers=2, progress=False)")
    done = subprocess.run([sys.executable, "-c", script, str(copy), str(raw_dir), str(out), str(styles_dir)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    parts = [json.loads(path.read_text()) for path in (out / ".parts" / "images").glob("*.json")]
    assert len(parts) >= 2 and {part["signature"] for part in parts} == {"0f" * 64}


def test_an_interrupted_run_resumes_and_keeps_finished_work(raw_dir, styles_dir, tmp_path):
    out = tmp_path / "out"
    generate(raw_dir, out, styles_dir)
    complete = folder_digest(out)
    kept = out / "with_mask" / "upright_0.jpg"
    kept_time = kept.stat().st_mtime_ns
    # Simulate a run killed mid-way: one image's outputs and record gone, a temp file left behind.
    (out / "with_mask" / "tilted_0.jpg").unlink()
    (out / ".parts" / "images" / "tilted.json").unlink()
    leftovers = [out / "with_mask" / ".tmpabc.part", out / "with_mask" / ".tilted_0.abc.part.jpg",  # older, current
                 out / ".parts" / ".workers.abc.part"]  # the workers' start-up state (processes.pickled)
    for leftover in leftovers:
        leftover.write_bytes(b"half a jpeg")
    result = generate(raw_dir, out, styles_dir)
    assert result.exit_code == 0
    assert "kept from an earlier run" in result.output
    assert json.loads((out / "report.json").read_text())["resumed"] == 2
    assert kept.stat().st_mtime_ns == kept_time
    assert not any(leftover.exists() for leftover in leftovers)
    resumed = folder_digest(out)
    assert {k: v for k, v in resumed.items() if k.endswith(".jpg")} == {
        k: v for k, v in complete.items() if k.endswith(".jpg")}


def test_a_picture_the_system_would_not_read_is_tried_again_by_the_next_run(raw_dir, styles_dir, tmp_path,
                                                                           monkeypatch):
    # Root reads any file, so the refusal (a chmod 000, a network drive) is made by hand.
    from PIL import Image

    opened = Image.open

    def refusing(path, *args, **kwargs):
        if Path(path).name == "upright.png":
            raise PermissionError(13, "Permission denied", str(path))
        return opened(path, *args, **kwargs)

    out = tmp_path / "out"
    with monkeypatch.context() as patched:
        patched.setattr(Image, "open", refusing)
        first = generate(raw_dir, out, styles_dir)
    assert first.exit_code == 0 and "upright.png: cannot read: Permission denied" in first.output
    assert not (out / "with_mask" / "upright_0.jpg").exists()
    second = generate(raw_dir, out, styles_dir)  # the file has not changed: only its reader has
    assert second.exit_code == 0 and "cannot read" not in second.output
    report = json.loads((out / "report.json").read_text())
    assert report["resumed"] == 2 and [item["path"] for item in report["skipped"]] == ["noface.png"]
    assert (out / "with_mask" / "upright_0.jpg").is_file()


def test_only_skips_from_outside_the_picture_are_tried_again():
    from augment.outputs import WORKER_DIED, tried_again

    assert tried_again(WORKER_DIED) and tried_again("cannot read: Permission denied")
    assert not any(tried_again(reason) for reason in (None, "no face found", "empty file", "not a readable image",
                                                      "corrupt image: image file is truncated"))


def test_the_largest_inputs_are_made_first(raw_dir, styles_dir, tmp_path, monkeypatch):
    # Big photos are the slow ones; one left for last would keep the other workers idle.
    from augment import generate as generation

    order, work = [], generation._work
    monkeypatch.setattr(generation, "_work", lambda task: order.append(task[0]) or work(task))
    assert generate(raw_dir, tmp_path / "out", styles_dir).exit_code == 0
    sizes = [(raw_dir / source).stat().st_size for source in order]
    assert len(order) == 3 and sizes == sorted(sizes, reverse=True) and order != sorted(order)


def test_the_pool_is_handed_a_few_tasks_ahead_not_the_whole_folder(monkeypatch, tmp_path):
    # Each task handed out holds a future: a folder of 200,000 photos must not hold them all.
    from concurrent.futures import Future

    from augment import generate as generation

    handed, results = [], []

    class AtOnce:
        """A pool that finishes each task as it is handed out, as if the workers were infinitely fast."""

        def __init__(self, workers, **settings):
            pass

        def submit(self, work, task):
            handed.append((task, len(handed) - len(results)))  # and how many were out already
            future = Future()
            future.set_result(task)
            return future

        def shutdown(self, **how):
            pass

    monkeypatch.setattr(generation, "ProcessPoolExecutor", AtOnce)
    tasks = [(f"{number}.jpg", str(number)) for number in range(50)]
    results.extend(generation._parallel(tasks, 2, (tmp_path / "raw", tmp_path / "out"), print))
    assert sorted(results) == sorted(tasks) and [task for task, _ in handed] == tasks
    assert max(out for _, out in handed) <= 2 * generation.TASKS_AHEAD  # the result in hand counted


def test_a_file_name_that_is_not_utf8_is_made_like_any_other(face_image, styles_dir, tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "out"
    raw.mkdir()
    name = os.fsdecode(b"caf\xe9.jpg")  # Latin-1, as old cameras and archives name files
    try:
        save_rgb(raw / name, face_image)
    except (OSError, UnicodeError):
        pytest.skip("this file system takes UTF-8 file names only")
    (raw / os.fsdecode(b"broken\xff.jpg")).write_bytes(b"not a picture")
    result = generate(raw, out, styles_dir)
    assert result.exit_code == 0, result.output
    assert {record["source"] for record in records(out)} == {name}
    assert {record["path"] for record in records(out)} == {f"with_mask/{name[:-4]}_0.jpg",
                                                          f"without_mask/{name[:-4]}_0.jpg"}
    assert all((out / record["path"]).is_file() for record in records(out))
    report = json.loads((out / "report.json").read_text())
    assert [item["path"] for item in report["skipped"]] == [os.fsdecode(b"broken\xff.jpg")]


def test_a_full_disk_stops_the_run_with_one_line_and_loses_nothing(raw_dir, styles_dir, tmp_path, monkeypatch):
    from augment import dataset

    out, real_save, saved = tmp_path / "out", dataset.save_rgb, []

    def save_until_the_disk_is_full(path, *args, **kwargs):
        if len(saved) == 2:  # the first image's pair fits, then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        saved.append(path)
        real_save(path, *args, **kwargs)

    monkeypatch.setattr(dataset, "save_rgb", save_until_the_disk_is_full)
    result = generate(raw_dir, out, styles_dir)
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        f"Error: {out}: cannot write (No space left on device); finished work is kept: "
        "fix this and run the same command again")
    monkeypatch.undo()
    again = generate(raw_dir, out, styles_dir)
    # The largest input goes first: the upright face's pair was written, the tilted face's was not.
    assert again.exit_code == 0 and "(1 image kept from an earlier run)" in again.output
    report = json.loads((out / "report.json").read_text())
    assert report["faces"] == 2 and [item["path"] for item in report["skipped"]] == ["noface.png"]


def sixty_faces_on_two_workers(face_image: np.ndarray, styles_dir: Path, tmp_path: Path
                               ) -> tuple[Path, Path, list[str]]:
    """A folder of 60 copies of the face, the output folder, and the command that generates from it with two workers."""
    raw, out = tmp_path / "many", tmp_path / "out"
    raw.mkdir()
    for number in range(60):
        save_rgb(raw / f"face{number:02d}.jpg", face_image)
    return raw, out, [sys.executable, "-m", "augment", "generate", "--raw", str(raw), "--out", str(out),
                      "--styles", str(styles_dir), "--workers", "2"]


def wait_for_the_first_output(process: subprocess.Popen, out: Path) -> None:
    """Until a generation run in ``process`` has written its first masked face into ``out`` (or ended, or 2 minutes)."""
    waited = 0.0
    while not list((out / "with_mask").glob("*.jpg")) and process.poll() is None and waited < 120:
        time.sleep(0.01)
        waited += 0.01


def test_ctrl_c_stops_the_workers_quietly_and_the_run_then_resumes(face_image, styles_dir, tmp_path):
    raw, out, command = sixty_faces_on_two_workers(face_image, styles_dir, tmp_path)
    # Ctrl-C in a terminal signals the whole process group: the CLI, its worker server and its workers.
    # SIGINT back to its default in the child: a test run started in the background (CI) ignores
    # it, and a Python started with SIGINT ignored never turns Ctrl-C into KeyboardInterrupt.
    process = subprocess.Popen(command, cwd=PROJECT, start_new_session=True, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_for_the_first_output(process, out)
    os.killpg(process.pid, signal.SIGINT)
    _, errors = process.communicate(timeout=60)
    assert process.returncode == 130, errors
    assert "interrupted: finished work in" in errors and "run the same command again" in errors
    assert "Traceback" not in errors and "KeyboardInterrupt" not in errors and "PoolWorker" not in errors
    done = len(list((out / "with_mask").glob("*.jpg")))
    assert 0 < done < 60

    result = generate(raw, out, styles_dir)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["resumed"] >= done - 2  # images whose two outputs were both written when it stopped
    assert report["with_mask"] == report["without_mask"] == 60


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the workers through /proc")
def test_a_worker_killed_from_outside_costs_the_run_nothing(face_image, styles_dir, tmp_path):
    raw, out, command = sixty_faces_on_two_workers(face_image, styles_dir, tmp_path)
    process = subprocess.Popen(command, cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_the_first_output(process, out)
    # The workers are the children of the worker server, the run's child.
    workers = [worker for server in children_of(process.pid) for worker in children_of(server)]
    os.kill(workers[0], signal.SIGKILL)  # as the kernel does to a process that runs out of memory
    _, errors = process.communicate(timeout=120)
    assert process.returncode == 0, errors
    assert "a worker process died" in errors and "one at a time" in errors and "Traceback" not in errors
    report = json.loads((out / "report.json").read_text())
    assert report["with_mask"] == report["without_mask"] == 60 and report["skipped"] == []


def test_an_image_that_kills_its_worker_is_skipped_and_every_other_is_made(tmp_path):
    from augment import generate as generation
    from augment.dataset import IMAGE_PARTS, Settings
    from augment.outputs import WORKER_DIED

    from conftest import made_unless_poisoned

    tasks = [(f"{number}.jpg", str(number)) for number in range(12)]
    tasks.insert(5, ("poison.jpg", "poison"))
    warnings: list[str] = []
    state = (tmp_path / "raw", tmp_path / "out", Settings(), {})
    results = list(generation._parallel(tasks, 2, state, warnings.append, work=made_unless_poisoned))
    assert sorted(result.source for result in results) == sorted(source for source, _ in tasks)  # each once
    assert [(result.source, result.skipped) for result in results if result.skipped] == [
        ("poison.jpg", WORKER_DIED)]
    assert len(warnings) == 1 and warnings[0].startswith("warning: a worker process died")
    kept = json.loads((tmp_path / "out" / IMAGE_PARTS / "poison.json").read_text())  # in the report, tried again
    assert kept["source"] == "poison.jpg" and kept["skipped"] == WORKER_DIED  # by the next run (tried_again)


def test_workers_dying_on_image_after_image_stop_the_run(tmp_path):
    from augment import generate as generation
    from augment.dataset import DatasetError, Settings

    from conftest import made_unless_poisoned

    tasks = [(f"poison{number}.jpg", f"poison{number}") for number in range(generation.MAX_WORKER_DEATHS + 2)]
    state = (tmp_path / "raw", tmp_path / "out", Settings(), {})
    results = []
    with pytest.raises(DatasetError, match=f"worker processes died on {generation.MAX_WORKER_DEATHS + 1} images"):
        results.extend(generation._parallel(tasks, 2, state, print, work=made_unless_poisoned))
    assert len(results) == generation.MAX_WORKER_DEATHS


def files_in(out: Path) -> set[str]:
    return {f"{label}/{p.name}" for label in ("with_mask", "without_mask") for p in (out / label).iterdir()}


def test_every_stage_ends_a_ctrl_c_its_command_leaves_with_status_130():
    import detect.cli
    import train.cli
    from augment.cli import Stage

    assert all(isinstance(group, Stage) for group in (main, detect.cli.main, train.cli.main))
    stage = Stage()

    @stage.command()
    def loading() -> None:
        raise KeyboardInterrupt

    result = CliRunner().invoke(stage, ["loading"])
    assert result.exit_code == 130 and result.output == "\ninterrupted\n"


def test_a_rerun_removes_what_was_made_from_inputs_since_taken_out(raw_dir, styles_dir, tmp_path):
    out = tmp_path / "out"
    generate(raw_dir, out, styles_dir)
    (raw_dir / "tilted.jpg").unlink()
    result = generate(raw_dir, out, styles_dir)
    assert result.exit_code == 0 and "removed the outputs of 1 image no longer" in result.output
    assert json.loads((out / "report.json").read_text())["removed"] == ["tilted.jpg"]
    assert files_in(out) == {r["path"] for r in records(out)} == {"with_mask/upright_0.jpg", "without_mask/upright_0.jpg"}
    assert json.loads((out / "report.json").read_text())["resumed"] == 2  # upright and noface kept


def test_a_rerun_makes_again_what_came_from_inputs_changed_since(raw_dir, styles_dir, tmp_path):
    out = tmp_path / "out"
    generate(raw_dir, out, styles_dir)
    # A photo without a face replaced by one with a face, and a face replaced by an empty picture.
    (raw_dir / "noface.png").write_bytes((raw_dir / "upright.png").read_bytes())
    (raw_dir / "tilted.jpg").write_bytes(encode_image(np.full((90, 140, 3), 90, np.uint8)))
    result = generate(raw_dir, out, styles_dir)
    assert result.exit_code == 0 and "made 2 images again: changed since the earlier run" in result.output
    report = json.loads((out / "report.json").read_text())
    assert report["changed"] == ["noface.png", "tilted.jpg"] and report["removed"] == [] and report["resumed"] == 1
    assert report["skipped"] == [{"path": "tilted.jpg", "reason": "no face found"}]
    assert files_in(out) == {r["path"] for r in records(out)} == {
        f"{label}/{stem}_0.jpg" for label in ("with_mask", "without_mask") for stem in ("upright", "noface")}
    again = generate(raw_dir, out, styles_dir)
    assert again.exit_code == 0 and "changed" not in again.output and "3 images kept" in again.output


def test_upsample_masks_the_small_faces_of_a_group_photo_too(face_image, styles_dir, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    save_rgb(raw / "group.png", group_photo(face_image))
    for out, extra, faces in (("default", (), 1), ("upsampled", ("--upsample", "1"), 4)):
        assert generate(raw, tmp_path / out, styles_dir, *extra).exit_code == 0
        assert json.loads((tmp_path / out / "report.json").read_text())["faces"] == faces
    assert {r["detector"] for r in records(tmp_path / "upsampled")} == {"hog-grey-up1"}
    result = generate(raw, tmp_path / "upsampled", styles_dir)  # not into a folder made the other way
    assert result.exit_code != 0 and "upsample was 1, now 0" in result.output


def test_a_limited_run_names_its_outputs_as_the_full_run_will(raw_dir, styles_dir, tmp_path):
    # a.jpg and a.png clash: a run limited to a.jpg must already call its outputs a-jpg_*.
    (raw_dir / "a.jpg").write_bytes((raw_dir / "tilted.jpg").read_bytes())
    (raw_dir / "a.png").write_bytes((raw_dir / "upright.png").read_bytes())
    out = tmp_path / "out"
    assert generate(raw_dir, out, styles_dir, "--limit", "1").exit_code == 0
    assert files_in(out) == {"with_mask/a-jpg_0.jpg", "without_mask/a-jpg_0.jpg"}
    result = generate(raw_dir, out, styles_dir)
    assert result.exit_code == 0 and "1 image kept" in result.output and "removed" not in result.output
    assert files_in(out) == {r["path"] for r in records(out)}
    assert "with_mask/a-png_0.jpg" in files_in(out)


def test_outputs_renamed_by_a_new_namesake_are_made_again_under_the_new_name(raw_dir, styles_dir, tmp_path):
    out = tmp_path / "out"
    generate(raw_dir, out, styles_dir)
    (raw_dir / "tilted.png").write_bytes((raw_dir / "upright.png").read_bytes())  # tilted.jpg now clashes
    result = generate(raw_dir, out, styles_dir)
    assert result.exit_code == 0 and "removed" not in result.output
    assert files_in(out) == {r["path"] for r in records(out)}
    assert {"with_mask/tilted-jpg_0.jpg", "with_mask/tilted-png_0.jpg"} <= files_in(out)
    assert "with_mask/tilted_0.jpg" not in files_in(out)


def test_an_input_named_like_the_settings_stamp_resumes(raw_dir, styles_dir, tmp_path):
    (raw_dir / "upright.png").rename(raw_dir / "settings.png")
    out = tmp_path / "out"
    assert generate(raw_dir, out, styles_dir).exit_code == 0
    again = generate(raw_dir, out, styles_dir)
    assert again.exit_code == 0, again.output
    assert "3 images kept" in again.output


def test_resuming_with_other_settings_is_refused(raw_dir, styles_dir, tmp_path):
    out = tmp_path / "out"
    generate(raw_dir, out, styles_dir)
    result = generate(raw_dir, out, styles_dir, "--seed", "7")
    assert result.exit_code != 0 and "other settings (seed was 0, now 7)" in result.output


def test_restart_makes_a_folder_of_other_settings_again_and_leaves_other_files(raw_dir, styles_dir, tmp_path):
    out = tmp_path / "out"
    assert generate(raw_dir, out, styles_dir, "--full-images").exit_code == 0
    (out / "with_mask" / "notes.txt").write_text("the user's own file")
    assert "--restart" in generate(raw_dir, out, styles_dir).output  # refused, and told the way out
    result = generate(raw_dir, out, styles_dir, "--restart")
    assert result.exit_code == 0, result.output
    assert f"{out}: deleted what an earlier run made from 3 inputs" in result.output
    assert sorted(p.name for p in (out / "with_mask").iterdir()) == ["notes.txt", "tilted_0.jpg", "upright_0.jpg"]
    assert json.loads((out / "report.json").read_text())["resumed"] == 0
    assert all("faces" not in record for record in records(out))  # crops now, not full images
    assert generate(raw_dir, out, styles_dir).exit_code == 0  # the new settings resume as usual


def test_a_restart_stopped_half_way_is_still_refused_until_restarted_again(raw_dir, styles_dir, tmp_path,
                                                                           monkeypatch):
    out = tmp_path / "out"
    assert generate(raw_dir, out, styles_dir).exit_code == 0
    assert generate(raw_dir, tmp_path / "reference", styles_dir, "--seed", "7").exit_code == 0
    unlink, deleted = Path.unlink, []

    def power_cut_after_three(path, *args, **kwargs):
        if len(deleted) == 3:
            raise KeyboardInterrupt
        deleted.append(path)
        unlink(path, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", power_cut_after_three)
    stopped = generate(raw_dir, out, styles_dir, "--seed", "7", "--restart")
    monkeypatch.undo()
    assert stopped.exit_code == 130 and (out / ".parts" / "settings.json").is_file()
    assert "other settings (seed was 0, now 7)" in generate(raw_dir, out, styles_dir, "--seed", "7").output
    assert generate(raw_dir, out, styles_dir, "--seed", "7", "--restart").exit_code == 0
    assert ({k: v for k, v in folder_digest(out).items() if k.endswith(".jpg")}
            == {k: v for k, v in folder_digest(tmp_path / "reference").items() if k.endswith(".jpg")})


def test_resuming_after_a_style_weight_changed_remakes_the_faces_that_draw_otherwise(raw_dir, styles_dir, tmp_path):
    out = tmp_path / "out"
    assert generate(raw_dir, out, styles_dir, "--seed", "2").exit_code == 0
    sidecar = styles_dir / "cloth_black.json"
    before = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**before, "weight": 1000}))
    result = generate(raw_dir, out, styles_dir, "--seed", "2")
    assert result.exit_code == 0 and f"(cloth_black weight {before['weight']} -> 1000)" in result.output
    assert json.loads((out / "report.json").read_text())["restyled"] == ["tilted.jpg"]  # upright wore it already
    assert generate(raw_dir, tmp_path / "fresh", styles_dir, "--seed", "2").exit_code == 0
    assert_made_alike(out, tmp_path / "fresh")


def assert_made_alike(out: Path, fresh: Path) -> None:
    """Both folders hold the same pictures, byte for byte, and the same manifest."""
    def made(folder: Path) -> dict:
        return {name: digest for name, digest in folder_digest(folder).items()
                if name.split("/")[0] in ("with_mask", "without_mask") or name == "manifest.jsonl"}

    assert made(out) == made(fresh) and len(made(out)) > 4


def test_resuming_after_a_style_was_edited_remakes_only_the_faces_that_wore_it(raw_dir, styles_dir, tmp_path):
    """A PNG repainted, or a sidecar's creases changed, changes no face's draw, only the look of the
    faces wearing that style: they are made again, the others kept, and the folder ends as a fresh
    run would make it (otherwise it would mix two looks of one style)."""
    out = tmp_path / "out"
    assert generate(raw_dir, out, styles_dir, "--seed", "2").exit_code == 0
    worn = {r["source"]: r["style"] for r in records(out) if r["label"] == "with_mask"}
    assert worn == {"upright.png": "cloth_black", "tilted.jpg": "surgical_blue"}  # the seed dresses them apart
    kept = (out / "with_mask" / "tilted_0.jpg").stat().st_ino
    png = styles_dir / "cloth_black.png"
    pixels = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
    pixels[..., :3] = 255 - pixels[..., :3]  # the same shape in another colour
    cv2.imwrite(str(png), pixels)
    result = generate(raw_dir, out, styles_dir, "--seed", "2")
    assert result.exit_code == 0, result.output
    assert "(cloth_black edited): making again the 1 image with a face" in result.output
    report = json.loads((out / "report.json").read_text())
    assert report["restyled"] == ["upright.png"] and report["resumed"] == 2  # the other face, the photo without one
    assert (out / "with_mask" / "tilted_0.jpg").stat().st_ino == kept  # not written again
    assert generate(raw_dir, tmp_path / "fresh", styles_dir, "--seed", "2").exit_code == 0
    assert_made_alike(out, tmp_path / "fresh")
    again = generate(raw_dir, out, styles_dir, "--seed", "2")  # the edit is now the folder's own
    assert json.loads((out / "report.json").read_text())["restyled"] == [] and "changed" not in again.output
    sidecar = styles_dir / "surgical_blue.json"
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "creases": 0.2}))
    assert generate(raw_dir, out, styles_dir, "--seed", "2").exit_code == 0
    assert json.loads((out / "report.json").read_text())["restyled"] == ["tilted.jpg"]


def test_a_style_added_or_removed_remakes_only_the_faces_that_take_or_lose_it(raw_dir, styles_dir, tmp_path):
    """Dropping a PNG into the styles folder and running again: the faces that now draw it are made
    again, the rest kept, and the folder is what a fresh run with the new styles makes."""
    out, fresh = tmp_path / "out", tmp_path / "fresh"
    assert generate(raw_dir, out, styles_dir, "--seed", "1").exit_code == 0
    kept = (out / "with_mask" / "tilted_0.jpg").stat().st_ino
    for suffix in (".png", ".json"):
        shutil.copy(BUILTIN_STYLES / f"cloth_grey{suffix}", styles_dir)
    result = generate(raw_dir, out, styles_dir, "--seed", "1")
    assert result.exit_code == 0 and "(cloth_grey added)" in result.output
    assert json.loads((out / "report.json").read_text())["restyled"] == ["upright.png"]
    assert (out / "with_mask" / "tilted_0.jpg").stat().st_ino == kept
    assert {r["source"]: r["style"] for r in records(out) if r["label"] == "with_mask"} == {
        "upright.png": "cloth_grey", "tilted.jpg": "surgical_blue"}
    assert generate(raw_dir, fresh, styles_dir, "--seed", "1").exit_code == 0
    assert_made_alike(out, fresh)
    for suffix in (".png", ".json"):
        (styles_dir / f"cloth_grey{suffix}").unlink()
    result = generate(raw_dir, out, styles_dir, "--seed", "1")
    assert result.exit_code == 0 and "(cloth_grey removed)" in result.output
    assert json.loads((out / "report.json").read_text())["restyled"] == ["upright.png"]
    assert {r["source"]: r["style"] for r in records(out) if r["label"] == "with_mask"} == {
        "upright.png": "cloth_black", "tilted.jpg": "surgical_blue"}


def test_a_folder_made_before_styles_were_fingerprinted_resumes(raw_dir, styles_dir, tmp_path):
    out = tmp_path / "out"
    assert generate(raw_dir, out, styles_dir).exit_code == 0
    path = out / ".parts" / "settings.json"
    older = json.loads(path.read_text())
    del older["style_fingerprints"]
    path.write_text(json.dumps(older))
    result = generate(raw_dir, out, styles_dir)
    assert result.exit_code == 0, result.output
    assert json.loads((out / "report.json").read_text())["resumed"] > 0


def test_demo_makes_its_pictures_and_remakes_an_older_demos_output(tmp_path):
    """The demo's output comes from built-in data only, so one made by an older version of the
    generator is made again instead of refused as another recipe."""
    out = tmp_path / "demo"
    first = run("demo", "--out", out, "--workers", "1")
    assert first.exit_code == 0, first.output
    sheets = {name: cv2.imread(str(out / name)) for name in ("examples.png", "styles.png")}
    assert all(sheet is not None and sheet.std() > 20 for sheet in sheets.values())
    stamp = out / "generated" / ".parts" / "settings.json"
    stamp.write_text(json.dumps({**json.loads(stamp.read_text()), "recipe": RECIPE - 1}))
    again = run("demo", "--out", out, "--workers", "1")
    assert again.exit_code == 0, again.output
    assert "making it again" in again.output
    assert json.loads(stamp.read_text())["recipe"] == RECIPE
    report = json.loads((out / "generated" / "report.json").read_text())
    assert report["resumed"] == 0 and report["with_mask"] == report["without_mask"] > 0


def test_a_folder_made_before_a_setting_existed_resumes_with_its_default(raw_dir, styles_dir, tmp_path):
    out = tmp_path / "out"
    generate(raw_dir, out, styles_dir)
    path = out / ".parts" / "settings.json"
    older = json.loads(path.read_text())
    del older["detector_model"]
    path.write_text(json.dumps(older))
    assert generate(raw_dir, out, styles_dir).exit_code == 0
    assert generate(raw_dir, out, styles_dir, "--seed", "7").exit_code != 0


def test_a_folder_an_older_version_made_is_not_resumed(raw_dir, styles_dir, tmp_path):
    """The pictures changed since (masks crease): its outputs must not be mixed with new ones."""
    out = tmp_path / "out"
    generate(raw_dir, out, styles_dir)
    path = out / ".parts" / "settings.json"
    older = json.loads(path.read_text())
    del older["recipe"]  # a folder made before the recipe was recorded
    path.write_text(json.dumps(older))
    result = generate(raw_dir, out, styles_dir)
    assert result.exit_code != 0 and f"other settings (recipe was 1, now {RECIPE})" in result.output
    path.write_text(json.dumps({**older, "recipe": RECIPE - 1}))  # the version before this one
    result = generate(raw_dir, out, styles_dir)
    assert result.exit_code != 0 and f"recipe was {RECIPE - 1}, now {RECIPE}" in result.output


def test_full_images_keep_the_whole_picture_with_boxes(raw_dir, styles_dir, tmp_path):
    out = tmp_path / "out"
    assert generate(raw_dir, out, styles_dir, "--full-images").exit_code == 0
    manifest = {r["path"]: r for r in records(out)}
    record = manifest["with_mask/upright.jpg"]
    assert record["size"] == [256, 256] and len(record["faces"]) == 1
    assert record["faces"][0]["style"] in ("surgical_blue", "cloth_black")
    assert load_rgb(out / "with_mask" / "upright.jpg").shape == (256, 256, 3)
    assert "style" not in manifest["without_mask/upright.jpg"]["faces"][0]
    report = json.loads((out / "report.json").read_text())
    assert report["faces"] == 2 and report["with_mask"] == report["without_mask"] == 2  # images, faces listed
    faces = [face for r in manifest.values() if r["label"] == "with_mask" for face in r["faces"]]
    assert report["styles"] == dict(Counter(face["style"] for face in faces))  # counted per face, as for crops
    assert sum(report["detectors"].values()) == 2


@pytest.mark.parametrize("setup, message", [
    (lambda raw, styles, out: [p.unlink() for p in raw.iterdir()], "no input images"),
    (lambda raw, styles, out: out.write_text("a file, not a folder"), "not writable"),
    (lambda raw, styles, out: [p.unlink() for p in styles.iterdir()], "no usable mask style"),
])
def test_fatal_problems_stop_at_once_with_a_clear_message(raw_dir, styles_dir, tmp_path, setup, message):
    out = tmp_path / "out"
    setup(raw_dir, styles_dir, out)
    result = generate(raw_dir, out, styles_dir)
    assert result.exit_code != 0 and message in result.output


def test_a_second_run_into_a_folder_another_run_is_writing_stops_at_once(raw_dir, styles_dir, tmp_path):
    from augment.images import held

    out = tmp_path / "out"
    with held(out):  # as the first run holds it
        result = generate(raw_dir, out, styles_dir)
        assert result.exit_code == 1
        assert result.output.strip().splitlines()[-1] == (
            f"Error: {out}: another run is writing there now; wait for it to end, or stop it")
        assert not (out / "with_mask").exists()  # nothing made or cleared
    assert generate(raw_dir, out, styles_dir).exit_code == 0  # the hold ends with the run that had it
    assert generate(raw_dir, out, styles_dir).exit_code == 0


@pytest.mark.parametrize("command, reason", [
    (["preview", "surgical_blue", "PHOTO", "--out", "BLOCKED/p.png"], "BLOCKED is a file"),
    (["demo", "--out", "BLOCKED/demo"], "BLOCKED is a file"),
    (["draw-styles", "--out", "BLOCKED/styles/new"], "BLOCKED is a file"),
])
def test_an_output_that_cannot_be_written_is_named_in_one_line_before_any_work(raw_dir, tmp_path, command, reason):
    blocked = tmp_path / "a-file"
    blocked.write_text("a file where a folder would have to be")
    arguments = [str(raw_dir / "upright.png") if a == "PHOTO" else a.replace("BLOCKED", str(blocked))
                 for a in command]
    result = CliRunner().invoke(main, arguments)
    out = Path(arguments[arguments.index("--out") + 1])
    assert result.exit_code == 1 and not isinstance(result.exception, OSError)
    assert result.output.strip().splitlines() == [
        f"Error: {out}: cannot be written ({reason.replace('BLOCKED', str(blocked))})"]


def test_a_preview_is_not_written_over_its_photo(raw_dir, tmp_path):
    photo = tmp_path / "photo.png"
    photo.write_bytes((raw_dir / "upright.png").read_bytes())
    result = CliRunner().invoke(main, ["preview", "surgical_blue", str(photo), "--out", str(photo)])
    assert result.exit_code == 1 and "is an input, and inputs are only read" in result.output
    assert photo.read_bytes() == (raw_dir / "upright.png").read_bytes()


@pytest.mark.parametrize("name, message", [
    ("upright.png", "upright.png: the input must be a folder of photos, not a file"),
    ("missing", "missing: input folder does not exist"),
])
def test_an_input_that_is_no_folder_is_named_with_the_reason(raw_dir, styles_dir, tmp_path, name, message):
    result = generate(raw_dir / name, tmp_path / "out", styles_dir)
    assert result.exit_code != 0 and message in result.output


def test_a_generated_dataset_given_as_the_input_is_refused(raw_dir, styles_dir, tmp_path):
    out = tmp_path / "out"
    assert generate(raw_dir, out, styles_dir).exit_code == 0
    result = generate(out, tmp_path / "again", styles_dir)
    assert result.exit_code == 1 and not (tmp_path / "again").exists()
    assert result.output.strip().splitlines()[-1] == (
        f"Error: {out}: a generated dataset, not photos of unmasked faces; give the photos it was made from "
        f"(or {out / 'without_mask'}, to make more from its unmasked crops)")
    assert generate(out / "without_mask", tmp_path / "again", styles_dir).exit_code == 0


def test_a_folder_of_only_broken_styles_names_each_file(raw_dir, tmp_path):
    styles = tmp_path / "broken"
    styles.mkdir()
    cv2.imwrite(str(styles / "flat.png"), np.full((40, 40, 3), 200, np.uint8))
    result = generate(raw_dir, tmp_path / "out", styles)
    assert result.exit_code != 0 and "flat.png: no alpha channel" in result.output


@pytest.mark.parametrize("named", ["its folder", "the file itself"])
def test_a_third_party_png_without_sidecar_just_works(raw_dir, tmp_path, named):
    styles = tmp_path / "web"
    styles.mkdir()
    draw_third_party_mask(styles / "blue_web_mask.png")
    out = tmp_path / "out"
    assert generate(raw_dir, out, styles if named == "its folder" else styles / "blue_web_mask.png").exit_code == 0
    masked = [r for r in records(out) if r["label"] == "with_mask"]
    assert len(masked) == 2 and {r["style"] for r in masked} == {"blue_web_mask"}
    for record in masked:
        plain = load_rgb(out / "without_mask" / Path(record["path"]).name)
        landmarks = np.array(record["landmarks"])
        assert changed(plain, load_rgb(out / record["path"]), landmarks[NOSE_AND_MOUTH]).mean() > 0.95


def test_styles_command_lists_anchors_and_problems(styles_dir):
    cv2.imwrite(str(styles_dir / "flat.png"), np.full((40, 40, 3), 200, np.uint8))
    result = run("styles", "--styles", styles_dir)
    assert result.exit_code == 1  # a folder with a bad file fails the check
    assert "surgical_blue" in result.output and "anchors from sidecar" in result.output
    assert "problem:" in result.output and "flat.png: no alpha channel" in result.output
    weights = {name: json.loads((styles_dir / f"{name}.json").read_text()).get("weight", 1)
               for name in ("surgical_blue", "cloth_black")}
    for name, weight in weights.items():  # each style's share of the draws, from its sidecar weight
        line = next(line for line in result.output.splitlines() if line.startswith(name))
        assert line.endswith(f"drawn {100 * weight / sum(weights.values()):.1f}%")
    (styles_dir / "flat.png").unlink()
    assert run("styles", "--styles", styles_dir).exit_code == 0
    draw_flat_mask(styles_dir / "product_photo.png")
    result = run("styles", "--styles", styles_dir)
    assert result.exit_code == 0 and "surgical_blue" in result.output
    narrowed = [line.split()[0] for line in result.output.splitlines() if line.endswith("narrowed to the jaw")]
    assert narrowed == ["product_photo"]
    (styles_dir / "product_photo.png").unlink()
    draw_third_party_mask(styles_dir / "web.png")
    web = cv2.imread(str(styles_dir / "web.png"), cv2.IMREAD_UNCHANGED)
    web = cv2.copyMakeBorder(web, 80, 80, 80, 80, cv2.BORDER_CONSTANT, value=(0, 0, 0, 0))
    turn = cv2.getRotationMatrix2D((web.shape[1] / 2, web.shape[0] / 2), -12, 1.0)
    cv2.imwrite(str(styles_dir / "web.png"), cv2.warpAffine(web, turn, web.shape[1::-1]))
    turned = [line.split()[0] for line in run("styles", "--styles", styles_dir).output.splitlines()
              if line.endswith("lies turned -12 degrees (worn upright)")]
    assert turned == ["web"]
    (styles_dir / "web.png").unlink()
    # A mask lit from one side in its picture is said to be, and which side: the KN95s are drawn lit from the left.
    kn95 = cv2.imread(str(BUILTIN_STYLES / "kn95_white.png"), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(styles_dir / "kn95_white.png"), kn95)
    cv2.imwrite(str(styles_dir / "kn95_flipped.png"), kn95[:, ::-1])
    lit = {line.split()[0]: line.split("  lit from the ")[1] for line in run("styles", "--styles", styles_dir).output
           .splitlines() if "  lit from the " in line}
    assert lit == {"kn95_white": "left (worn turned to each face's light)",
                   "kn95_flipped": "right (worn turned to each face's light)"}
    (styles_dir / "kn95_white.png").unlink()
    (styles_dir / "kn95_flipped.png").unlink()
    sidecar = styles_dir / "cloth_black.json"
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "weight": 3}))
    listing = json.loads(run("styles", "--styles", styles_dir, "--json").output)
    listed = {s["name"]: s["weight"] for s in listing["styles"]}
    assert listed == {"surgical_blue": weights["surgical_blue"], "cloth_black": 3}
    assert {s["name"]: s["creases"] for s in listing["styles"]} == {"surgical_blue": 1.0, "cloth_black": 1.0}
    assert not any(s["narrowed"] for s in listing["styles"])
    empty = styles_dir.parent / "empty"
    empty.mkdir()
    nothing = run("styles", "--styles", empty)
    assert nothing.exit_code == 1 and f"{empty}: no mask style PNGs" in nothing.output


def test_styles_command_says_which_style_was_reduced_and_from_what_size(styles_dir, monkeypatch):
    from augment import styles as styles_module

    monkeypatch.setattr(styles_module, "MAX_STYLE_SIDE", 400)  # the built-in PNGs are 580x440
    result = run("styles", "--styles", styles_dir)
    assert result.exit_code == 0
    lines = [line for line in result.output.splitlines() if line.startswith(("surgical_blue", "cloth_black"))]
    assert len(lines) == 2 and all("400x303 (reduced from 580x440)" in line for line in lines)
    listing = json.loads(run("styles", "--styles", styles_dir, "--json").output)
    assert [s["reduced_from"] for s in listing["styles"]] == [[580, 440], [580, 440]]


def test_sheet_shows_the_generated_pairs_and_refuses_what_it_cannot_show(raw_dir, styles_dir, tmp_path):
    out = tmp_path / "out"
    assert generate(raw_dir, out, styles_dir).exit_code == 0
    result = run("sheet", out)
    assert result.exit_code == 0, result.output
    assert f"wrote {out / 'sheet.jpg'}: 2 pairs of the 2 in {out}" in result.output
    sheet = load_rgb(out / "sheet.jpg")
    assert sheet.shape == (200, 1200, 3)
    # the two pairs side by side, each unmasked face beside its masked twin; the last pair's cells are empty
    assert sheet[:, :800].std() > 20 and sheet[:, 800:].min() > 245
    for left in (0, 400):
        assert np.abs(sheet[:180, left:left + 200].astype(int) - sheet[:180, left + 200:left + 400]).max() > 100

    drawn = run("sheet", out, "--count", "1", "--out", tmp_path / "one.png")
    assert drawn.exit_code == 0 and "1 pair of the 2 in" in drawn.output
    assert load_rgb(tmp_path / "one.png")[:, 400:].min() > 245  # one pair, the rest of the row empty
    # one face given another style in the manifest: a choice of style now picks the other face alone
    lines = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    tilted = next(record for record in lines if record["path"] == "with_mask/tilted_0.jpg")
    tilted["style"] = "kn95_pink"
    (out / "manifest.jsonl").write_text("".join(json.dumps(record) + "\n" for record in lines))
    picked = run("sheet", out, "--style", "kn95_pink", "--split", tilted["split"], "--out", tmp_path / "one.png")
    assert picked.exit_code == 0 and "1 pair of the 1 of 2 that match" in picked.output
    missing = run("sheet", out, "--style", "no_such_style")
    assert missing.exit_code == 1 and "no face with style no_such_style; these have: " in missing.output
    assert run("sheet", out, "--found-by", "cnn").exit_code == 1  # HOG found both faces
    not_generated = run("sheet", raw_dir, "--out", tmp_path / "x.jpg")
    assert not_generated.exit_code == 1 and f"{raw_dir}: not a generated dataset" in not_generated.output
    assert "cannot write .txt pictures" in run("sheet", out, "--out", tmp_path / "x.txt").output
    face = out / "with_mask" / "tilted_0.jpg"
    before = face.read_bytes()
    over_a_face = run("sheet", out, "--out", face)
    assert over_a_face.exit_code == 1 and "inside the dataset's with_mask/ folder" in over_a_face.output
    assert face.read_bytes() == before


def test_preview_draws_the_style_and_the_landmarks(raw_dir, tmp_path):
    out = tmp_path / "preview.png"
    result = run("preview", "kn95_white", raw_dir / "upright.png", "--out", out)
    assert result.exit_code == 0, result.output
    assert load_rgb(out).shape == (256, 512, 3)
    missing = run("preview", "no_such_style", raw_dir / "upright.png", "--out", out)
    assert missing.exit_code != 0 and "no such style" in missing.output
    noface = run("preview", "kn95_white", raw_dir / "noface.png", "--out", out)
    assert noface.exit_code != 0 and "noface.png: no face found" in noface.output
    for name in ("preview.pgm", "preview"):  # PGM holds grey only; no suffix, no format
        unwritable = run("preview", "kn95_white", raw_dir / "upright.png", "--out", tmp_path / name)
        assert unwritable.exit_code == 1 and f"{name}: cannot write" in unwritable.output
        assert "Traceback" not in unwritable.output and not (tmp_path / name).exists()


def test_preview_says_when_generate_would_leave_a_face_out(raw_dir, tmp_path, monkeypatch):
    from dataclasses import replace

    from augment import faces as faces_module

    found = faces_module.find_faces(load_rgb(raw_dir / "upright.png"))
    folded = found[0].landmarks.copy()
    folded[9:17, 0] = folded[30, 0]  # the far jaw on the nose line, as dlib measures a head turned far away
    out = tmp_path / "preview.png"
    assert "leaves it out" not in run("preview", "kn95_white", raw_dir / "upright.png", "--out", out).output
    monkeypatch.setattr(faces_module, "find_faces", lambda *args, **kwargs: [replace(found[0], landmarks=folded)])
    result = run("preview", "kn95_white", raw_dir / "upright.png", "--out", out)
    assert result.exit_code == 0 and out.is_file()
    assert ("upright.png, face 0: generate leaves it out, the mask would leave its nose or mouth bare (the head "
            "turned too far, or a gap in the alpha of kn95_white.png)") in " ".join(result.output.split())


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_preview_of_a_large_photo_is_shown_at_preview_size(face_image, tmp_path, suffix):
    photo = tmp_path / f"large{suffix}"
    save_rgb(photo, cv2.resize(face_image, (2400, 2400), interpolation=cv2.INTER_CUBIC))
    out = tmp_path / "preview.png"
    assert run("preview", "surgical_blue", photo, "--out", out).exit_code == 0
    assert load_rgb(out).shape == (1600, 3200, 3)


def test_preview_with_upsample_shows_the_small_faces_of_a_group_photo(face_image, tmp_path):
    save_rgb(tmp_path / "group.png", group_photo(face_image))
    for upsample, faces in (("0", 1), ("1", 4)):
        out = tmp_path / f"preview{upsample}.png"
        assert run("preview", "cloth_black", tmp_path / "group.png", "--out", out, "--upsample", upsample).exit_code == 0
        drawn = load_rgb(out)[:, 640:]  # the copy with landmarks: green dots on each face found
        green = (drawn[:, :, 1] > 200) & (drawn[:, :, 0] < 80) & (drawn[:, :, 2] < 80)
        heads = [green[290:390, left:left + 100].any() for left in (330, 430, 530)]
        assert sum(heads) == faces - 1 and green[:340, :320].any()


def test_draw_styles_renders_png_and_sidecar_pairs(tmp_path):
    result = run("draw-styles", "--out", tmp_path)
    assert result.exit_code == 0
    pngs = sorted(tmp_path.glob("*.png"))
    assert len(pngs) >= 8 and all(p.with_suffix(".json").exists() for p in pngs)


def test_python_dash_m_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "augment", "--help"], capture_output=True, text=True, check=True)
    assert "generate" in result.stdout and "preview" in result.stdout


@pytest.mark.parametrize("option, value", [("--margin", "-1"), ("--size", "8"), ("--workers", "0"), ("--limit", "0"),
                                           ("--seed", "-1"), ("--seed", str(2**32))])
def test_out_of_range_options_are_refused_before_any_work(raw_dir, styles_dir, tmp_path, option, value):
    result = run("generate", "--raw", raw_dir, "--out", tmp_path / "out", "--styles", styles_dir, option, value)
    assert result.exit_code == 2 and option in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("stage, command", [("augment", "scenes"), ("augment", "draw-styles"), ("augment", "preview"),
                                            ("train", "fit"), ("detect", "train-detector")])
def test_every_stage_refuses_a_seed_its_random_generators_cannot_take(stage, command, tmp_path):
    import detect.cli
    import train.cli

    group = {"augment": main, "train": train.cli.main, "detect": detect.cli.main}[stage]
    arguments = ["mask", str(PROJECT / "README.md")] if command == "preview" else []
    result = CliRunner().invoke(group, [command, *arguments, "--seed", "-3"])
    assert result.exit_code == 2 and "Invalid value for '--seed': -3 is not in the range" in result.output


def test_a_seed_the_random_generators_cannot_take_stops_the_library_call_before_any_work(raw_dir, styles_dir,
                                                                                         tmp_path):
    from augment.dataset import DatasetError, Settings
    from augment.generate import generate as run_generation

    with pytest.raises(DatasetError, match="seed -3 is not a whole number from 0 to 4294967295"):
        run_generation(raw_dir, tmp_path / "out", [styles_dir], Settings(seed=-3), workers=1, progress=False)
    assert not (tmp_path / "out").exists()


def test_the_mask_aware_detector_can_find_the_faces_to_mask(raw_dir, styles_dir, tmp_path, monkeypatch):
    from augment.faces import face_box
    from detect import faces as detect_faces
    from detect.network import build_detector
    from train.model import save_model_file

    result = generate(raw_dir, tmp_path / "a", styles_dir, "--detector", "maskdet",
                      "--detector-model", tmp_path / "none.keras")
    assert result.exit_code == 1 and "none.keras" in result.output
    assert len(result.output.strip().splitlines()) == 1

    model = tmp_path / "det.keras"
    save_model_file(build_detector(2, "none", 0.35, 64), model,
                    {"kind": "detector", "labels": ["with_mask", "without_mask"], "input_side": 128})
    asked = []

    def boxes_of_the_faces(rgb, detector_path):  # stands in for a trained detector: the faces' own boxes
        asked.append(detector_path)
        return [(face_box(face.landmarks), 0.9) for face in find_faces(rgb)]

    monkeypatch.setattr(detect_faces, "scene_face_boxes", boxes_of_the_faces)
    out = tmp_path / "b"
    result = generate(raw_dir, out, styles_dir, "--detector", "maskdet", "--detector-model", model)
    assert result.exit_code == 0, result.output
    made = [r for r in records(out) if r["label"] == "with_mask"]
    assert made and asked and set(asked) == {model}
    assert {r["detector"] for r in made} == {"maskdet"}
    settings = json.loads((out / ".parts" / "settings.json").read_text())
    assert settings["detector"] == "maskdet" and settings["detector_model"] == str(model)


@pytest.mark.parametrize("target, expected", [
    ("generate", ["--raw", "my photos", "--out", "the out", "--styles", "my masks"]),
    ("evaluate", ["--model", "my models/m 1.keras", "--report", "my models/m 1/evaluate.json"]),
])
def test_make_targets_pass_paths_with_spaces_whole(target, expected):
    variables = ["RAW=my photos", "OUT=the out", "STYLES=my masks", "MODEL=my models/m 1.keras"]
    printed = subprocess.run(["make", "-n", "-C", str(PROJECT), target, *variables], capture_output=True,
                             text=True, check=True).stdout
    command = next(line for line in printed.replace("\\\n", " ").splitlines() if " -m " in line and target in line)
    words = shlex.split(command)
    assert all(words[words.index(flag) + 1] == value for flag, value in zip(expected[::2], expected[1::2]))

"""Command line: ``python -m detect image | video | evaluate``."""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import click

from augment.cli import (SEED, Stage, exit_interrupted, refuse_writing_over_inputs, require_picture_out, require_writable,
                         warn)
from augment.images import ImageError
from detect.faces import FACE_DETECTORS, DlibLabeller, Labeller

if TYPE_CHECKING:
    import numpy as np


DEFAULT_MODEL = "models/mask_classifier.keras"
DEFAULT_DETECTOR_MODEL = "models/mask_detector.keras"
EXPECTED = (ValueError, OSError)  # ModelError, VideoError, DataError, unwritable paths: one line, exit 1
DRAWN_SUFFIX = ".detected.jpg"  # what `image` writes for NAME.jpg: NAME.detected.jpg
# `image` looks for faces on a copy this long: on a 12-megapixel phone photo HOG (upsample 1) took
# 1.0 s there against 3.9 s on the photo itself, and still finds faces from 2 % of its width.
IMAGE_DETECT_SIDE = 2048
MIN_DETECT_SIDE = 64
# The face detector of `image` and `evaluate` unless one is chosen: HOG, and where it finds no face
# the generator's cascade (``augment.faces.face_boxes``). On detection_dev's 248 scenes (upsample 1)
# it found 34.8 % of the masked faces 40 px or taller against HOG's 27.5 % (unmasked 69.6 % against
# 67.4 %), AP50 0.133 against 0.092 masked, 0.256 against 0.193 unmasked, in 357 ms an image against
# 65 ms, the time going to the photos where HOG finds nothing. Video keeps to HOG, for its frame rate.
IMAGE_DETECTOR = "auto"
VIDEO_DETECTOR = "hog"
# From this many images on, dlib's detectors find the faces in a process per core (it holds
# Python's lock, so threads would take turns); fewer do not repay starting them (about half a
# second). HOG on detection_dev's 400-px photos, whole command: 8 photos 6.0-7.2 s in processes
# against 6.1-6.3 s in threads, 32 photos 6.7-7.6 s against 7.3-7.7 s, all 248 12.4-12.7 s
# against 15.6-17.2 s.
FOLDER_IN_PROCESSES = 24


def _model_option(function):
    return click.option("--model", "model_path", type=click.Path(dir_okay=False, path_type=Path),
                        default=DEFAULT_MODEL, show_default=True, help="A classifier made by `python -m train fit`.")(function)


def _detector_options(default: str):
    """The face-detector options of a command whose ``--detector`` is ``default`` unless given."""
    return functools.partial(_add_detector_options, default=default)


def _add_detector_options(function, default: str):
    function = click.option("--detector-model", type=click.Path(dir_okay=False, path_type=Path),
                            default=DEFAULT_DETECTOR_MODEL, show_default=True,
                            help="The mask-aware detector (`python -m detect train-detector`), for --detector maskdet.")(function)
    function = click.option("--upsample", type=click.IntRange(0, 3), default=None,
                            help="Times dlib's detectors double the picture first (default: 1 for images, 0 for video).")(function)
    function = click.option("--threshold", type=float, default=None,
                            help="Drop faces the face detector scores below this (default: 0 for dlib's, 0.35 for maskdet).")(function)
    function = click.option("--mirror/--no-mirror", default=None,
                            help="maskdet: look at each picture mirrored too and average each face's two boxes "
                                 "(steadier boxes and labels, about 1.5x its time; default: on for images, off for "
                                 "video).")(function)
    function = click.option("--classify/--no-classify", default=True, show_default=True,
                            help="maskdet: the classifier (--model) weighs in on each face's label. "
                                 "dlib's detectors always need it.")(function)
    return click.option("--detector", type=click.Choice(FACE_DETECTORS), default=default, show_default=True,
                        help="hog: fast; cnn: dlib's CNN, finds more masked faces, ~45x slower; auto: HOG, and "
                             "where it finds no face, the generator's slower looks (a quarter more masked faces "
                             "than HOG); maskdet: trained on generated scenes, finds and labels faces in one "
                             "pass.")(function)


def _image_side_option(function):
    def at_least_the_minimum(ctx: click.Context, param: click.Parameter, value: int) -> int:
        if 0 < value < MIN_DETECT_SIDE:
            raise click.BadParameter(f"{value} is too small: 0 or at least {MIN_DETECT_SIDE}")
        return value

    return click.option("--detect-side", type=click.IntRange(0), default=IMAGE_DETECT_SIDE, show_default=True,
                        callback=at_least_the_minimum,
                        help="Look for faces on a copy at most this long (a panorama's longer; boxes are mapped "
                             "back, faces classified at full size); 0: on the picture itself, slower on large "
                             "photos.")(function)


def _labeller(detector: str, model_path: Path, classify: bool, detector_model: Path, upsample: int,
              threshold: float | None, max_side: int | None = None, mirror: bool = True):
    """The face-labelling function for the chosen detector, its models loaded (or a one-line error)."""
    from detect.faces import SCENE_DETECTOR, make_labeller

    if not classify and detector != SCENE_DETECTOR:
        raise click.ClickException(f"--no-classify: the {detector} detector needs the classifier to label faces")
    try:
        return make_labeller(detector, model_path if classify else None, detector_model, upsample, threshold, max_side,
                             mirror)
    except EXPECTED as error:
        raise click.ClickException(str(error)) from None


def drawn_targets(files: list[Path], out: Path | None) -> list[Path]:
    """Where ``image`` writes each file's drawing: beside it, or in the folder ``out``, as
    STEM.detected.jpg, no two the same. STEM is ``augment.dataset.output_stems`` of the paths below
    the folder they share, as the generator names its inputs: ``a`` alone, ``a-jpg`` beside
    ``a.png``, ``sub__a`` for ``sub/a.jpg`` of a folder given."""
    from augment.dataset import output_stems

    groups: dict[Path, list[int]] = {}
    for index, path in enumerate(files):
        groups.setdefault(out or path.parent, []).append(index)
    targets = list(files)
    for folder, indexes in groups.items():
        absolute = [os.path.abspath(files[index]) for index in indexes]
        common = os.path.commonpath([os.path.dirname(path) for path in absolute])
        relative = [Path(os.path.relpath(path, common)).as_posix() for path in absolute]
        stems = output_stems(relative)
        for index, name in zip(indexes, relative):
            targets[index] = folder / f"{stems[name]}{DRAWN_SUFFIX}"
    return targets


def _labelled_images(find: Labeller, files: list[Path]) -> Iterator[tuple[np.ndarray, list] | ImageError]:
    """Each file read and its faces labelled by ``find``, in order: (image, faces), or the ImageError
    it could not be read for. Closing the generator finishes the images under way and begins no other."""
    from augment.faces import face_boxes_in_file
    from augment.images import load_rgb
    from augment.interrupts import in_order

    if isinstance(find, DlibLabeller) and len(files) >= FOLDER_IN_PROCESSES:
        # dlib holds Python's lock: a process per core finds the faces, this one labels them.
        workers = os.cpu_count() or 1
        found = in_order(face_boxes_in_file, [find.finding(path) for path in files], workers, ahead=2 * workers,
                         processes=True)
        try:
            for outcome in found:
                yield outcome if isinstance(outcome, ImageError) else (outcome[0], find.label(*outcome))
        finally:
            found.close()
        return

    def labelled(path: Path) -> tuple[np.ndarray, list] | ImageError:
        try:
            rgb = load_rgb(path)
        except ImageError as error:
            return error
        return rgb, find(rgb)

    # Two images at a time: one's faces are classified (TensorFlow) while the next one's are
    # found, a fifth quicker on a folder than one at a time.
    yield from in_order(labelled, files, workers=2, ahead=4)


@click.group(cls=Stage)
def main() -> None:
    """Find faces and label each mask / no mask, with a confidence."""


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@_model_option
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Folder for the annotated pictures, or a file name (.jpg, .png) for the picture of a single "
                   "image (default: beside each input, as NAME.detected.jpg; SUB__NAME.detected.jpg in the "
                   "folder for SUB/NAME.jpg of a folder given).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write every result here as JSON.")
@_image_side_option
@_detector_options(IMAGE_DETECTOR)
def image(paths: tuple[Path, ...], model_path: Path, out: Path | None, json_path: Path | None, detect_side: int,
          detector: str, classify: bool, threshold: float | None, upsample: int | None, detector_model: Path,
          mirror: bool | None) -> None:
    """Label the faces of each image; write NAME.detected.jpg and print what was found."""
    from tqdm import tqdm

    from augment.images import save_rgb, write_atomic
    from detect.draw import draw_faces

    files, targets = _images_and_pictures(paths, out, json_path)
    find, _ = _labeller(detector, model_path, classify, detector_model, 1 if upsample is None else upsample, threshold,
                        detect_side or None, mirror=mirror is not False)

    results, failures, interrupted = [], 0, False
    labelling = _labelled_images(find, files)
    # A bar for a folder's worth, under the lines of what was found (written above it, not through it).
    bar = tqdm(zip(files, targets, labelling), total=len(files), desc="images", unit="img", disable=len(files) < 2,
               leave=False)
    try:
        for path, target, outcome in bar:
            if isinstance(outcome, ImageError):
                warn(f"warning: skipped {path}: {outcome}")
                failures += 1
                continue
            rgb, faces = outcome
            try:
                save_rgb(target, draw_faces(rgb, faces))
            except OSError as error:
                warn(f"warning: {target}: cannot be written ({error.strerror})")
                failures += 1
            summary = ", ".join(f"{face.label} {face.confidence:.0%}" for face in faces) or "no face found"
            tqdm.write(f"{path}: {summary} -> {target}", file=sys.stdout)
            results.append({"image": str(path), "size": [rgb.shape[1], rgb.shape[0]],  # upright, as boxes are
                            "faces": [face.as_json() for face in faces]})
    except KeyboardInterrupt:  # a long folder stopped by Ctrl-C still gets the JSON of what it labelled
        interrupted = True
    finally:
        labelling.close()  # the images under way are finished, no other is begun
        bar.close()
    if json_path is not None:
        write_atomic(json_path, json.dumps(results, indent=1).encode())
    if interrupted:
        click.echo(f"\ninterrupted after {len(results)} of {len(files)} images"
                   + (f"; {json_path} holds those" if json_path is not None else ""), err=True)
        sys.exit(130)
    faceless = sum(not record["faces"] for record in results)
    if faceless and detector in ("hog", "auto"):
        click.echo(f"no face found in {faceless} of {len(results)} images; dlib's {detector} misses many masked "
                   "faces: try --detector maskdet" + (" or --detector auto" if detector == "hog" else ""), err=True)
    if failures:
        click.echo(f"{failures} of {len(files)} images could not be used", err=True)
        sys.exit(1 if failures == len(files) else 0)


def _images_and_pictures(paths: tuple[Path, ...], out: Path | None, json_path: Path | None
                         ) -> tuple[list[Path], list[Path]]:
    """The image files ``detect image`` labels (folders listed) and where each one's drawing goes.

    ClickException, before any work, for a folder with no images, ``--out`` naming one picture
    for several images, an output that cannot be written, or one that would overwrite an input.
    """
    from augment.images import IMAGE_SUFFIXES, is_image_path, pictures_under

    # A folder's earlier results are not inputs: run twice, the second run would label its own drawings.
    found = {path: [q for q in pictures_under(path)[0] if not q.name.endswith(DRAWN_SUFFIX)] if path.is_dir()
             else [path] for path in paths}
    empty = [str(path) for path, pictures in found.items() if not pictures]
    if empty:  # a wrong folder, not a folder whose pictures all failed: nothing would be said of it
        raise click.ClickException(f"{', '.join(empty)}: no images ({', '.join(IMAGE_SUFFIXES)})")
    files = [picture for pictures in found.values() for picture in pictures]
    require_writable(json_path)
    one_picture = out is not None and is_image_path(out) and not out.is_dir()
    if one_picture:
        if len(files) != 1:
            raise click.ClickException(f"--out {out}: a file name, but {len(files)} images were given; give a folder")
        require_picture_out(out)
    elif out is not None:
        require_writable(out, folder=True)
    targets = [out] * len(files) if one_picture else drawn_targets(files, out)
    refuse_writing_over_inputs([json_path, *targets], files)
    return files, targets


@main.command()
@click.argument("source", default="0")
@_model_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the annotated video here (MP4).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write one record per frame here as JSON at the end; as JSON lines while it runs if the "
                   "name ends in .jsonl (for a camera watched for hours: nothing held, nothing lost).")
@click.option("--no-display", is_flag=True, help="Never open a window (none opens anyway without a display).")
@click.option("--every", type=click.IntRange(1), default=3, show_default=True,
              help="Look for faces every N frames; hold the labelled boxes in between.")
@click.option("--detect-side", type=click.IntRange(MIN_DETECT_SIDE), default=640, show_default=True,
              help="Detect on a copy of the frame at most this long (boxes are mapped back).")
@click.option("--max-frames", type=click.IntRange(1), default=None)
@_detector_options(VIDEO_DETECTOR)
def video(source: str, model_path: Path, out: Path | None, json_path: Path | None, no_display: bool, every: int,
          detect_side: int, max_frames: int | None, detector: str, classify: bool, threshold: float | None,
          upsample: int | None, detector_model: Path, mirror: bool | None) -> None:
    """Label faces in a video file, a webcam when SOURCE is its index (default 0), or a stream given
    as a URL (an IP camera's rtsp://..., or http://...).

    Ctrl-C (or q in the window) stops it; the outputs then hold the frames seen so far. A camera
    or stream that stops sending is opened again (3 tries, 2 s apart); when it cannot be, or a
    frame cannot be decoded, the outputs hold the frames before it and the exit status is 1.
    """
    from tqdm import tqdm

    from augment.images import write_atomic
    from detect.sources import open_source, quiet_capture_backends
    from detect.video import RecordLines, display_available, process_video

    quiet_capture_backends()
    require_writable(json_path)
    require_writable(out)
    refuse_writing_over_inputs([out, json_path], [Path(source)])
    try:
        opened = open_source(source)  # a missing file or camera fails before the model loads
    except EXPECTED as error:
        raise click.ClickException(str(error)) from None
    find, _ = _labeller(detector, model_path, classify, detector_model, 0 if upsample is None else upsample,
                        threshold, detect_side, mirror=bool(mirror))
    display = not no_display and display_available()
    if not no_display and not display:
        click.echo("note: no display available; running without a window", err=True)
    total = min(filter(None, (opened.length, max_frames)), default=None)
    lines = RecordLines(json_path) if json_path is not None and json_path.suffix.lower() == ".jsonl" else None
    with tqdm(desc="video", unit="frame", total=total, disable=display) as bar:
        try:
            result = process_video(opened, find, every, out, display, max_frames, on_frame=lambda _: bar.update(),
                                   on_record=lines.write if lines else None)
        except EXPECTED as error:
            if lines is not None:
                lines.close()
            raise click.ClickException(str(error)) from None
    report = result.summary(source)
    if lines is not None:
        lines.close(report)
    elif json_path is not None:
        write_atomic(json_path, json.dumps(result.as_json(source)).encode())
    frames, faces = report["frames"], result.faces
    click.echo(f"{source}: {frames} frame{'s' if frames != 1 else ''} in {report['seconds']:.1f} s "
               f"({report['fps']} FPS), {faces} face{'s' if faces != 1 else ''} on detection frames"
               + (f" -> {out}" if out else "")
               + (" (stopped by Ctrl-C)" if result.interrupted else ""))
    if result.failure:
        warn(f"Error: {source}: {result.failure}; the outputs hold the {report['frames']} frames before it")
        sys.exit(1)
    if result.interrupted and not opened.live:
        sys.exit(130)  # the file was not seen to its end; a camera or a live stream has no other end


@main.command()
@_model_option
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="A folder with images/ and annotations/ (PASCAL VOC .xml).")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None)
@_image_side_option
@_detector_options(IMAGE_DETECTOR)
def evaluate(model_path: Path, data: Path, report: Path | None, detect_side: int, detector: str, classify: bool,
             threshold: float | None, upsample: int | None, detector_model: Path, mirror: bool | None) -> None:
    """AP@0.5 per class and recall per box size on annotated scenes.

    AP takes every face the detector finds down to a low score; recall takes those at the
    operating threshold (--threshold, or the detector's default).
    """
    from augment.images import write_atomic
    from detect.evaluate import evaluate_scenes, score_thresholds, summary_lines

    require_writable(report)
    floor, operating = score_thresholds(detector, threshold)
    find, labels = _labeller(detector, model_path, classify, detector_model, 1 if upsample is None else upsample, floor,
                             detect_side or None, mirror=mirror is not False)
    try:
        result = evaluate_scenes(data, find, labels, detector, threshold=operating)
    except EXPECTED as error:
        raise click.ClickException(str(error)) from None
    if report is not None:
        write_atomic(report, json.dumps(result, indent=1).encode())
    click.echo("\n".join(summary_lines(result, labels)))


@main.command("train-detector")
@click.option("--scenes", type=click.Path(file_okay=False, path_type=Path), default="dataset_scenes", show_default=True,
              help="Scenes made by `python -m augment scenes`.")
@click.option("--model", "model_path", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_DETECTOR_MODEL,
              show_default=True, help="Detector file to write; its report goes to a folder of the same name beside it.")
@click.option("--weights", default="imagenet", show_default=True,
              help="MobileNetV2 start: imagenet (Keras downloads it), none, or a .weights.h5 file.")
@click.option("--alpha", type=float, default=0.35, show_default=True, help="MobileNetV2 width; must match the weights.")
@click.option("--epochs", type=click.IntRange(1), default=30, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=16, show_default=True)
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True,
              help="Starting rate, decayed over the epochs; lower when continuing with --start-from.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--side", type=click.IntRange(64, 1024), default=320, show_default=True,
              help="Side of the square training cuts, a multiple of 32.")
@click.option("--inference-side", type=click.IntRange(64, 2048), default=512, show_default=True,
              help="Images are scaled to this longest side to detect.")
@click.option("--start-from", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Continue from this detector's weights (e.g. on more or newer scenes).")
def train_detector(scenes: Path, model_path: Path, weights: str, alpha: float, epochs: int, batch_size: int,
                   learning_rate: float, seed: int, side: int, inference_side: int, start_from: Path | None) -> None:
    """Train the mask-aware face detector on generated scenes.

    Interrupted, the same command goes on from the last finished epoch (saved in unfinished/ in the report folder).
    """
    from detect.train_detector import DetectorRecipe, train_detector as train
    from train.fit import run_folder

    require_writable(model_path)
    if side % 32:
        raise click.ClickException(f"--side {side}: must be a multiple of 32")
    recipe = DetectorRecipe(weights=weights, alpha=alpha, side=side, inference_side=inference_side, epochs=epochs,
                            batch_size=batch_size, learning_rate=learning_rate, seed=seed,
                            start_from=str(start_from) if start_from else None)
    try:
        summary = train(scenes, model_path, recipe)
    except EXPECTED as error:
        raise click.ClickException(str(error)) from None
    except KeyboardInterrupt:
        exit_interrupted(f"every finished epoch, in {run_folder(model_path) / 'unfinished'},")
    losses = summary["history"]
    click.echo(f"wrote {model_path} in {summary['seconds']:.0f} s; loss {losses['loss'][-1]:.3f}"
               + (f", validation loss {losses['val_loss'][-1]:.3f}" if "val_loss" in losses else ""))
    for label, entry in summary.get("val", {}).get("classes", {}).items():
        click.echo(f"  generated validation scenes, {label}: AP50 {entry['ap50']:.3f}, found {entry['found']['all']:.1%}")

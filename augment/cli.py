"""Command line: ``python -m augment generate | sheet | scenes | styles | preview | draw-styles | demo``."""
from __future__ import annotations

import functools
import json
import math
import os
import sys
from pathlib import Path
from typing import NoReturn

import click
import cv2
import numpy as np

from augment.dataset import LABELS, MAX_SEED, SPLITS, DatasetError, Settings, SettingsChanged
from augment.faces import FACE_DETECTORS, SCENE_DETECTOR, Face
from augment.outputs import SPLIT_BY
from augment.styles import MaskStyle

PROJECT = Path(__file__).resolve().parent.parent
BUILTIN_STYLES = PROJECT / "mask_images"
# A preview is for looking at: a larger photo is shown this many pixels long (each of its halves),
# not as a side-by-side picture of twice a camera's megapixels.
PREVIEW_SIDE = 1600


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _summary(report: dict) -> str:
    line = (f"{_count(report['faces'], 'face')} from {_count(report['inputs'], 'image')}: {report['with_mask']} "
            f"with_mask + {report['without_mask']} without_mask in {report['seconds']:.1f} s")
    if report["resumed"]:
        line += f" ({_count(report['resumed'], 'image')} kept from an earlier run)"
    if report["removed"]:
        line += f"; removed the outputs of {_count(len(report['removed']), 'image')} no longer in the input folder"
    if report["changed"]:
        line += f"; made {_count(len(report['changed']), 'image')} again: changed since the earlier run"
    if report["restyled"]:
        line += f"; made {_count(len(report['restyled']), 'image')} again for the changed mask styles"
    if report["copies"]:
        line += (f"; {report['copies']} images are copies of others (mirrored, turned, cropped, resized, "
                 "re-saved): each group in one split")
    if report["split_by"] == "folder":
        line += "; split by folder (" + ", ".join(f"{count} {name}" for name, count in report["splits"].items()) + ")"
    if report["skipped"]:
        reasons = ", ".join(f"{count} {reason}" for reason, count in report["skip_reasons"].items())
        line += f"; skipped {len(report['skipped'])}: {reasons} (see report.json)"
    return line


def exit_interrupted(kept: str) -> NoReturn:
    """End a run stopped by Ctrl-C as a shell would (status 130), saying what is kept and how to go on."""
    click.echo(f"\ninterrupted: {kept} is kept; run the same command again to go on", err=True)
    sys.exit(130)


def require_writable(path: Path | None, folder: bool = False) -> None:
    """Fail before any work if the output file ``path`` (with ``folder``: the output folder) could
    not be made or written; None: no output. Nothing is made here: a run refused later for another
    reason leaves no empty folder behind."""
    if path is None:
        return
    existing = path if folder else path.parent
    try:
        while not existing.exists() and existing != existing.parent:  # the folder the missing ones go in
            existing = existing.parent
    except OSError as error:
        raise click.ClickException(f"{path}: cannot be written ({error.strerror})") from None
    if not existing.is_dir():
        raise click.ClickException(f"{path}: cannot be written ({existing} is a file)")
    if (not folder and path.is_dir()) or not os.access(existing, os.W_OK | os.X_OK):
        raise click.ClickException(f"{path}: cannot be written")


def require_picture_out(path: Path) -> None:
    """``require_writable`` for a picture given as ``--out``: also fail unless its suffix names a
    format pictures are written in."""
    from augment.images import ImageError, require_picture_suffix

    try:
        require_picture_suffix(path)
    except ImageError as error:
        raise click.ClickException(f"--out {error}") from None
    require_writable(path)


def refuse_writing_over_inputs(outputs: list[Path | None], inputs: list[Path]) -> None:
    """A one-line error, before any work, if an output names one of the inputs: they are only read."""
    read = {os.path.realpath(path) for path in inputs}
    for output in outputs:
        if output is not None and os.path.realpath(output) in read:
            raise click.ClickException(f"{output}: is an input, and inputs are only read; write somewhere else")


class Stage(click.Group):
    """A stage's command group. A Ctrl-C that its command does not answer itself (while TensorFlow or
    a model loads, say) ends quietly with status 130 too, not with click's "Aborted!" and status 1."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo("\ninterrupted", err=True)
            sys.exit(130)


def warn(message: str) -> None:
    """A one-line warning on stderr that does not tear the progress bar."""
    from tqdm import tqdm

    tqdm.write(message, file=sys.stderr)


# Every stage's --seed: refused on the command line when the random generators could not take it.
SEED = click.IntRange(0, MAX_SEED)


def _upsample_option(function):
    return click.option("--upsample", type=click.IntRange(0, 2), default=Settings.upsample, show_default=True,
                        help="Times dlib's detectors double each photo first: 0 finds faces from about 80 px (and "
                             "smaller ones where there is no larger face), 1 from about 40 px beside larger ones "
                             "too (group photos, crowds), at about 4x the time.")(function)


@click.group(cls=Stage)
def main() -> None:
    """Make an artificial face-mask dataset from photos of unmasked faces."""


@main.command()
@click.option("--raw", type=click.Path(path_type=Path), default="dataset_raw", show_default=True,
              help="Folder of unmasked face photos (searched recursively; never modified).")
@click.option("--out", type=click.Path(path_type=Path), default="dataset_generated", show_default=True,
              help="Output folder: with_mask/, without_mask/, manifest.jsonl, report.json.")
@click.option("--styles", "style_sources", type=click.Path(path_type=Path), multiple=True,
              help="Folder of mask PNGs, or one PNG (repeatable). Default: the built-in mask_images/.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed for styles and placement.")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Worker processes. Default: one per core.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Use only the first N input images (sorted by path).")
@click.option("--full-images", is_flag=True, help="Write whole images (all faces masked) instead of face crops.")
@click.option("--margin", type=click.FloatRange(0.0, 2.0), default=Settings.margin, show_default=True,
              help="Crop margin around the face box, as a fraction of its size on each side.")
@click.option("--size", type=click.IntRange(32, 4096), default=Settings.size, show_default=True,
              help="Longest side of a crop, at most (crops are never enlarged).")
@click.option("--detector", type=click.Choice(FACE_DETECTORS), default="auto", show_default=True,
              help="auto: HOG first, then half-size, upsampled, rolled and CNN passes where it finds nothing; "
                   "maskdet: the mask-aware detector (--detector-model) finds the faces, also turned, "
                   "partly hidden and small ones.")
@_upsample_option
@click.option("--detector-model", type=click.Path(dir_okay=False, path_type=Path),
              default="models/mask_detector.keras", show_default=True,
              help="The mask-aware detector (`python -m detect train-detector`), for --detector maskdet.")
@click.option("--split-by", type=click.Choice(SPLIT_BY), default="photo", show_default=True,
              help="photo: each photo (with its copies) draws its split; folder: the photos of one subfolder "
                   "share a split, so with a folder per person (as LFW is laid out) no person is in two splits.")
@click.option("--restart", is_flag=True,
              help="Delete what earlier runs made in OUT first and make everything again (after changing "
                   "settings, which a resumed run refuses; changed styles need no restart: only the faces "
                   "they move are made again); other files there are left alone.")
@click.option("--strict", is_flag=True, help="Exit with status 1 if any input or style was skipped.")
def generate(raw: Path, out: Path, style_sources: tuple[Path, ...], seed: int, workers: int | None, limit: int | None,
             full_images: bool, margin: float, size: int, detector: str, upsample: int, detector_model: Path,
             split_by: str, restart: bool, strict: bool) -> None:
    """Put masks on every face found in RAW; write paired crops, a manifest and a report to OUT."""
    from augment.generate import generate as run
    from augment.images import FolderBusy

    settings = Settings(seed=seed, margin=margin, size=size, full_images=full_images, detector=detector,
                        upsample=upsample if detector != SCENE_DETECTOR else 0,
                        detector_model=str(detector_model) if detector == SCENE_DETECTOR else None)
    try:
        report = run(raw, out, list(style_sources) or [BUILTIN_STYLES], settings, workers, limit, warn=warn,
                     split_by=split_by, restart=restart)
    except (DatasetError, FolderBusy) as error:
        raise click.ClickException(str(error)) from None
    except KeyboardInterrupt:
        exit_interrupted(f"finished work in {out}")
    click.echo(_summary(report))
    if strict and (report["skipped"] or report["style_problems"]):
        raise SystemExit(1)


@main.command()
@click.argument("data", type=click.Path(file_okay=False, path_type=Path), default="dataset_generated")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Picture to write.  [default: DATA/sheet.jpg]")
@click.option("--count", type=click.IntRange(1, 600), default=24, show_default=True, help="Pairs to show, at most.")
@click.option("--style", "styles_wanted", multiple=True,
              help="Only faces wearing this style (repeatable): how a new style sits on many faces.")
@click.option("--found-by", "found_by", multiple=True,
              help="Only faces found by this pass of the detector cascade (repeatable; e.g. cnn, hog-roll+30): "
                   "the hard faces.")
@click.option("--split", type=click.Choice([name for name, _ in SPLITS]), default=None, help="Only faces of this split.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Which faces are drawn.")
def sheet(data: Path, out: Path | None, count: int, styles_wanted: tuple[str, ...], found_by: tuple[str, ...],
          split: str | None, seed: int) -> None:
    """Draw faces of the generated dataset DATA at random, each unmasked beside its masked twin, on one
    picture, captioned with the file name and the style: for looking at what a run made."""
    from augment.images import save_rgb
    from augment.sheet import SheetError, matching_pairs, pair_sheet, read_pairs, sample_pairs

    out = out or data / "sheet.jpg"
    require_picture_out(out)
    for label in LABELS:  # a sheet there would overwrite a face, or be trained on as one
        if (data / label).resolve() in out.resolve().parents:
            raise click.ClickException(f"{out}: inside the dataset's {label}/ folder; write the sheet elsewhere")
    try:
        pairs = read_pairs(data)
        if not pairs:
            raise SheetError(f"{data}: the dataset holds no faces (see its report.json)")
        matching = matching_pairs(pairs, styles_wanted, found_by, split)
        chosen = sample_pairs(matching, count, seed)
        picture, problems = pair_sheet(data, chosen)
    except SheetError as error:
        raise click.ClickException(str(error)) from None
    for problem in problems:
        warn(f"warning: {problem}")
    save_rgb(out, picture)
    shown = len(chosen) - len(problems)
    of = f"the {len(matching)} of {len(pairs)} that match" if len(matching) < len(pairs) else f"the {len(pairs)}"
    click.echo(f"wrote {out}: {_count(shown, 'pair')} of {of} in {data}")


@main.command()
@click.option("--styles", "style_sources", type=click.Path(path_type=Path), multiple=True,
              help="Folder of mask PNGs, or one PNG (repeatable). Default: the built-in mask_images/.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def styles(style_sources: tuple[Path, ...], as_json: bool) -> None:
    """List mask styles, their anchors, and what is wrong with any file that cannot be used.

    Exits with status 1 when a file cannot be used or no style can, so it can check a folder in a script.
    """
    from augment.blend import style_side_light
    from augment.styles import StyleError, load_styles

    try:
        found, problems = load_styles(list(style_sources) or [BUILTIN_STYLES])
    except StyleError as error:
        raise click.ClickException(str(error)) from None
    if not found and not problems:
        raise click.ClickException(f"{', '.join(map(str, style_sources))}: no mask style PNGs")
    if as_json:
        listing = [{"name": s.name, "path": str(s.path), "size": [s.rgba.shape[1], s.rgba.shape[0]],
                    "anchors_from": s.anchors_from, "anchors": s.anchors, "weight": s.weight, "creases": s.creases,
                    "narrowed": s.narrowed, "reduced_from": s.reduced_from,
                    "side_light": round(style_side_light(s), 3)}
                   for s in found]
        click.echo(json.dumps({"styles": listing, "problems": problems}, indent=2))
    else:
        _print_styles(found, problems)
    if problems or not found:
        raise SystemExit(1)


def _print_styles(found: list[MaskStyle], problems: list[str]) -> None:
    from augment.blend import STYLE_SIDE_LIGHT, style_side_light
    from augment.styles import MIN_TILT

    total = sum(style.weight for style in found)
    for style in found:
        anchors = "  ".join(f"{name}=({x:.0f},{y:.0f})" for name, (x, y) in style.anchors.items())
        (left_x, left_y), (right_x, right_y) = style.anchors["left"], style.anchors["right"]
        turned = -math.degrees(math.atan2(right_y - left_y, right_x - left_x))  # counter-clockwise as seen
        notes = "  narrowed to the jaw" if style.narrowed else ""
        notes += f"  lies turned {turned:+.0f} degrees (worn upright)" if abs(turned) >= MIN_TILT else ""
        light = style_side_light(style)
        if abs(light) >= STYLE_SIDE_LIGHT:
            notes += f"  lit from the {'left' if light > 0 else 'right'} (worn turned to each face's light)"
        reduced = f" (reduced from {style.reduced_from[0]}x{style.reduced_from[1]})" if style.reduced_from else ""
        click.echo(f"{style.name:<18} {style.rgba.shape[1]}x{style.rgba.shape[0]}{reduced}  anchors from "
                   f"{style.anchors_from:<7}  {anchors}  creases {style.creases:g}  drawn {style.weight / total:.1%}"
                   f"{notes}")
    for problem in problems:
        click.echo(f"problem: {problem}")
    click.echo(f"{len(found)} usable styles, {len(problems)} problems")


def _find_style(name_or_path: str, style_sources: list[Path]):
    from augment.images import is_image_path
    from augment.styles import StyleError, load_style, load_styles

    candidate = Path(name_or_path)
    if is_image_path(candidate) or candidate.exists():
        return load_style(candidate)
    found, _ = load_styles(style_sources)
    for style in found:
        if style.name == name_or_path:
            return style
    names = ", ".join(s.name for s in found)
    raise StyleError(f"{name_or_path}: no such style (known: {names})")


def preview_image(rgb: np.ndarray, faces: list[Face], style: MaskStyle, seed: int = 0) -> tuple[np.ndarray, list[int]]:
    """``rgb`` with the style on each of ``faces``, beside a copy showing their landmarks and the style's
    anchors; and the indexes of the faces that generate would leave out (``dataset.misfits``), whose
    masks are shown all the same, so that the user sees why."""
    from augment import fit
    from augment.blend import MaskParams, placed_mask, placement, wear_mask
    from augment.dataset import misfits
    from augment.geometry import apply_affine, fit_affine

    rng = np.random.default_rng(seed)
    masked, left_out = rgb, []
    for index, face in enumerate(faces):
        params = MaskParams(style.name)
        placed = placed_mask(masked.shape, face.landmarks, style, params)
        if misfits(face.landmarks, placed, masked.shape):
            left_out.append(index)
        masked = wear_mask(masked, face.landmarks, style, params, rng, placed)
    marked = masked.copy()
    radius = max(1, round(max(rgb.shape[:2]) / 300))
    for face in faces:
        template_points, face_points = fit.mask_placement(face.landmarks, placement(style, MaskParams(style.name)))
        for x, y in face.landmarks:
            cv2.circle(marked, (round(x), round(y)), radius, (0, 255, 0), -1, cv2.LINE_AA)
        # Where the style's four anchors land on this face.
        to_face = fit_affine(template_points, face_points)
        anchors = apply_affine(to_face, np.array([style.anchors[n] for n in fit.ANCHOR_NAMES]))
        for x, y in anchors:
            cv2.drawMarker(marked, (round(x), round(y)), (255, 0, 255), cv2.MARKER_CROSS, radius * 8, radius)
    return np.hstack([masked, marked]), left_out


@main.command()
@click.argument("style")
@click.argument("image", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default="preview.png", show_default=True)
@click.option("--styles", "style_sources", type=click.Path(path_type=Path), multiple=True,
              help="Where to look STYLE up by name. Default: the built-in mask_images/.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@_upsample_option
def preview(style: str, image: Path, out: Path, style_sources: tuple[Path, ...], seed: int, upsample: int) -> None:
    """Show how STYLE (a name or a PNG path) sits on the faces of IMAGE, landmarks drawn (a larger
    IMAGE is shown 1600 px long)."""
    from augment.faces import find_faces
    from augment.images import ImageError, load_rgb_reduced, resize_longest, save_rgb
    from augment.styles import StyleError

    require_picture_out(out)
    refuse_writing_over_inputs([out], [image])
    try:
        chosen = _find_style(style, list(style_sources) or [BUILTIN_STYLES])
        rgb, _ = load_rgb_reduced(image, PREVIEW_SIDE)
    except StyleError as error:
        raise click.ClickException(str(error)) from None
    except ImageError as error:
        raise click.ClickException(f"{image}: {error}") from None
    if max(rgb.shape[:2]) > PREVIEW_SIDE:
        rgb, _ = resize_longest(rgb, PREVIEW_SIDE)
    faces = find_faces(rgb, "auto", upsample, unmasked=True)
    if not faces:
        raise click.ClickException(f"{image}: no face found")
    picture, left_out = preview_image(rgb, faces, chosen, seed)
    save_rgb(out, picture)
    click.echo(f"wrote {out}")
    for index in left_out:  # shown as worn, but said: the preview should not promise more
        warn(f"warning: {image}, face {index}: generate leaves it out, the mask would leave its nose or mouth "
             f"bare (the head turned too far, or a gap in the alpha of {chosen.path.name})")


@main.command("draw-styles")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=str(BUILTIN_STYLES),
              show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True)
def draw_styles(out: Path, seed: int) -> None:
    """Render the built-in mask styles (PNG + anchor sidecar each) into OUT."""
    from augment.draw_styles import write_styles

    require_writable(out, folder=True)
    for path in write_styles(out, seed):
        click.echo(f"wrote {path}")


@main.command()
@click.option("--raw", type=click.Path(path_type=Path), default="dataset_raw", show_default=True,
              help="Folder of unmasked face photos; its faces are generated first (kept in OUT/faces/).")
@click.option("--out", type=click.Path(path_type=Path), default="dataset_scenes", show_default=True,
              help="Output folder: images/, annotations/ (VOC), annotations.json (COCO), manifest.jsonl.")
@click.option("--count", type=click.IntRange(min=1), default=2000, show_default=True, help="Number of scenes.")
@click.option("--styles", "style_sources", type=click.Path(path_type=Path), multiple=True,
              help="Folder of mask PNGs, or one PNG (repeatable). Default: the built-in mask_images/.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Worker processes for the faces.")
def scenes(raw: Path, out: Path, count: int, style_sources: tuple[Path, ...], seed: int, workers: int | None) -> None:
    """Scenes of many masked and unmasked faces at many sizes, with boxes, for training a detector."""
    from augment.generate import generate as run
    from augment.scenes import SceneSettings, make_scenes

    try:
        faces = run(raw, out / "faces", list(style_sources) or [BUILTIN_STYLES], Settings(seed=seed), workers,
                    warn=warn)
        click.echo(_summary(faces))
        report = make_scenes(out / "faces", out, count, SceneSettings(seed=seed))
    except DatasetError as error:
        raise click.ClickException(str(error)) from None
    except ValueError as error:  # no face to build scenes from
        raise click.ClickException(str(error)) from None
    except KeyboardInterrupt:
        exit_interrupted(f"finished work in {out}")
    click.echo(f"{report['scenes']} scenes with {report['faces']} faces ({report['labels']}) in {out}")


@main.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default="build/demo", show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=None)
def demo(out: Path, workers: int | None) -> None:
    """Generate from a built-in public-domain face (no data needed) and draw contact sheets of the result."""
    from augment.demo import astronaut, write_demo_faces
    from augment.faces import find_faces
    from augment.generate import generate as run
    from augment.images import contact_sheet, save_rgb
    from augment.sheet import pair_sheet, read_pairs
    from augment.styles import load_styles

    require_writable(out, folder=True)
    write_demo_faces(out / "raw")
    make = functools.partial(run, out / "raw", out / "generated", [BUILTIN_STYLES], Settings(), workers, warn=warn)
    try:
        try:
            report = make()
        except SettingsChanged:
            # An earlier demo, made by an older recipe or with other defaults: the demo's output is
            # made wholly from built-in data, so it is made again rather than refused.
            click.echo(f"{out / 'generated'}: made by an earlier version of the demo; making it again")
            report = make(restart=True)
    except DatasetError as error:
        raise click.ClickException(str(error)) from None
    click.echo(_summary(report))

    examples, _ = pair_sheet(out / "generated", read_pairs(out / "generated"))
    save_rgb(out / "examples.png", examples)

    face = astronaut()
    faces = find_faces(face, unmasked=True)
    found, _ = load_styles([BUILTIN_STYLES])
    gallery = [preview_image(face, faces, style)[0][20:250, 115:345] for style in found]  # the face and its mask
    save_rgb(out / "styles.png", contact_sheet(gallery, 5, 220, [style.name for style in found]))
    click.echo(f"wrote {out / 'examples.png'} and {out / 'styles.png'}")

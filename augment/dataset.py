"""Turning a folder of unmasked photos into a paired, split, resumable mask dataset.

Layout of the output folder::

    with_mask/NAME.jpg      the face with a generated mask
    without_mask/NAME.jpg   the same face, same crop, no mask
    manifest.jsonl          one record per output file (see ``face_records``)
    report.json             counts, skipped inputs and their reasons, time taken
    .parts/                 one finished-image record per input (``augment.outputs`` resumes from
                            them, remakes inputs changed since, and writes the manifest from them)

Each face of each input gives one pair under the same NAME (``<source stem>_<face index>``),
so the classes are balanced and differ only by the mask. Every pair lands in the split
(train / val / test) of its source image, and copies of one photo (``augment.copies``) share
a split; the manifest gets it when it is written. Random choices come from a generator seeded
by (seed, source path, face index), and the style from a hash of the same (``draw_style``), so
the output does not depend on worker scheduling.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import zlib
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from augment import copies
from augment.blend import (MaskParams, draw_creases, face_side_light, placed_mask, style_side_light, wear_mask,
                           worn_mirrored)
from augment.fit import bare_features
from augment.faces import SCENE_DETECTOR, WORK_SIDE, Face, face_box, faces_in_boxes, find_faces
from augment.geometry import crop_box
from augment.images import (ImageError, load_rgb, load_rgb_reduced, pictures_under, resize_longest, save_rgb,
                            write_atomic)
from augment.styles import MaskStyle

LABELS = ("with_mask", "without_mask")
MANIFEST = "manifest.jsonl"  # one record per output file; its presence marks a generated dataset
SPLITS = (("train", 0.8), ("val", 0.1), ("test", 0.1))
PARTS = ".parts"  # the run's settings stamp, and in IMAGE_PARTS one record per finished input
IMAGE_PARTS = Path(PARTS, "images")  # apart from the stamp, so no input's name can clash with it
MIN_FACE = 16  # pixels: a smaller face box leaves too little to draw a mask on
MISFIT = "no face a mask fits (turned so far that the mask would leave its nose or mouth bare)"


class DatasetError(RuntimeError):
    """A problem that stops a whole run (no inputs, unwritable output, no usable style)."""


class SettingsChanged(DatasetError):
    """The output folder was made with other settings, so resuming into it would mix two recipes."""


# The version of the pictures a run makes for the same settings, raised whenever they change
# (2: masks crease; 3: the first look for faces is grey, which frames some faces otherwise; 4: a
# mask reaches further on a side turned away; 5: styles are drawn by a race, ``draw_style``, and
# each part of a mask is read from a template copy as small as the warp squeezes it there; 6: a
# large JPEG is decoded at a reduced scale where its crops allow, ``process_image``; 7: a face
# whose mask would leave its nose or mouth bare is left out, ``fitted_mask``; 8: the wearer's
# glasses frames are drawn over the mask, ``glasses.find_frames``; 9: a style lit from one side is
# worn mirrored where that gives it the face's light, ``dress``), so that a run never resumes into
# a folder that an older version made.
RECIPE = 9


# Seeds are whole numbers in [0, MAX_SEED]: numpy's and Keras' random generators take no others.
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class Settings:
    """What a run produces; recorded in the output so a resumed run cannot mix two recipes."""

    seed: int = 0
    # Crops: the face box grown by this fraction on each side, so training can cut views from
    # tight to wide (real photos show anything from the face alone to the whole person) ...
    margin: float = 1.0
    size: int = 512  # ... and at most this many pixels on the longest side (never enlarged)
    full_images: bool = False  # write whole images with every face masked instead of crops
    detector: str = "auto"  # a cascade of dlib's (``augment.faces.DETECTORS``), or "maskdet"
    upsample: int = 0  # dlib's detectors double each photo this often first: 1 finds faces down to ~40 px
    detector_model: str | None = None  # the mask-aware detector's file, for "maskdet"
    quality: int = 95
    styles: tuple[str, ...] = field(default=())
    style_weights: tuple[tuple[str, int], ...] = field(default=())  # the styles whose weight is not 1
    style_fingerprints: tuple[tuple[str, str], ...] = field(default=())  # (name, styles.fingerprint)
    recipe: int = RECIPE


@dataclass
class ImageResult:
    """What one input gave: manifest records (their split still to come), or the reason it was
    skipped; the picture's ``copies.signature`` when it could be read, and its faces'
    ``copies.face_signature``."""

    source: str
    records: list[dict]
    skipped: str | None = None
    signature: str | None = None
    face_signatures: tuple[str, ...] = ()


def list_inputs(raw: Path) -> tuple[list[str], list[dict]]:
    """Image files under ``raw`` (relative POSIX paths, sorted; ``images.pictures_under``) and the
    folders that could not be read."""
    found, errors = pictures_under(raw)
    problems = [{"path": str(error.filename), "reason": f"cannot read directory: {error.strerror}"} for error in errors]
    return [path.relative_to(raw).as_posix() for path in found], problems


def _hashable(text: str) -> bytes:
    """A source path (or a key holding one) as bytes to hash: UTF-8, and where a file name is not
    UTF-8, its own bytes (Python carries them as surrogate escapes)."""
    return text.encode("utf-8", "surrogateescape")


def output_stems(sources: list[str]) -> dict[str, str]:
    """A unique, flat file stem for every source path (``a/b.jpg`` -> ``a__b``; clashes keep the
    suffix: ``a.jpg`` beside ``a.png`` -> ``a-jpg``). Names that still clash after that (``a__b.jpg``
    beside ``a/b.jpg``, ``a-jpg.png`` beside ``a.jpg`` and ``a.png``) each take a hash of their path,
    or one input's outputs would overwrite another's."""
    plain = {source: source.rsplit(".", 1)[0].replace("/", "__") for source in sources}
    counts = Counter(plain.values())
    stems = {source: stem if counts[stem] == 1 else source.replace("/", "__").replace(".", "-")
             for source, stem in plain.items()}
    clashes = Counter(stems.values())
    return {source: stem if clashes[stem] == 1
            else f"{stem}-{hashlib.blake2b(_hashable(source), digest_size=8).hexdigest()}"
            for source, stem in stems.items()}


def split_of(source: str) -> str:
    """The split of a source image (or of its group of copies, by the group's name): a fixed
    hash of its path, so both classes and every seed agree."""
    position = zlib.crc32(_hashable(source)) / 2**32
    edge = 0.0
    for name, share in SPLITS:
        edge += share
        if position < edge:
            return name
    return SPLITS[-1][0]


def face_rng(seed: int, source: str, face_index: int) -> np.random.Generator:
    """The random generator for one face, independent of order and of other faces."""
    return np.random.default_rng([seed, zlib.crc32(_hashable(source)), face_index])


def draw_style(seed: int, source: str, face_index: int, styles: Iterable[MaskStyle]) -> MaskStyle:
    """The style one face wears: each style as often as its weight.

    A race: each style runs in a time drawn for it alone, -log(u) / weight with u uniform from a
    hash of the seed, the face and the style's name, and the first one home is worn. So a style
    added, removed or reweighted changes only the faces that take it or lose it: the rest of a
    folder made before stays as a new run would make it (``outputs.forget_restyled``).
    """
    def finish(style: MaskStyle) -> float:
        key = _hashable(f"{seed}\0{face_index}\0{style.name}\0{source}")
        uniform = (int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") + 0.5) / 2**64
        return -math.log(uniform) / style.weight

    return min(styles, key=finish)


def draw_params(rng: np.random.Generator, style: str) -> MaskParams:
    """Random placement and colour choices for one face wearing ``style``: small shifts, width,
    tint, shadow strength and creases (the same draws whatever the style)."""
    brightness = float(np.exp(rng.normal(0.0, 0.12)))
    tint = tuple(round(brightness * float(np.exp(rng.normal(0.0, 0.03))), 4) for _ in range(3))
    return MaskParams(
        style=style,
        shift=round(float(np.clip(rng.normal(0.0, 0.03), -0.07, 0.07)), 4),
        width=round(float(rng.uniform(0.96, 1.06)), 4),
        tint=tint,
        shadow=round(float(rng.uniform(0.2, 0.45)), 4),
        creases=draw_creases(rng),  # drawn for rigid styles too, so a style's creases change nothing else
    )


def dress(seed: int, source: str, face_index: int, styles: Iterable[MaskStyle],
          face_light: Callable[[], float] = lambda: 0.0) -> tuple[MaskStyle, MaskParams, np.random.Generator]:
    """One face's style and random parameters, and its generator for the rest of ``wear_mask``'s draws.

    ``face_light``: gives ``blend.face_side_light`` of the face, so that a style lit from one side
    in its picture is worn lit from the face's side (``blend.worn_mirrored``, which asks for it
    only for such a style).
    """
    rng = face_rng(seed, source, face_index)
    style = draw_style(seed, source, face_index, styles)
    mirrored = worn_mirrored(style_side_light(style), face_light)
    return style, replace(draw_params(rng, style.name), mirrored=mirrored), rng


def misfits(landmarks: np.ndarray, placed: tuple[np.ndarray, tuple[int, int, int, int]],
            image_shape: tuple[int, ...]) -> bool:
    """Whether a mask as ``placed_mask`` put it on a picture of ``image_shape`` leaves the face's own
    nose tip or mouth bare (``fit.bare_features``): a masked picture that shows the mouth would
    teach the classifier the wrong label, so the generator leaves such a face out."""
    warped, box = placed
    return bool(bare_features(landmarks, warped[:, :, 3], box, image_shape))


def fitted_mask(image: np.ndarray, landmarks: np.ndarray, style: MaskStyle, params: MaskParams,
                rng: np.random.Generator) -> np.ndarray | None:
    """A copy of ``image`` with ``style`` worn by the face, or None where the mask misfits (``misfits``)."""
    placed = placed_mask(image.shape, landmarks, style, params)
    if misfits(landmarks, placed, image.shape):
        return None
    return wear_mask(image, landmarks, style, params, rng, placed)


def _rounded(values: np.ndarray | tuple, digits: int = 1) -> list:
    return np.round(np.asarray(values, dtype=np.float64), digits).tolist()


def face_records(source: str, stem: str, faces: list[Face], image: np.ndarray, settings: Settings,
                 styles: dict[str, MaskStyle], out: Path, scale: float = 1.0) -> list[dict]:
    """Write the crop pair of every face a mask fits (``fitted_mask``); return their manifest records.

    ``scale``: the image's size relative to the source file's (``load_rgb_reduced``); the
    manifest gives the face box and the crop in the source's own pixels.
    """
    records = []
    for index, face in enumerate(faces):
        style, params, rng = dress(settings.seed, source, index, styles.values(),
                                   functools.partial(face_side_light, image, face.landmarks))
        box = face_box(face.landmarks)
        x0, y0, x1, y1 = crop_box(box, settings.margin, image.shape)
        crop, crop_scale = image[y0:y1, x0:x1], 1.0
        if max(crop.shape[:2]) > settings.size:
            crop, crop_scale = resize_longest(crop, settings.size)
        landmarks = (face.landmarks - (x0, y0)) * crop_scale
        masked = fitted_mask(crop, landmarks, style, params, rng)
        if masked is None:
            continue
        name = f"{stem}_{index}.jpg"
        common = {
            "source": source,
            "face": index,
            "detector": face.detector,
            "box": _rounded((np.asarray(box) - (x0, y0, x0, y0)) * crop_scale),
            "source_box": _rounded(np.asarray(box) / scale),
            "crop": [round(v / scale) for v in (x0, y0, x1, y1)],
            "landmarks": _rounded(landmarks),
        }
        for label, pixels in (("without_mask", crop), ("with_mask", masked)):
            save_rgb(out / label / name, pixels, settings.quality)
        records.append({"path": f"with_mask/{name}", "label": "with_mask", **common,
                        "style": params.style, "params": asdict(params)})
        records.append({"path": f"without_mask/{name}", "label": "without_mask", **common,
                        "style": None, "params": None})
    return records


def masked_picture(image: np.ndarray, faces: list[Face], styles: Iterable[MaskStyle], seed: int = 0,
                   source: str = "") -> tuple[np.ndarray, dict[int, MaskParams]]:
    """A copy of ``image`` (RGB uint8, (H, W, 3)) with a mask on every one of ``faces``
    (``faces.find_faces``) that a mask fits, and the parameters of each face masked, by index.

    Each face's style and parameters are drawn from ``styles`` (``styles.load_styles``) as the
    generator draws them for face k of the file ``source`` with ``seed``: the same arguments
    give the same picture. ``image`` itself is not changed.
    """
    styles = list(styles)
    masked, worn = image, {}
    for index, face in enumerate(faces):
        face_light = functools.partial(face_side_light, masked, face.landmarks)
        style, params, rng = dress(seed, source, index, styles, face_light)
        fitted = fitted_mask(masked, face.landmarks, style, params, rng)
        if fitted is not None:
            masked, worn[index] = fitted, params
    return masked, worn


def image_records(source: str, stem: str, faces: list[Face], image: np.ndarray, settings: Settings,
                  styles: dict[str, MaskStyle], out: Path) -> list[dict]:
    """Write the whole image twice, every face a mask fits masked and none masked; return their
    manifest records (none, and nothing written, when a mask fits no face)."""
    masked, worn = masked_picture(image, faces, styles.values(), settings.seed, source)
    faces_out = [{"face": index, "box": _rounded(face_box(faces[index].landmarks)), "detector": faces[index].detector,
                  "landmarks": _rounded(faces[index].landmarks), "style": params.style, "params": asdict(params)}
                 for index, params in worn.items()]
    if not faces_out:
        return []
    name = f"{stem}.jpg"
    records = []
    for label, pixels in (("without_mask", image), ("with_mask", masked)):
        save_rgb(out / label / name, pixels, settings.quality)
        faces_here = faces_out if label == "with_mask" else [
            {key: value for key, value in face.items() if key not in ("style", "params")} for face in faces_out
        ]
        records.append({"path": f"{label}/{name}", "label": label, "source": source,
                        "size": [image.shape[1], image.shape[0]], "faces": faces_here})
    return records


def process_image(raw: Path, out: Path, source: str, stem: str, settings: Settings,
                  styles: dict[str, MaskStyle]) -> ImageResult:
    """Everything for one input image: load, find faces, write outputs and the resume record.

    Never raises for a bad image: the reason comes back in ``ImageResult.skipped``. An output
    that cannot be written (a full disk) raises DatasetError: it is no fault of the image, and
    every image after it would fail the same way.
    """
    stamp = input_stamp(raw / source)  # before reading: a file changed meanwhile is made again next run
    signature, face_signatures = None, ()
    try:
        # Faces are looked for on a copy of at most WORK_SIDE px, so a large JPEG is first decoded
        # only down to about that size, and in full only where a face's crop needs more pixels.
        image, scale = load_rgb_reduced(raw / source, None if settings.full_images else WORK_SIDE)
        signature = copies.signature(image)
        found = locate_faces(image, settings)
        if scale < 1 and not crops_keep_size(found, image.shape, settings):
            image, found, scale = load_rgb(raw / source), [face.unscaled(scale) for face in found], 1.0
        faces = [f for f in found if _box_side(f) >= MIN_FACE * scale]
        face_signatures = tuple(copies.face_signature(image, face.landmarks) for face in faces)
        if not found:
            result = ImageResult(source, [], "no face found")
        elif not faces:
            result = ImageResult(source, [], f"face too small (under {MIN_FACE} px)")
        else:
            with writing(out):
                records = (image_records(source, stem, faces, image, settings, styles, out) if settings.full_images
                           else face_records(source, stem, faces, image, settings, styles, out, scale))
            result = ImageResult(source, records, None if records else MISFIT)
    except ImageError as error:
        result = ImageResult(source, [], str(error))
    except MemoryError:
        result = ImageResult(source, [], "out of memory while processing")
    except DatasetError:
        raise
    except Exception as error:  # one bad image must not end a batch of thousands
        # on one line: some libraries' messages (dlib's) run over several
        result = ImageResult(source, [], f"internal error: {type(error).__name__}: {' '.join(str(error).split())}")
    result.signature, result.face_signatures = signature, face_signatures
    keep_result(out, stem, stamp, result)
    return result


def keep_result(out: Path, stem: str, stamp: list[int] | None, result: ImageResult) -> None:
    """Write what one input gave to ``out``'s resume records: a resumed run takes it from there
    instead of making the input again, as long as the input's ``input_stamp`` is still ``stamp``."""
    part = {"source": result.source, "stamp": stamp, "signature": result.signature,
            "face_signatures": result.face_signatures, "records": result.records, "skipped": result.skipped}
    with writing(out):
        write_atomic(out / IMAGE_PARTS / f"{stem}.json", json.dumps(part).encode())


@contextlib.contextmanager
def writing(out: Path) -> Iterator[None]:
    """Turn a failed write into a DatasetError that names the file and says finished work is kept."""
    try:
        yield
    except OSError as error:
        raise DatasetError(f"{error.filename or out}: cannot write ({error.strerror or error}); finished work "
                           "is kept: fix this and run the same command again") from None


def crops_keep_size(faces: list[Face], image_shape: tuple[int, ...], settings: Settings) -> bool:
    """Whether the crop of every face, cut from an image of ``image_shape``, has ``settings.size``
    pixels or more on its longest side, so that it is written at that size whatever the image's."""
    for face in faces:
        x0, y0, x1, y1 = crop_box(face_box(face.landmarks), settings.margin, image_shape)
        if max(x1 - x0, y1 - y0) < settings.size:
            return False
    return True


def locate_faces(image: np.ndarray, settings: Settings) -> list[Face]:
    """The faces of an RGB uint8 image and their landmarks, found by the settings' detector.

    With "maskdet" the mask-aware detector boxes the faces (it finds turned, partly hidden and
    small faces that dlib's miss) and dlib's predictor places the landmarks in each box.
    """
    if settings.detector != SCENE_DETECTOR:
        return find_faces(image, settings.detector, settings.upsample, unmasked=True)
    from detect.faces import scene_face_boxes

    return faces_in_boxes(image, scene_face_boxes(image, Path(settings.detector_model)), SCENE_DETECTOR)


def _box_side(face: Face) -> float:
    x0, y0, x1, y1 = face_box(face.landmarks)
    return min(x1 - x0, y1 - y0)


def input_stamp(path: Path) -> list[int] | None:
    """What tells a changed input file apart: [size in bytes, modification time in ns]; None if it cannot be read."""
    try:
        info = path.stat()
    except OSError:
        return None
    return [info.st_size, info.st_mtime_ns]



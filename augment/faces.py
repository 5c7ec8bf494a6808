"""Find faces and their 68 landmarks with dlib; shared by generation and detection.

Images are RGB uint8 arrays (H, W, 3). Boxes are ``(x0, y0, x1, y1)`` floats in the
pixel coordinates of the image passed in; landmarks are float32 arrays (68, 2) of (x, y)
in the iBUG 300-W order dlib uses (jaw 0-16, brows 17-26, nose 27-35, eyes 36-47,
mouth 48-67). The dlib models load on first use, once per process.
"""
from __future__ import annotations

import functools
import importlib.util
import os
import tempfile
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

import cv2
import dlib
import numpy as np

from augment.geometry import (Box, apply_affine, bounding_box, box_corners, box_iou, crop_box, rotation_onto_canvas,
                              smaller_box_covered)
from augment.images import ImageError, load_rgb, resize_longest, working_longest, write_atomic

# Single detectors a caller can name; "auto" is the cascade in find_faces.
DETECTORS = ("auto", "hog", "cnn")
# The mask-aware detector trained on generated scenes (``detect.network``): it finds and labels
# faces in one pass, with boxes but no landmarks (``faces_in_boxes`` adds them).
SCENE_DETECTOR = "maskdet"
FACE_DETECTORS = (*DETECTORS, SCENE_DETECTOR)

# The cascade works on a copy no larger than this, so detection time does not grow with
# camera resolution; faces smaller than ~1/10 of such an image are found by later passes. A
# panorama's copy is longer, keeping half of this on its short side (``working_longest``).
WORK_SIDE = 800
# dlib's CNN detector is ~30x slower than HOG. As the cascade's last resort it looks for the
# one large face of a portrait that HOG could not see, on a small copy (~0.3 s).
CNN_FALLBACK_SIDE = 224
# Before that, on a small picture (under SMALL_SIDE: most often a face cut out of a larger photo),
# the CNN looks at a copy this much smaller, a quarter of the work, and keeps a face found there
# only when its box spans CLOSE_UP_FILL of the copy: a face filling the picture is found as well
# at that size (landmarks as close to a known answer as from the full-size look, on data/raw's
# 517 faces cut tight), a smaller one is not, and is left to the full-size look.
CLOSE_UP_SHRINK = 0.5
CLOSE_UP_FILL = 0.75
# dlib's CNN detector raises on a picture under 7 px high, and on one under 10 px wide mostly
# corrupts memory and kills the process: it is given nothing smaller than this.
CNN_MIN_SIDE = 32
# Thumbnails smaller than SMALL_SIDE are enlarged to ENLARGED_SIDE before detection, so that
# their faces (a 100 px photo holds a face of ~25 px) reach the size HOG's window needs.
SMALL_SIDE = 200
ENLARGED_SIDE = 400
# When the first looks find nothing, HOG looks again at a copy this much smaller before the
# costly passes: the same face sizes from about 160 px, sampled between the scales of the first
# pass's pyramid (each level 5/6 of the last). Of the 17 photos of data/raw whose first pass finds
# nothing, it finds the face in 5, for a quarter of the first pass's time where the upsampled
# pass that found them took 4x (measured in docs/benchmarks.md).
SECOND_LOOK_SHRINK = 0.5
# The first pass reads a grey copy: over data/raw's 514 photos it takes three quarters of the time
# of HOG in colour (5.7-6.2 s against 7.3-8.2 s) and finds a face in 491 of them, colour in 497.
# A grey find this weak does not end the search, as one of 11 such photos shows (a patch of
# background at 0.007 where colour sees the face at 0.21): those photos, and the ones grey finds
# nothing in, get the colour pass, which then decides as it always has.
GREY_SURE_SCORE = 0.3
# In-plane angles tried when upright detection finds nothing: HOG's own filters find faces
# rolled up to about 40 degrees (the demo face), these extend that to about 70.
ROLL_ANGLES = (30.0, -30.0)

# Measured on 120 faces both detectors found: HOG's box is 1.09x the CNN's, its centre
# 0.04 and 0.065 of the CNN box's width further right and down (medians).
CNN_TO_HOG_SCALE = 1.09
CNN_TO_HOG_SHIFT = (0.04, 0.065)

# In photos of unmasked faces (the generator's input) a detection that is not the photo's best
# and scores under this must be confirmed by the CNN: that is where a round badge passes for a
# second face (the demo's mission patch, 0.02-0.28, which the CNN turns down). Such finds are
# rare in real photos (none in data/raw's 514; 7 in the 855 of real_dev and detection_dev, of
# which the CNN turned down 2, both masked faces: hence unmasked photos only).
EXTRA_FACE_SCORE = 0.3

# Faces whose landmarks read as rolled by more than this (degrees) are measured again upright.
REFINE_ROLL = 15.0
# The roll (eye-line angle, degrees) of the faces found by two of the five filters of dlib's
# HOG face detector: front looking, rolled either way. Measured on the demo face.
HOG_FILTER_ROLL = {3: -25.0, 4: 25.0}

JAW_POINTS = slice(0, 17)
BROW_POINTS = slice(17, 27)
CHIN_POINT = 8
HOG_BOX_SCALE = 1.04
HOG_BOX_SHIFT = 0.077


class Detection(NamedTuple):
    """A detector's find: its box, its score, and the roll (degrees) of the faces its filter finds."""

    box: Box
    score: float
    roll: float


@dataclass(frozen=True)
class Face:
    """One face: the detector's box, its 68 landmarks, and which detector pass found it."""

    box: Box
    landmarks: np.ndarray
    detector: str
    score: float

    def unscaled(self, scale: float) -> "Face":
        """This face, found on a copy ``scale`` times the size of an image, in that image's pixels."""
        return replace(self, box=tuple(v / scale for v in self.box), landmarks=self.landmarks / scale)


def _model_path(name: str) -> str:
    """The path of a dlib model file that the face_recognition_models package ships.

    Found without importing that package: its ``__init__`` imports ``pkg_resources``, which
    takes a fifth of a second and is gone from recent setuptools.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    folders = list(spec.submodule_search_locations or []) if spec else []
    path = Path(folders[0]) / "models" / name if folders else None
    if path is None or not path.is_file():
        raise RuntimeError(f"dlib model {name} not found: install face_recognition_models (make install)")
    return str(path)


def _cache_folder() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "maskgen"


# dlib's models may be used by one thread at a time: two threads running HOG together in one
# process ended in "free(): corrupted unsorted chunks". Threads that find faces (``detect image``'s
# two) take turns here, while the rest of their work goes on side by side; work that is mostly
# finding faces takes processes instead (``interrupts.in_order``), since dlib holds Python's lock.
_DLIB_CALLS = threading.Lock()


@functools.cache
def _hog_detector() -> "dlib.fhog_object_detector":
    """dlib's frontal face detector.

    dlib builds it from text compiled into the library, which takes most of a second in every
    process (each generation worker, each detect run); the binary file it saves loads in a few
    milliseconds. So that file is kept in the user's cache folder, per dlib version, and rebuilt
    when missing or unreadable; without a writable cache the detector is built every time.
    """
    cached = _cache_folder() / f"frontal_face_detector-dlib-{dlib.__version__}.svm"
    if cached.is_file():
        try:
            return dlib.fhog_object_detector(str(cached))
        except RuntimeError:
            pass  # damaged: rebuilt below
    detector = dlib.get_frontal_face_detector()
    try:  # dlib writes only to a path; the bytes then go in atomically, as every output does
        with tempfile.TemporaryDirectory() as folder:
            detector.save(str(Path(folder) / "detector.svm"))
            write_atomic(cached, (Path(folder) / "detector.svm").read_bytes())
    except (OSError, RuntimeError):
        pass
    return detector


@functools.cache
def _cnn_detector() -> "dlib.cnn_face_detection_model_v1":
    return dlib.cnn_face_detection_model_v1(_model_path("mmod_human_face_detector.dat"))


@functools.cache
def _landmark_predictor() -> "dlib.shape_predictor":
    return dlib.shape_predictor(_model_path("shape_predictor_68_face_landmarks.dat"))


def load_models() -> None:
    """Load every dlib model now rather than at first use (e.g. before forking worker processes)."""
    _hog_detector()
    _cnn_detector()
    _landmark_predictor()


def detect_boxes(rgb: np.ndarray, detector: str = "hog", upsample: int = 0) -> list[Detection]:
    """Run one dlib face detector; return its detections in ``rgb``'s pixel coordinates.

    CNN boxes are reframed to match HOG's, so crops and landmarks agree whichever found the face.
    ``upsample`` doubles the image that many times first, halving the smallest face found
    (HOG: about 80 px at 0, 40 px at 1).
    """
    def as_box(rect: "dlib.rectangle") -> Box:
        return (rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1)

    if detector == "hog":
        with _DLIB_CALLS:
            rects, scores, filters = _hog_detector().run(rgb, upsample, 0.0)
        return [Detection(as_box(rect), float(score), HOG_FILTER_ROLL.get(kind, 0.0))
                for rect, score, kind in zip(rects, scores, filters)]
    if detector == "cnn":
        height, width = rgb.shape[:2]
        padding = ((0, max(0, CNN_MIN_SIDE - height)), (0, max(0, CNN_MIN_SIDE - width)), (0, 0))[:rgb.ndim]
        padded = np.pad(rgb, padding) if height < CNN_MIN_SIDE or width < CNN_MIN_SIDE else rgb
        with _DLIB_CALLS:
            found = _cnn_detector()(padded, upsample)
        return [Detection(hog_framing(as_box(d.rect)), float(d.confidence), 0.0) for d in found]
    raise ValueError(f"unknown face detector {detector!r}; choose from hog, cnn")


def hog_framing(cnn_box: Box) -> Box:
    """Reframe a CNN detector box the way HOG frames the same face (the landmark model was trained on HOG's)."""
    x0, y0, x1, y1 = cnn_box
    side = (x1 - x0) * CNN_TO_HOG_SCALE
    centre_x = (x0 + x1) / 2 + CNN_TO_HOG_SHIFT[0] * (x1 - x0)
    centre_y = (y0 + y1) / 2 + CNN_TO_HOG_SHIFT[1] * (x1 - x0)
    return (centre_x - side / 2, centre_y - side / 2, centre_x + side / 2, centre_y + side / 2)


def find_landmarks(rgb: np.ndarray, box: Box, roll: float = 0.0) -> np.ndarray:
    """The 68 landmarks (float32, shape (68, 2)) of the face in ``box``, likely rolled by ``roll`` degrees.

    dlib's predictor starts from an upright mean face. On a rolled face it drifts, and on a
    strongly rolled one it can return an upright face that is not there. So the face is first
    turned by the roll the detector expects, and turned by its own measured roll and measured
    again when that differs by more than a few degrees.
    """
    landmarks = _predict_turned(rgb, box, roll)
    measured = roll_degrees(landmarks)
    if abs(measured - roll) >= REFINE_ROLL:
        landmarks = _predict_turned(rgb, box, measured)
    return landmarks


def _predict_turned(rgb: np.ndarray, box: Box, degrees: float) -> np.ndarray:
    """Landmarks predicted on a copy of the face turned by ``degrees`` about the box centre, in ``rgb``'s frame."""
    if abs(degrees) < 1e-3:
        return _predict(rgb, box)
    side = max(box[2] - box[0], box[3] - box[1])
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    # Turn only a window around the face: the predictor reads the box and 30% around it.
    half = int(1.2 * side) + 1
    x0, y0 = max(0, int(cx) - half), max(0, int(cy) - half)
    window = rgb[y0:int(cy) + half, x0:int(cx) + half]
    local_x, local_y = cx - x0, cy - y0
    matrix = cv2.getRotationMatrix2D((local_x, local_y), degrees, 1.0)
    turned = cv2.warpAffine(window, matrix, (window.shape[1], window.shape[0]), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)
    turned_box = (local_x - side / 2, local_y - side / 2, local_x + side / 2, local_y + side / 2)
    landmarks = apply_affine(cv2.invertAffineTransform(matrix), _predict(turned, turned_box)).astype(np.float32)
    return landmarks + np.array([x0, y0], dtype=np.float32)


def roll_degrees(landmarks: np.ndarray) -> float:
    """The face's in-plane roll: the angle of the line through the eye centres (positive: clockwise)."""
    left, right = landmarks[36:42].mean(axis=0), landmarks[42:48].mean(axis=0)
    return float(np.degrees(np.arctan2(right[1] - left[1], right[0] - left[0])))


def _predict(rgb: np.ndarray, box: Box) -> np.ndarray:
    # dlib copies the whole image it is given; a crop around the box is all the predictor reads.
    x0, y0, x1, y1 = crop_box(box, 0.3, rgb.shape)
    crop = np.ascontiguousarray(rgb[y0:y1, x0:x1])
    rect = dlib.rectangle(*(int(round(v)) for v in (box[0] - x0, box[1] - y0, box[2] - 1 - x0, box[3] - 1 - y0)))
    with _DLIB_CALLS:
        shape = _landmark_predictor()(crop, rect)
    return np.array([(p.x + x0, p.y + y0) for p in shape.parts()], dtype=np.float32)


def confirmed_by_cnn(rgb: np.ndarray, box: Box) -> bool:
    """Whether dlib's CNN detector also sees a face at ``box``, looking at a small crop around it only."""
    x0, y0, x1, y1 = crop_box(box, 0.25, rgb.shape)
    scale = 80.0 / max(box[2] - box[0], 1.0)
    crop = cv2.resize(rgb[y0:y1, x0:x1], None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    target = tuple((v - o) * scale for v, o in zip(box, (x0, y0, x0, y0)))
    return any(box_iou(found.box, target) > 0.3 for found in detect_boxes(crop, "cnn", 0))


@dataclass(frozen=True)
class Pass:
    """One detection pass: which detector, upsampling, roll of the image, working size, whether
    the CNN must confirm each of its detections, the scale of the copy the detector reads
    relative to the working copy, whether that copy is grey (landmarks are always read on the
    working copy, in colour), the score its best detection needs for the pass to count, and
    whether it is a close-up look (small pictures only; a find must span CLOSE_UP_FILL of the copy)."""

    detector: str
    upsample: int
    degrees: float
    side: int
    confirm: bool
    shrink: float = 1.0
    grey: bool = False
    sure_score: float = -float("inf")
    close_up: bool = False

    @property
    def label(self) -> str:
        label = self.detector if self.degrees == 0.0 else f"{self.detector}-roll{self.degrees:+.0f}"
        label += "-grey" if self.grey else ""
        label += f"-up{self.upsample}" if self.upsample else ""
        return label + (f"-x{self.shrink:g}" if self.shrink != 1 else "")


def cascade(detector: str, upsample: int = 0) -> list[Pass]:
    """The passes ``find_faces`` tries in order until one finds a face.

    For "auto", ``upsample`` is how often the first HOG passes double the picture (0: faces from
    about 80 px; 1: from about 40 px, at four times the cost), and the fallback looks one doubling
    further; for "hog" and "cnn" it is that detector's one pass.
    The first look is at a grey copy, which is quicker, and counts only with a confident find
    (``GREY_SURE_SCORE``); the second is the same look in colour. The third (a smaller copy) sees
    the same face sizes, sampled differently, so like the first two it is not confirmed. The
    passes after it look harder (larger, rolled images) and so find more things that are not
    faces; everything they find is confirmed by the CNN. The first looks are not: their
    low-scoring detections are nearly all faces, often masked ones, which the CNN
    rejects (measured on 1,369 real photos: of 97 detections scoring under 0.3, the CNN
    turned down 19, and 18 of those were faces). The last looks are the CNN's own: on a small
    picture first the close-up look (``CLOSE_UP_SHRINK``), then at CNN_FALLBACK_SIDE.
    """
    if detector == "auto":
        return [
            Pass("hog", upsample, 0.0, WORK_SIDE, False, grey=True, sure_score=GREY_SURE_SCORE),
            Pass("hog", upsample, 0.0, WORK_SIDE, False),
            Pass("hog", upsample, 0.0, WORK_SIDE, False, SECOND_LOOK_SHRINK),
            Pass("hog", upsample + 1, 0.0, WORK_SIDE, True),
            *(Pass("hog", upsample, angle, WORK_SIDE, True) for angle in ROLL_ANGLES),
            Pass("cnn", 0, 0.0, CNN_FALLBACK_SIDE, False, CLOSE_UP_SHRINK, close_up=True),
            Pass("cnn", 0, 0.0, CNN_FALLBACK_SIDE, False),
        ]
    if detector in ("hog", "cnn"):
        return [Pass(detector, upsample, 0.0, WORK_SIDE, False)]
    raise ValueError(f"unknown face detector {detector!r}; choose from {', '.join(DETECTORS)}")


def _run_pass(work: np.ndarray, step: Pass, unmasked: bool) -> list[tuple[Box, np.ndarray, float]]:
    """One pass on ``work`` (rolled first if the pass says so); boxes and landmarks come back in ``work``'s frame."""
    image, inverse = work, None
    if step.degrees:
        matrix, size = rotation_onto_canvas(work.shape, step.degrees)
        image = cv2.warpAffine(work, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        inverse = cv2.invertAffineTransform(matrix)
    seen = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if step.grey else image
    if step.shrink == 1:
        detections = detect_boxes(seen, step.detector, step.upsample)
    else:
        small, factor = resize_longest(seen, round(max(seen.shape[:2]) * step.shrink))
        detections = [found._replace(box=tuple(v / factor for v in found.box))
                      for found in detect_boxes(small, step.detector, step.upsample)]
    if step.close_up:
        least = CLOSE_UP_FILL * min(image.shape[:2])
        detections = [found for found in detections
                      if max(found.box[2] - found.box[0], found.box[3] - found.box[1]) >= least]
    best = max((detection.score for detection in detections), default=0.0)
    if best < step.sure_score:
        return []
    found = []
    for box, score, roll in detections:
        doubtful = step.confirm or (unmasked and score < min(best, EXTRA_FACE_SCORE))
        if doubtful and not confirmed_by_cnn(image, box):
            continue
        landmarks = find_landmarks(image, box, roll)
        if inverse is not None:
            landmarks = apply_affine(inverse, landmarks).astype(np.float32)
            box = bounding_box(apply_affine(inverse, box_corners(box)))
        found.append((box, landmarks, score))
    return found


def _require_rgb(rgb: np.ndarray) -> None:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {rgb.dtype} {rgb.shape}")


def find_faces(rgb: np.ndarray, detector: str = "auto", upsample: int = 0, unmasked: bool = False,
               after_hog: bool = False) -> list[Face]:
    """Every face in an RGB uint8 image, with landmarks, in the image's own coordinates.

    ``detector="auto"`` tries fast passes first and slower ones only when nothing is found: HOG on
    a grey copy, HOG in colour, HOG on a half-size copy, HOG upsampled, HOG on copies rolled by
    +-30 degrees, then dlib's CNN (on a picture under SMALL_SIDE first at close-up size,
    ``CLOSE_UP_SHRINK``).
    Detections of the fallback HOG passes must be confirmed by the CNN. A face under about 80 px
    beside a larger one is found only with ``upsample`` 1 (about 40 px) or more (``cascade``).
    ``"hog"`` or ``"cnn"`` run that one detector with ``upsample``.
    ``unmasked``: the photo shows unmasked faces (the generator's input), so the CNN, which
    turns down many masked faces, can also vet a weak second find (``EXTRA_FACE_SCORE``).
    ``after_hog``: HOG has already looked at the picture with ``upsample``, at least at the
    cascade's working size, and found nothing (``face_boxes``), so "auto" skips its own such looks
    (not on a picture under SMALL_SIDE, which it looks at enlarged).
    """
    _require_rgb(rgb)
    height, width = rgb.shape[:2]
    longest = max(height, width)
    for step in cascade(detector, upsample):
        if step.close_up and longest >= SMALL_SIDE:
            continue
        repeated = (step.detector, step.upsample, step.degrees, step.shrink) == ("hog", upsample, 0.0, 1.0)
        if after_hog and repeated and longest >= SMALL_SIDE:
            continue
        target = (min(step.side, ENLARGED_SIDE) if longest < SMALL_SIDE
                  else working_longest(height, width, step.side))
        work, scale = resize_longest(rgb, target) if target != longest else (rgb, 1.0)
        found = _run_pass(work, step, unmasked)
        if found:
            return [Face(box, landmarks, step.label, score).unscaled(scale) for box, landmarks, score in found]
    return []


def faces_in_boxes(rgb: np.ndarray, boxes: list[tuple[Box, float]], detector: str,
                   overlap: float = 0.5) -> list[Face]:
    """Faces another detector found, as (box framed as HOG frames faces, score), with their landmarks.

    A detector looking at several scales may give a close-up face a second, shifted or partial
    box, whose landmarks land on the same face. Faces do not nest, so of two faces whose
    landmark boxes overlap by ``overlap`` of the smaller one, only the better scored is kept.
    """
    _require_rgb(rgb)
    kept: list[Face] = []
    for box, score in sorted(boxes, key=lambda item: -item[1]):
        face = Face(box, find_landmarks(rgb, box), detector, score)
        if all(smaller_box_covered(face_box(face.landmarks), face_box(other.landmarks)) < overlap for other in kept):
            kept.append(face)
    return kept


def face_boxes(rgb: np.ndarray, detector: str = "hog", upsample: int = 1, max_side: int | None = None
               ) -> list[tuple[Box, float]]:
    """Face boxes and detector scores only (no landmarks), for checking faces at video speed.

    ``detector``: ``"hog"`` or ``"cnn"`` run once with ``upsample`` on a copy reduced to
    ``max_side`` (``working_longest``; None: the image as it is); ``"auto"`` is ``"hog"``, and
    where that finds no face ``find_faces``' cascade after its first looks (which that one repeats),
    its boxes made from the landmarks (so it finds every face ``"hog"`` finds, and more where HOG
    finds none). Every box is framed as HOG frames faces, in ``rgb``'s coordinates.
    """
    _require_rgb(rgb)
    if detector == "auto":
        looked_closer = max_side is None or max_side >= WORK_SIDE
        return face_boxes(rgb, "hog", upsample, max_side) or [
            (face_box(face.landmarks), face.score)
            for face in find_faces(rgb, "auto", upsample, after_hog=looked_closer)]
    work, scale = rgb, 1.0
    if max_side is not None:
        work, scale = resize_longest(rgb, working_longest(*rgb.shape[:2], max_side))
    return [(tuple(v / scale for v in found.box), found.score) for found in detect_boxes(work, detector, upsample)]


def face_boxes_in_file(task: tuple[Path, str, int, int | None]
                       ) -> tuple[np.ndarray, list[tuple[Box, float]]] | ImageError:
    """An image file read as ``images.load_rgb`` reads it, with its ``face_boxes`` (``task``: the
    path, then the detector, upsample and max_side), or the ImageError it cannot be read for: a
    worker process's task (``interrupts.in_order``), since dlib holds Python's lock."""
    path, detector, upsample, max_side = task
    try:
        rgb = load_rgb(path)
    except ImageError as error:
        return error
    return rgb, face_boxes(rgb, detector, upsample, max_side)


def face_box(landmarks: np.ndarray) -> Box:
    """A square face box derived from the landmarks, the same whichever detector found the face.

    It spans the jaw's width and brows-to-chin height, scaled and shifted to match the framing
    of dlib's HOG boxes on average (measured: HOG boxes are 1.04x this square and 0.077 of its
    side higher), so crops made from it look like the crops the detector makes.
    """
    points = np.asarray(landmarks, dtype=np.float64)
    left, right = points[JAW_POINTS, 0].min(), points[JAW_POINTS, 0].max()
    top, bottom = points[BROW_POINTS, 1].min(), points[CHIN_POINT, 1]
    side = max(right - left, bottom - top)
    centre_x = (left + right) / 2
    centre_y = (top + bottom) / 2 - HOG_BOX_SHIFT * side
    side *= HOG_BOX_SCALE
    return (centre_x - side / 2, centre_y - side / 2, centre_x + side / 2, centre_y + side / 2)

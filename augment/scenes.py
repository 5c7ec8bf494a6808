"""Scenes with boxes: many masked and unmasked faces at many sizes, for training a face-and-mask detector.

    python -m augment scenes --raw dataset_raw --out dataset_scenes --count 2000

Faces come from a generated crop dataset (made from ``--raw`` first if needed): each crop pair
holds one face with and without a mask, its landmarks and a context of three face widths. A
scene is a background (photos and textures scikit-image ships, or drawn gradients and blocks)
with 1-20 such crops pasted in, each turned, tilted, squeezed and mirrored at random, some
wearing sunglasses or a cap or partly hidden by a hand, a phone or another head, far (small) faces
first and near ones over them, none hiding more than 30 % of a face already there, some cut by
the picture's edge; faces from 10 to 280 px tall (close-ups). The whole picture is
then relit, blurred, made noisy and JPEG-compressed as a real photo would be. Each face is
annotated with the box a person would draw (framed like the hand-drawn boxes of real scenes,
see ``annotation_box``), as PASCAL VOC ``annotations/NAME.xml``, one COCO ``annotations.json`` and a
``manifest.jsonl``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import cv2
import numpy as np
from tqdm import tqdm

from augment.dataset import LABELS, writing
from augment.faces import face_box
from augment.geometry import Box, share_covered
from augment.images import encode_image, load_rgb, write_atomic
from augment.occluders import occlude

# Measured on detection_dev with bench/calibrate_boxes.py: the median hand-drawn box of a face
# against the landmark face box of the same face (133 faces) is a little narrower, as tall,
# and sits lower (it takes in the chin and less forehead).
ANNOTATION_SCALE = (0.944, 1.036)
ANNOTATION_SHIFT_Y = 0.085
# Built-in scikit-image pictures without people in them, for backgrounds.
TEXTURES = ("coffee", "chelsea", "rocket", "brick", "grass", "gravel", "page", "text", "coins", "moon", "clock",
            "hubble_deep_field", "cat", "immunohistochemistry", "retina")


@dataclass(frozen=True)
class SceneSettings:
    """What the scenes look like; recorded in the output."""

    seed: int = 0
    width: tuple[int, int] = (400, 640)
    aspect: tuple[float, float] = (0.6, 1.0)  # height / width
    faces: tuple[int, int] = (1, 20)
    face_height: tuple[float, float] = (10.0, 280.0)  # annotation box height in pixels, log-uniform
    masked_share: float = 0.6
    roll: float = 10.0  # degrees, standard deviation of the faces' tilt (clipped at 30)
    squeeze: tuple[float, float] = (0.8, 1.15)  # horizontal scale of a face (narrow: turned a little)
    yaw: float = 20.0  # degrees, standard deviation of the faces' turn (clipped at 45), seen in perspective
    cut: float = 0.35  # at most this share of a face's box may lie outside the picture
    overlap: float = 0.3  # at most this share of a face's box may be covered by nearer faces
    occluded: tuple[float, float, float] = (0.07, 0.12, 0.2)  # chances of sunglasses, a cap, a hand or object in front
    clutter: tuple[int, int] = (0, 6)  # pieces of people without a face (clothes, hair, ears) a scene holds


@dataclass(frozen=True)
class Tile:
    """One generated face: the crop files with and without a mask, and its landmarks in them."""

    plain: Path
    masked: Path
    landmarks: np.ndarray


def annotation_box(box: Box) -> Box:
    """The box a person draws around a face, from the landmark face box (``augment.faces.face_box``)."""
    x0, y0, x1, y1 = box
    width, height = (x1 - x0) * ANNOTATION_SCALE[0], (y1 - y0) * ANNOTATION_SCALE[1]
    centre_x, centre_y = (x0 + x1) / 2, (y0 + y1) / 2 + ANNOTATION_SHIFT_Y * (y1 - y0)
    return (centre_x - width / 2, centre_y - height / 2, centre_x + width / 2, centre_y + height / 2)


def face_box_from_annotation(box: Box) -> Box:
    """The inverse of ``annotation_box``: the landmark face box of a face boxed as a person would."""
    x0, y0, x1, y1 = box
    width, height = (x1 - x0) / ANNOTATION_SCALE[0], (y1 - y0) / ANNOTATION_SCALE[1]
    centre_x, centre_y = (x0 + x1) / 2, (y0 + y1) / 2 - ANNOTATION_SHIFT_Y * height
    return (centre_x - width / 2, centre_y - height / 2, centre_x + width / 2, centre_y + height / 2)


def load_tiles(generated: Path) -> list[Tile]:
    """Every face pair of a generated crop dataset (its ``manifest.jsonl``)."""
    tiles = []
    for line in (generated / "manifest.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["label"] == "with_mask" and "landmarks" in record:
            name = Path(record["path"]).name
            tiles.append(Tile(generated / "without_mask" / name, generated / "with_mask" / name,
                              np.asarray(record["landmarks"], np.float32)))
    return tiles


def _textures() -> list[np.ndarray]:
    import skimage.data

    pictures = []
    for name in TEXTURES:
        picture = getattr(skimage.data, name)()
        if picture.ndim == 2:
            picture = np.repeat(picture[:, :, None], 3, axis=2)
        pictures.append(np.ascontiguousarray(picture[:, :, :3]).astype(np.uint8))
    return pictures


def background(rng: np.random.Generator, width: int, height: int, textures: list[np.ndarray]) -> np.ndarray:
    """A (height, width, 3) uint8 backdrop: a stretched, tinted photo or texture, or drawn gradients and blocks."""
    if rng.random() < 0.7:
        texture = textures[int(rng.integers(len(textures)))]
        th, tw = texture.shape[:2]
        side = rng.uniform(0.3, 1.0)
        ch, cw = max(8, int(th * side)), max(8, int(tw * side))
        y, x = int(rng.integers(0, th - ch + 1)), int(rng.integers(0, tw - cw + 1))
        canvas = cv2.resize(texture[y:y + ch, x:x + cw], (width, height), interpolation=cv2.INTER_LINEAR)
        canvas = canvas * rng.uniform(0.6, 1.2, 3)
    else:
        top, bottom = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        ramp = np.linspace(0, 1, height)[:, None, None]
        canvas = np.broadcast_to(top * (1 - ramp) + bottom * ramp, (height, width, 3)).copy()
        for _ in range(int(rng.integers(2, 12))):  # walls, windows, signs
            x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
            x1, y1 = x0 + int(rng.integers(10, width // 2)), y0 + int(rng.integers(10, height // 2))
            canvas[y0:y1, x0:x1] = rng.uniform(0, 255, 3)
    return np.clip(canvas, 0, 255).astype(np.uint8)


def _feathered(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """An alpha (height, width) float32 in [0, 1]: a rectangle, or an ellipse softened inside its outline.

    The outline itself stays a step (the blur is cut at it, and a full rectangle has nothing to
    blur against): pieces fading out wholly before their edge were tried and did not help the
    detector on real photos (docs/benchmarks.md).
    """
    alpha = np.zeros((height, width), np.uint8)
    if rng.random() < 0.5:
        alpha[:] = 255
    else:
        cv2.ellipse(alpha, (width // 2, height // 2), (width // 2, height // 2), 0, 0, 360, 255, -1)
    feather = rng.uniform(0, 0.08) * min(height, width)
    alpha = alpha.astype(np.float32) / 255
    if feather > 0.5:
        alpha = cv2.GaussianBlur(alpha, (0, 0), feather) * (alpha > 0)
    return alpha


def turn(degrees: float, centre: np.ndarray, width: float) -> np.ndarray:
    """The 3x3 homography that shows a flat face ``width`` pixels wide, centred at ``centre``,
    turned by ``degrees`` about its vertical axis, seen from 2.5 face widths away: the far side
    comes out narrower and shorter than the near one."""
    theta = np.radians(degrees)
    distance = 2.5 * width
    to_centre = np.array([[1, 0, -centre[0]], [0, 1, -centre[1]], [0, 0, 1]], np.float64)
    back = np.array([[1, 0, centre[0]], [0, 1, centre[1]], [0, 0, 1]], np.float64)
    # A point (x, y, 0) of the face turned to (x cos, y, x sin), then projected onto the picture plane.
    projection = np.array([[np.cos(theta), 0, 0], [0, 1, 0], [np.sin(theta) / distance, 0, 1]])
    return back @ projection @ to_centre


def pose_tile(crop: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator, settings: SceneSettings
              ) -> tuple[np.ndarray, np.ndarray]:
    """A face crop mirrored at random, turned in perspective, tilted and squeezed about the face's
    centre; its landmarks moved alike."""
    centre = landmarks.mean(axis=0)
    angle = float(np.clip(rng.normal(0, settings.roll), -30, 30))
    squeeze = rng.uniform(*settings.squeeze) * (-1 if rng.random() < 0.5 else 1)  # negative: mirrored
    yaw = float(np.clip(rng.normal(0, settings.yaw), -45, 45))
    rotation = np.vstack([cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, 1.0), [0, 0, 1]])
    scaling = np.array([[squeeze, 0, centre[0] * (1 - squeeze)], [0, 1, 0], [0, 0, 1]])
    face_width = float(np.ptp(landmarks[:, 0]))
    matrix = rotation @ scaling @ turn(yaw, centre, face_width)
    posed = cv2.warpPerspective(crop, matrix, (crop.shape[1], crop.shape[0]), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
    moved = cv2.perspectiveTransform(landmarks.reshape(-1, 1, 2).astype(np.float64), matrix)
    return posed, moved.reshape(-1, 2).astype(np.float32)


def clutter_region(face: Box, shape: tuple[int, ...], rng: np.random.Generator) -> tuple[int, int, int, int] | None:
    """Where a face crop of ``shape`` holds no face: (left, top, right, bottom) below the chin
    (neck, clothes) or beside the face (ear, hair, background), or None if that is too thin.
    ``face`` is the face's annotation box in the crop. Pasted unannotated, such pieces teach the
    detector that these are not faces."""
    x0, y0, x1, y1 = face
    height, width = shape[:2]
    margin = 0.1 * (y1 - y0)  # the piece may take in this much of the face's edge
    choices = [(0, y1 + margin, width, height),  # below
               (0, y0, x0 + margin, y1 + margin),  # left, with the ear
               (x1 - margin, y0, width, y1 + margin)]  # right
    left, top, right, bottom = choices[int(rng.integers(len(choices)))]
    left, top, right, bottom = max(int(left), 0), max(int(top), 0), min(int(right), width), min(int(bottom), height)
    return (left, top, right, bottom) if right - left >= 12 and bottom - top >= 12 else None


def _paste(canvas: np.ndarray, piece: np.ndarray, alpha: np.ndarray, left: int, top: int) -> bool:
    """Blend ``piece`` (with ``alpha``) into ``canvas`` (float32, in place) at (left, top); False if it misses."""
    height, width = canvas.shape[:2]
    ph, pw = piece.shape[:2]
    cx0, cy0, cx1, cy1 = max(left, 0), max(top, 0), min(left + pw, width), min(top + ph, height)
    if cx1 <= cx0 or cy1 <= cy0:
        return False
    patch = piece[cy0 - top:cy1 - top, cx0 - left:cx1 - left].astype(np.float32)
    weight = alpha[cy0 - top:cy1 - top, cx0 - left:cx1 - left, None]
    canvas[cy0:cy1, cx0:cx1] = canvas[cy0:cy1, cx0:cx1] * (1 - weight) + patch * weight
    return True


def add_clutter(canvas: np.ndarray, tiles: list[Tile], rng: np.random.Generator, settings: SceneSettings) -> None:
    """Paste ``settings.clutter`` pieces without faces (``clutter_region``) into ``canvas`` (float32, in place)."""
    height, width = canvas.shape[:2]
    for _ in range(int(rng.integers(settings.clutter[0], settings.clutter[1] + 1))):
        tile = tiles[int(rng.integers(len(tiles)))]
        crop, landmarks = pose_tile(load_rgb(tile.plain), tile.landmarks, rng, settings)
        face = annotation_box(face_box(landmarks))
        region = clutter_region(face, crop.shape, rng)
        if region is None:
            continue
        piece = crop[region[1]:region[3], region[0]:region[2]]
        # Scaled as if its face were pasted too, at the scenes' face sizes; never taller than the scene.
        target = np.exp(rng.uniform(np.log(settings.face_height[0]), np.log(settings.face_height[1])))
        scale = min(target / (face[3] - face[1]), height / piece.shape[0])
        ph, pw = round(piece.shape[0] * scale), round(piece.shape[1] * scale)
        if ph < 4 or pw < 4:
            continue
        piece = cv2.resize(piece, (pw, ph), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        _paste(canvas, piece, _feathered(ph, pw, rng), int(rng.integers(-pw // 2, width)), int(rng.integers(-ph // 2, height)))


def degrade_scene(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The whole scene relit, blurred, noisy and compressed as a real photo; uint8 in, uint8 out."""
    pixels = image.astype(np.float32) / 255
    pixels = np.clip(pixels ** rng.uniform(0.75, 1.35) * rng.uniform(0.9, 1.1, 3) * rng.uniform(0.7, 1.25), 0, 1)
    out = (pixels * 255 + 0.5).astype(np.uint8)
    if rng.random() < 0.4:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.4, 1.3))
    if rng.random() < 0.4:
        out = np.clip(out + rng.normal(0, rng.uniform(2, 7), out.shape), 0, 255).astype(np.uint8)
    quality = int(rng.integers(35, 96))
    return cv2.imdecode(cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], cv2.IMREAD_UNCHANGED)


def compose_scene(rng: np.random.Generator, tiles: list[Tile], textures: list[np.ndarray],
                  settings: SceneSettings = SceneSettings()) -> tuple[np.ndarray, list[dict]]:
    """One scene (H, W, 3) uint8 and its objects ``[{box, label}]`` (boxes as a person would draw them)."""
    width = int(rng.integers(settings.width[0], settings.width[1] + 1))
    height = int(width * rng.uniform(*settings.aspect))
    canvas = background(rng, width, height, textures).astype(np.float32)
    add_clutter(canvas, tiles, rng, settings)
    count = int(rng.integers(settings.faces[0], settings.faces[1] + 1))
    low, high = np.log(settings.face_height[0]), np.log(min(settings.face_height[1], 0.8 * height))
    sizes = sorted(np.exp(rng.uniform(low, high, count)))  # far faces first, near ones pasted over them
    objects: list[dict] = []
    for target in sizes:
        tile = tiles[int(rng.integers(len(tiles)))]
        masked = rng.random() < settings.masked_share
        crop, landmarks = pose_tile(load_rgb(tile.masked if masked else tile.plain), tile.landmarks, rng, settings)
        face = annotation_box(face_box(landmarks))
        crop = occlude(crop, landmarks, face, rng, settings.occluded)
        scale = target / (face[3] - face[1])
        side = face[2] - face[0]
        # Context kept around the face: a little to a lot, more below (neck and shoulders).
        grow = rng.uniform(0.05, 0.9, 3) * side
        x0, y0 = max(0, int(face[0] - grow[0])), max(0, int(face[1] - grow[1] * 0.6))
        x1, y1 = min(crop.shape[1], int(face[2] + grow[0])), min(crop.shape[0], int(face[3] + grow[2] * 1.8))
        if x1 - x0 < 4 or y1 - y0 < 4:
            continue
        piece = cv2.resize(crop[y0:y1, x0:x1], None, fx=scale, fy=scale,
                           interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        if rng.random() < 0.25:  # out of focus
            piece = cv2.GaussianBlur(piece, (0, 0), rng.uniform(0.5, 1.5))
        ph, pw = piece.shape[:2]
        local = tuple(v * scale for v in (face[0] - x0, face[1] - y0, face[2] - x0, face[3] - y0))
        # Faces may run off the picture's edge by up to ``cut`` of their box, as in real crowds.
        spill_x, spill_y = settings.cut * (local[2] - local[0]), settings.cut * (local[3] - local[1])
        for _ in range(20):
            left = int(rng.integers(int(-local[0] - spill_x), max(int(-local[0] - spill_x) + 1,
                                                                  int(width - local[2] + spill_x))))
            top = int(rng.integers(int(-local[1] - spill_y), max(int(-local[1] - spill_y) + 1,
                                                                 int(height - local[3] + spill_y))))
            placed = (max(left + local[0], 0), max(top + local[1], 0),
                      min(left + local[2], width), min(top + local[3], height))
            footprint = (left, top, left + pw, top + ph)
            if all(share_covered(o["box"], footprint) < settings.overlap for o in objects):
                break
        else:
            continue
        alpha = _feathered(ph, pw, rng)
        # Keep the face itself solid: a feathered ellipse must not fade the face it frames.
        fx0, fy0, fx1, fy1 = (int(round(v)) for v in local)
        alpha[max(fy0, 0):fy1, max(fx0, 0):fx1] = 1.0
        if not _paste(canvas, piece, alpha, left, top):
            continue
        objects.append({"box": tuple(round(float(v), 1) for v in placed), "label": LABELS[0 if masked else 1]})
    return degrade_scene(np.clip(canvas + 0.5, 0, 255).astype(np.uint8), rng), objects


def voc_xml(name: str, width: int, height: int, objects: list[dict]) -> str:
    """A PASCAL VOC annotation for one image."""
    parts = [f"<annotation><folder>images</folder><filename>{escape(name)}</filename>"
             f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size>"]
    for item in objects:
        x0, y0, x1, y1 = item["box"]
        parts.append(f"<object><name>{item['label']}</name><pose>Unspecified</pose><truncated>0</truncated>"
                     f"<difficult>0</difficult><bndbox><xmin>{x0:.0f}</xmin><ymin>{y0:.0f}</ymin>"
                     f"<xmax>{x1:.0f}</xmax><ymax>{y1:.0f}</ymax></bndbox></object>")
    return "".join(parts) + "</annotation>\n"


def make_scenes(generated: Path, out: Path, count: int, settings: SceneSettings = SceneSettings(),
                progress: bool = True) -> dict:
    """Write ``count`` scenes from a generated crop dataset; resumes, keeping scenes already written.

    Scene ``i`` depends only on the seed and ``i``, so a resumed or repeated run is identical.
    """
    tiles = load_tiles(generated)
    if not tiles:
        raise ValueError(f"{generated}: no face crops with landmarks in its manifest.jsonl")
    textures = _textures()
    with writing(out):  # a full disk stops the run with one line; written scenes are kept
        (out / "images").mkdir(parents=True, exist_ok=True)
        (out / "annotations").mkdir(parents=True, exist_ok=True)
        records = []
        for index in tqdm(range(count), desc="scenes", unit="scene", disable=not progress):
            name = f"scene_{index:06d}.jpg"
            part = out / ".parts" / f"{index:06d}.json"
            if part.is_file() and (out / "images" / name).is_file():
                records.append(json.loads(part.read_text()))
                continue
            image, objects = compose_scene(np.random.default_rng([settings.seed, index]), tiles, textures, settings)
            height, width = image.shape[:2]
            write_atomic(out / "images" / name, encode_image(image, ".jpg", 92))
            write_atomic(out / "annotations" / f"scene_{index:06d}.xml", voc_xml(name, width, height, objects).encode())
            record = {"image": f"images/{name}", "width": width, "height": height,
                      "objects": [{"box": list(o["box"]), "label": o["label"]} for o in objects]}
            write_atomic(part, json.dumps(record).encode())
            records.append(record)
        write_atomic(out / "manifest.jsonl", "".join(json.dumps(r) + "\n" for r in records).encode())
        write_atomic(out / "annotations.json", json.dumps(coco(records)).encode())
        faces = [o for r in records for o in r["objects"]]
        report = {"scenes": len(records), "faces": len(faces),
                  "labels": {label: sum(o["label"] == label for o in faces) for label in LABELS},
                  "settings": {k: v for k, v in settings.__dict__.items()}}
        write_atomic(out / "report.json", json.dumps(report, indent=1).encode())
    return report


def coco(records: list[dict]) -> dict:
    """The scenes' annotations in COCO form (boxes as x, y, width, height)."""
    categories = [{"id": i + 1, "name": label} for i, label in enumerate(LABELS)]
    images, annotations = [], []
    for image_id, record in enumerate(records, 1):
        images.append({"id": image_id, "file_name": record["image"], "width": record["width"],
                       "height": record["height"]})
        for item in record["objects"]:
            x0, y0, x1, y1 = item["box"]
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": LABELS.index(item["label"]) + 1,
                                "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0), "iscrowd": 0})
    return {"images": images, "annotations": annotations, "categories": categories}

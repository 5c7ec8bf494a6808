"""The mask-aware face detector: MobileNetV2 features at 1/8 and 1/16 scale, centre-point heads.

One pass finds faces with and without masks and labels them: a heat map per label, box size and
centre offset per cell of an 8-pixel grid (see ``detect.targets``). Saved like the classifier, a
``.keras`` file carrying ``maskgen.json`` (kind ``"detector"``, labels, input side).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import cv2
import numpy as np

from augment.geometry import Box, box_area, box_iou, smaller_box_covered
from augment.images import resize_longest, working_longest
from detect.targets import decode
from train.backend import keras, tf
from train.model import base_network, load_model_file, load_once

if TYPE_CHECKING:  # annotations only: TensorFlow is imported on first use (train.backend)
    from keras import Model
    from tensorflow import Tensor

FEATURES_8, FEATURES_16 = "block_5_add", "block_12_add"
# Layers before this one keep their ImageNet weights: edges and textures transfer as they are,
# and not back-propagating through the full-resolution layers halves the cost of a step.
FIRST_TRAINED = "block_3_expand"
WIDTH = 64
# The coarser looks for close-up faces, as shares of the detection side. The coarsest sees whole
# faces in portraits cut tighter than the face, where the coarse look still sees parts of them.
COARSE = 0.4
COARSEST = 0.25
# Boxes of the image and of its mirror image overlapping this much are one face seen twice.
TWIN_OVERLAP = 0.55
# A face the coarse look finds this tall at the main look's scale (0.8 of the 320-px training
# cuts, the top of the sizes it was trained on), scoring at least this, is a close-up: at the
# main scale the network sees its eyes, mouth or half of it as faces, so those boxes are dropped.
CLOSE_UP_HEIGHT = 256
CLOSE_UP_SCORE = 0.35


def build_detector(classes: int, weights: str, alpha: float = 0.35, side: int = 384) -> Model:
    """The detector as a Keras model: RGB 0-255 images in, (heat, regression) maps at 1/8 scale out.

    Works on any input whose sides are multiples of 32 (it is fully convolutional); ``side``
    is the training size.
    """
    layers = keras().layers
    images = layers.Input((None, None, 3), name="image")
    scaled = layers.Rescaling(1 / 127.5, offset=-1.0, name="to_unit_range")(images)
    backbone = base_network(alpha, weights, None, scaled)
    frozen = True
    for layer in backbone.layers:
        frozen = frozen and layer.name != FIRST_TRAINED
        layer.trainable = not frozen
    fine = backbone.get_layer(FEATURES_8).output
    coarse = backbone.get_layer(FEATURES_16).output
    merged = layers.Add(name="merge")([
        layers.Conv2D(WIDTH, 1, activation="relu", name="lateral_8")(fine),
        layers.UpSampling2D(2, interpolation="bilinear", name="up_16")(
            layers.Conv2D(WIDTH, 1, activation="relu", name="lateral_16")(coarse)),
    ])
    hidden = layers.SeparableConv2D(WIDTH, 3, padding="same", activation="relu", name="neck_1")(merged)
    hidden = layers.SeparableConv2D(WIDTH, 3, padding="same", activation="relu", name="neck_2")(hidden)
    prior = -np.log((1 - 0.05) / 0.05)  # start by predicting few faces: stable focal-loss training
    heat = layers.Conv2D(classes, 1, activation="sigmoid", bias_initializer=keras().initializers.Constant(prior),
                         name="heat")(hidden)
    regression = layers.Conv2D(4, 1, name="regression")(hidden)
    return keras().Model(images, [heat, regression], name="mask_detector")


def focal_loss(target: Tensor, predicted: Tensor) -> Tensor:
    """CenterNet's penalty-reduced focal loss over the heat maps, normalised by the number of faces."""
    predicted = tf().clip_by_value(predicted, 1e-4, 1 - 1e-4)
    peaks = tf().cast(tf().equal(target, 1.0), tf().float32)
    positive = -tf().math.log(predicted) * (1 - predicted) ** 2 * peaks
    negative = -tf().math.log(1 - predicted) * predicted ** 2 * (1 - target) ** 4 * (1 - peaks)
    count = tf().maximum(tf().reduce_sum(peaks), 1.0)
    return (tf().reduce_sum(positive) + tf().reduce_sum(negative)) / count


def regression_loss(target: Tensor, predicted: Tensor) -> Tensor:
    """L1 on size and offset at the face-centre cells only (the target's last channel marks them)."""
    weight = target[..., 4:5]
    count = tf().maximum(tf().reduce_sum(weight), 1.0)
    return tf().reduce_sum(tf().abs(target[..., :4] - predicted) * weight) / count


def pad_to_grid(rgb: np.ndarray, multiple: int = 64, panorama_multiple: int = 256) -> np.ndarray:
    """The image padded on the right and bottom (black) to sides that are multiples of ``multiple``.

    The network needs multiples of 32; rounding further up keeps the number of distinct input
    shapes, each compiled once (about a second), small. The long side of a panorama (more than
    twice as long as the other), which varies most from picture to picture, is rounded up to
    ``panorama_multiple``.
    """
    height, width = rgb.shape[:2]

    def padded(side: int, other: int) -> int:
        step = panorama_multiple if side > 2 * other else multiple
        return -(-side // step) * step

    grown = np.zeros((padded(height, width), padded(width, height), 3), rgb.dtype)
    grown[:height, :width] = rgb
    return grown


class Detection(NamedTuple):
    """One face the detector found: its box in the image's pixels, best label, that label's
    score, and the labels' shares (in ``Detector.labels`` order, summing to 1)."""

    box: Box
    label: str
    score: float
    shares: np.ndarray


class Detector:
    """A loaded detector: an RGB image in, labelled boxes out, one compiled call per scale."""

    def __init__(self, model: Model, metadata: dict) -> None:
        self.model = model
        self.labels: list[str] = list(metadata["labels"])
        self.side: int = int(metadata["input_side"])
        # Compiled once per input shape: the bilinear upsampling needs static sizes.
        self._forward = tf().function(lambda batch: model(batch, training=False))

    def detect(self, rgb: np.ndarray, threshold: float = 0.3, side: int | None = None,
               mirror: bool = True) -> list[Detection]:
        """The faces in an RGB uint8 image scoring ``threshold`` or more, best first.

        The image is scaled so its longest side is ``side`` (default: the side it was made for; a
        panorama's is longer, ``augment.images.working_longest``) and, with ``mirror``, looked at
        once more mirrored left to right; each face's two boxes are averaged (``fuse_twins``).
        Measured on detection_dev, this steadies the box and the label where one look alone is
        unsure: AP50 over all faces 0.531 -> 0.557 masked and 0.426 -> 0.472 unmasked (0.559 ->
        0.585 and 0.451 -> 0.496 with the classifier), for one more pass.
        Looks at ``COARSE`` and ``COARSEST`` of the side bring close-up faces, too big for the
        network's view at full size, down to the sizes it was trained on (the coarsest keeps only
        such close-ups); the parts of them that the finer looks boxed are dropped
        (``drop_parts``) and the sets of boxes merged.
        """
        side = side or self.side
        height, width = rgb.shape[:2]
        if max(height, width) <= side:
            return self._looks(rgb, threshold, side, mirror)
        # Every look starts from one copy reduced to the main side: reducing a video frame three
        # times from full size cost more than the two coarser looks themselves. A panorama's copy
        # is longer (``working_longest``), so that its faces are not shrunk past a 2:1 photo's.
        reduced, _ = resize_longest(rgb, working_longest(height, width, side))
        across, down = reduced.shape[1] / width, reduced.shape[0] / height
        return [item._replace(box=(item.box[0] / across, item.box[1] / down,
                                   item.box[2] / across, item.box[3] / down))
                for item in self._looks(reduced, threshold, max(reduced.shape[:2]), mirror)]

    def _looks(self, rgb: np.ndarray, threshold: float, side: int, mirror: bool) -> list[Detection]:
        """``detect`` on an image no larger than ``side``, in its own pixels."""
        scale = side / max(rgb.shape[:2])

        def close_up(item: Detection) -> bool:
            return (item.box[3] - item.box[1]) * scale > CLOSE_UP_HEIGHT

        def sure_close_ups(items: list[Detection]) -> list[Box]:
            return [item.box for item in items if close_up(item) and item.score >= CLOSE_UP_SCORE]

        found = self._detect_at(rgb, side, threshold)
        if mirror:
            width = rgb.shape[1]
            seen_mirrored = self._detect_at(cv2.flip(rgb, 1), side, threshold)
            found = fuse_twins(found + [item._replace(box=mirrored_box(item.box, width)) for item in seen_mirrored],
                               self.labels)
        coarse = self._detect_at(rgb, int(side * COARSE), threshold)
        coarsest = [item for item in self._detect_at(rgb, int(side * COARSEST), threshold) if close_up(item)]
        found = drop_parts(found, sure_close_ups(coarse) + sure_close_ups(coarsest))
        coarse = drop_parts(coarse, sure_close_ups(coarsest))
        return suppress(found + coarse + coarsest)

    def _detect_at(self, rgb: np.ndarray, side: int, threshold: float) -> list[Detection]:
        scale = side / max(rgb.shape[:2])
        resized = rgb if scale == 1 else cv2.resize(rgb, None, fx=scale, fy=scale,
                                                    interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        heat, regression = self._forward(pad_to_grid(resized)[None].astype(np.float32))
        return [Detection(tuple(v / scale for v in box), self.labels[label], score, shares)
                for box, label, score, shares in decode(heat.numpy()[0], regression.numpy()[0], threshold)]


def suppress(found: list[Detection], overlap: float = 0.5) -> list[Detection]:
    """Best-first detections with any box overlapping a better one at IoU >= ``overlap`` removed."""
    kept = []
    for candidate in sorted(found, key=lambda item: -item.score):
        if all(box_iou(candidate.box, other.box) < overlap for other in kept):
            kept.append(candidate)
    return kept


def drop_parts(found: list[Detection], close_ups: list[Box], inside: float = 0.5) -> list[Detection]:
    """``found`` without the detections smaller than a close-up face's box with at least
    ``inside`` of their area in it: an eye, a mouth or half of that face, boxed as a face."""
    def part_of(box: Box, face: Box) -> bool:
        return box_area(box) < box_area(face) and smaller_box_covered(box, face) >= inside

    return [item for item in found if not any(part_of(item.box, face) for face in close_ups)]


def mirrored_box(box: Box, width: float) -> Box:
    """A box in an image ``width`` px wide mirrored left to right (the same box in the mirror image)."""
    x0, y0, x1, y1 = box
    return (width - x1, y0, width - x0, y1)


def fuse_twins(found: list[Detection], labels: list[str], overlap: float = TWIN_OVERLAP) -> list[Detection]:
    """Detections from two looks at one image, each face's boxes merged into one.

    Best first, each detection joins the first group whose best box it overlaps at IoU >=
    ``overlap``, or starts one. A group becomes one detection: its boxes and label shares
    averaged, weighted by score, the best score kept (a face seen in one look only is not
    penalised: the other look may have missed it), the label the largest averaged share.
    """
    groups: list[list[Detection]] = []
    for candidate in sorted(found, key=lambda item: -item.score):
        group = next((group for group in groups if box_iou(group[0].box, candidate.box) >= overlap), None)
        if group is None:
            groups.append([candidate])
        else:
            group.append(candidate)
    merged = []
    for group in groups:
        weights = np.maximum([item.score for item in group], 1e-6)  # scores of 0 still average
        weights /= weights.sum()
        box = tuple(float(v) for v in weights @ np.array([item.box for item in group], np.float64))
        shares = (weights @ np.stack([item.shares for item in group])).astype(np.float32)
        merged.append(Detection(box, labels[int(shares.argmax())], group[0].score, shares))
    return suppress(merged)


def load_detector(path: Path) -> Detector:
    """Load a detector made by ``python -m detect train-detector``, once per process and version of
    the file (``train.model.load_once``)."""
    return load_once(_read_detector, path)


def _read_detector(path: Path) -> Detector:
    return Detector(*load_model_file(path, "detector"))

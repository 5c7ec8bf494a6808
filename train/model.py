"""The mask classifier: MobileNetV2 with a small head, saved with everything needed to use it right.

A saved model is a Keras ``.keras`` file (a zip) with one extra member, ``maskgen.json``: labels,
input size, width multiplier, resize rule and how it was trained. ``load_classifier`` refuses a
file without it, so evaluation and detection never guess the preprocessing.
"""

from __future__ import annotations

import json
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, TypeVar

import numpy as np

from augment.images import staged
from train.backend import keras, tf
from train.views import RESIZE, resize_face

if TYPE_CHECKING:  # annotations only: TensorFlow is imported on first use (train.backend)
    from keras import KerasTensor, Model

METADATA = "maskgen.json"
FORMAT = "maskgen-classifier"
ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)


class ModelError(ValueError):
    """A weights or model file that cannot be used; the message names the file and the reason."""


def base_network(alpha: float, weights: str, size: int | None, images: KerasTensor | None = None) -> Model:
    """MobileNetV2 without its top, globally average-pooled to one 1280-wide vector per image.

    ``weights``: ``"imagenet"`` (Keras downloads and caches them), ``"none"`` (random), or the
    path of a Keras weights file made for the same ``alpha``. ``size``: the square input side, or
    None for any size (a fully convolutional use). ``images``: a Keras tensor to build on (values
    in [-1, 1]), so the network's layers become part of one flat model.
    """
    if alpha not in ALPHAS:
        raise ModelError(f"alpha {alpha}: MobileNetV2 comes in widths {', '.join(map(str, ALPHAS))}")
    source = {"imagenet": "imagenet", "none": None}.get(weights.lower(), weights)
    if source not in ("imagenet", None) and not Path(weights).is_file():
        raise ModelError(f"{weights}: weights file not found (or say imagenet / none)")
    try:
        return _mobilenet_v2(alpha, source, size, images)
    except ValueError as error:
        if source in ("imagenet", None):
            raise ModelError(f"MobileNetV2 alpha {alpha} at {size} px: {error}") from None
        made_for = next((other for other in ALPHAS if other != alpha and _fits(other, source, size)), None)
        if made_for is not None:
            raise ModelError(f"{weights}: does not fit MobileNetV2 alpha {alpha}; it was made for alpha "
                             f"{made_for}") from None
        first_line = str(error).strip().splitlines()[0][:200]
        raise ModelError(f"{weights}: does not fit MobileNetV2 alpha {alpha} ({first_line})") from None
    except OSError as error:  # h5py's, for a file that is not HDF5 at all
        if source in ("imagenet", None):
            raise
        raise ModelError(f"{weights}: not a Keras weights file ({error})") from None
    except Exception as error:  # Keras reports a failed download as a bare Exception over the URLError
        if source != "imagenet" or not isinstance(error.__context__, OSError):
            raise
        reason = getattr(error.__context__, "reason", error.__context__)
        raise ModelError(f"the ImageNet weights of MobileNetV2 alpha {alpha} could not be downloaded ({reason}); "
                         "connect once (Keras keeps them in ~/.keras), or give --weights a local .weights.h5 "
                         "file, or none") from None


def _mobilenet_v2(alpha: float, weights: str | None, size: int | None, images: KerasTensor | None = None) -> Model:
    with warnings.catch_warnings():
        # A file made for another width makes Keras warn once per layer before it fails: the
        # one-line ModelError of ``base_network`` says it all.
        warnings.simplefilter("ignore", UserWarning)
        return keras().applications.MobileNetV2(input_shape=(size, size, 3), input_tensor=images, alpha=alpha,
                                                include_top=False, weights=weights, pooling="avg")


def _fits(alpha: float, weights_file: str, size: int | None) -> bool:
    """Whether a weights file loads into MobileNetV2 of width ``alpha`` (tried only once a file
    has failed, to say which width it was made for)."""
    try:
        _mobilenet_v2(alpha, weights_file, size)
    except ValueError:
        return False
    return True


@dataclass
class Network:
    """One classifier seen three ways, sharing its layers (training one trains the others).

    ``model``: face images (RGB, 0-255 floats) to label probabilities, the mean of its heads';
    what gets saved.
    ``features``: face images to pooled base features (the frozen part).
    ``heads``: each pooled features to label probabilities (what the cached phase trains).
    ``base``: the MobileNetV2 layers, for freezing and unfreezing.
    """

    model: object
    features: object
    heads: list
    base: object


# Seeds of the k-th head's layers lie this far apart, so no two heads start alike.
HEAD_SEED_STEP = 1000


def build_network(alpha: float, weights: str, size: int, classes: int, seed: int = 0,
                  hidden: int = 128, dropout: float = 0.5, heads: int = 1) -> Network:
    """The seeds' recipe: MobileNetV2, then a dense ReLU layer, dropout and a softmax over the labels.

    With ``heads`` > 1, that many such heads sit on the one base, each started from its own
    seed, and the model gives the mean of their probabilities. The input scaling to [-1, 1] is
    part of the model, so users feed plain RGB pixels.
    """
    layers, initial = keras().layers, keras().initializers
    images = layers.Input((size, size, 3), name="face")
    scaled = layers.Rescaling(1 / 127.5, offset=-1.0, name="to_unit_range")(images)
    base = base_network(alpha, weights, size, scaled)

    def head_layers(number: int) -> list:
        start, suffix = seed + HEAD_SEED_STEP * number, f"_{number + 1}" if number else ""
        return [
            layers.Dense(hidden, activation="relu", kernel_initializer=initial.GlorotUniform(start),
                         name=f"head_dense{suffix}"),
            layers.Dropout(dropout, seed=start, name=f"head_dropout{suffix}"),
            layers.Dense(classes, activation="softmax", kernel_initializer=initial.GlorotUniform(start + 1),
                         name=f"head_softmax{suffix}"),
        ]

    def apply(stack: list, tensor):
        for layer in stack:
            tensor = layer(tensor)
        return tensor

    stacks = [head_layers(number) for number in range(heads)]
    pooled = base.output
    outputs = [apply(stack, pooled) for stack in stacks]
    probabilities = outputs[0] if heads == 1 else layers.Average(name="heads_mean")(outputs)
    features = layers.Input((pooled.shape[-1],), name="features")
    return Network(model=keras().Model(images, probabilities, name="mask_classifier"),
                   features=keras().Model(images, pooled, name="base_features"),
                   heads=[keras().Model(features, apply(stack, features), name=f"head_{number + 1}")
                          for number, stack in enumerate(stacks)],
                   base=base)


def require_model_name(path: Path) -> None:
    """``ModelError`` unless ``path`` names a ``.keras`` file, the one form our models are saved in:
    said before training, not after it, when Keras refuses to save."""
    if Path(path).suffix.lower() != ".keras":
        raise ModelError(f"{path}: a model file's name ends in .keras")


def save_keras_with(model: Model, path: Path, member: str, content: dict) -> None:
    """Write the model as a ``.keras`` file with one more JSON member in its zip, atomically."""
    with staged(path) as temp_path:
        model.save(temp_path)
        with zipfile.ZipFile(temp_path, "a") as archive:
            archive.writestr(member, json.dumps(content, indent=1))


def save_model_file(model: Model, path: Path, metadata: dict) -> None:
    """Write the model and its metadata as one ``.keras`` file, atomically."""
    save_keras_with(model, path, METADATA, {"format": FORMAT, **metadata})


# The command that makes each kind of model file, named when a file is not one.
MADE_BY = {"classifier": "`python -m train fit`", "detector": "`python -m detect train-detector`"}


def read_metadata(path: Path, kind: str = "classifier") -> dict:
    """The metadata of one of our model files of ``kind`` ("classifier" or "detector"), read
    without loading TensorFlow; ``ModelError`` naming the file for anything else."""
    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    not_ours = f"{path}: not a mask {kind} made by {MADE_BY[kind]}"
    try:
        with zipfile.ZipFile(path) as archive:
            metadata = json.loads(archive.read(METADATA))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError):
        raise ModelError(not_ours) from None
    if metadata.get("format") != FORMAT:
        raise ModelError(not_ours)
    if metadata.get("kind", "classifier") != kind:
        raise ModelError(f"{path}: is a mask {metadata.get('kind', 'classifier')}, not a mask {kind}")
    return metadata


class Classifier:
    """A loaded mask classifier: face crops in, label probabilities out, in batches.

    ``predict`` resizes every crop by the model's own rule and runs one compiled function per
    batch, never ``model.predict`` per face.
    """

    def __init__(self, model: Model, metadata: dict) -> None:
        self.model = model
        self.metadata = metadata
        self.labels: list[str] = list(metadata["labels"])
        self.size: int = int(metadata["input_size"])
        if metadata.get("resize") != RESIZE:
            raise ModelError(f"model resizes by {metadata.get('resize')!r}; this version knows {RESIZE!r}")
        signature = [tf().TensorSpec((None, self.size, self.size, 3), tf().float32)]
        self._forward = tf().function(lambda batch: model(batch, training=False), input_signature=signature)

    def predict(self, faces: list[np.ndarray] | np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Probabilities (n, len(labels)) float32 for n face crops, each (H, W, 3) uint8 RGB."""
        if len(faces) == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        batch = np.stack([resize_face(face, self.size) for face in faces]).astype(np.float32)
        return self.predict_resized(batch, batch_size)

    def predict_resized(self, batch: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Probabilities for crops already resized to (n, size, size, 3), values 0-255 (uint8 or float)."""
        chunks = [self._forward(batch[start:start + batch_size].astype(np.float32)).numpy()
                  for start in range(0, len(batch), batch_size)]
        return np.concatenate(chunks).astype(np.float32)

    def predict_views(self, views: list[np.ndarray], batch_size: int = 64) -> np.ndarray:
        """Probabilities (n, len(labels)) float32 for n faces, each given as its views (k, size, size, 3)
        (``views.face_views``): the mean over a face's views, all views run in the same batches."""
        if not views:
            return np.zeros((0, len(self.labels)), np.float32)
        counts = np.array([len(face) for face in views])
        every = self.predict_resized(np.concatenate(views), batch_size)
        return (np.add.reduceat(every, np.cumsum(counts) - counts) / counts[:, None]).astype(np.float32)


def load_model_file(path: Path, kind: str) -> tuple[object, dict]:
    """A Keras model of ours and its metadata; ``ModelError`` naming the file if it is not ours or not a ``kind``."""
    metadata = read_metadata(path, kind)
    try:
        model = keras().saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises many kinds for a damaged archive
        raise ModelError(f"{path}: cannot be loaded ({type(error).__name__}: {error})") from None
    return model, metadata


# What ``load_once`` has loaded: for each loader and file, the file's (size, modification time)
# when it was read, and what the loader made of it.
_LOADED: dict[tuple[Callable, Path], tuple[tuple[int, int], object]] = {}

Loaded = TypeVar("Loaded")


def load_once(load: Callable[[Path], Loaded], path: Path) -> Loaded:
    """``load(path)``, kept for the process as long as the file is unchanged: a model trained again
    into the same path (a notebook, a script training several seeds) is read again, not served stale."""
    path = Path(path)
    try:
        info = path.stat()
        stamp = (info.st_size, info.st_mtime_ns)
    except OSError:
        return load(path)  # it says what is wrong with the path
    known = _LOADED.get((load, path))
    if known is None or known[0] != stamp:
        known = _LOADED[(load, path)] = (stamp, load(path))
    return known[1]


def load_classifier(path: Path) -> Classifier:
    """Load one of our classifiers, once per process and version of the file (``load_once``);
    ``ModelError`` names the file if it is not one."""
    return load_once(_read_classifier, path)


def _read_classifier(path: Path) -> Classifier:
    return Classifier(*load_model_file(path, "classifier"))

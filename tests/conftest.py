"""Shared test data, all made here: scikit-image's astronaut portrait and synthetic images."""
from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from augment.dataset import ImageResult
from augment.demo import astronaut, rotate
from augment.faces import find_faces
from augment.images import save_rgb

PROJECT = Path(__file__).resolve().parent.parent
BUILTIN_STYLES = PROJECT / "mask_images"


@pytest.fixture(scope="session")
def face_image() -> np.ndarray:
    """The astronaut portrait at 256 px: one real, frontal face about 45 px between the eyes."""
    return cv2.resize(astronaut(), (256, 256), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="session")
def face_landmarks(face_image) -> np.ndarray:
    faces = find_faces(face_image)
    assert len(faces) == 1
    return faces[0].landmarks


def draw_third_party_mask(path: Path, with_loops: bool = True) -> None:
    """A plain mask PNG as found on the web: a rounded body with thin ear loops, no sidecar."""
    rgba = np.zeros((300, 420, 4), np.uint8)
    cv2.ellipse(rgba, (210, 120), (160, 150), 0, 0, 180, (70, 120, 200, 255), -1, cv2.LINE_AA)
    cv2.rectangle(rgba, (50, 60), (370, 125), (70, 120, 200, 255), -1)
    if with_loops:
        cv2.ellipse(rgba, (40, 120), (38, 60), 0, 90, 270, (240, 240, 240, 255), 3, cv2.LINE_AA)
        cv2.ellipse(rgba, (380, 120), (38, 60), 0, -90, 90, (240, 240, 240, 255), 3, cv2.LINE_AA)
    cv2.imwrite(str(path), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))


def draw_flat_mask(path):
    """A mask photographed flat, as product photos show one: a pleated rectangle as wide at the
    bottom as at the top, and its ear loops, no sidecar."""
    rgba = np.zeros((300, 600, 4), np.uint8)
    cv2.rectangle(rgba, (100, 30), (500, 270), (120, 170, 210, 255), -1)
    for y in (100, 150, 200):
        cv2.line(rgba, (100, y), (500, y), (90, 130, 170, 255), 2)
    cv2.ellipse(rgba, (100, 150), (70, 120), 0, 90, 270, (240, 240, 240, 255), 3)  # from corner to corner
    cv2.ellipse(rgba, (500, 150), (70, 120), 0, -90, 90, (240, 240, 240, 255), 3)
    cv2.imwrite(str(path), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))


def made_unless_poisoned(task: tuple[str, str]) -> ImageResult:
    """A worker's task for tests of the generator's pool: one whose file is named poison* kills its
    worker, as a crash in a native library or the kernel's out-of-memory killer would."""
    if task[0].startswith("poison"):
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.02)  # long enough that each worker holds some of the tasks when one dies
    return ImageResult(task[0], [])


@pytest.fixture(scope="session")
def brightness_model_path(tmp_path_factory) -> Path:
    """A saved classifier of 32-px crops whose "with_mask" probability grows with the crop's mean
    brightness: tiny, yet its answer differs for every view of a face, unlike an untrained MobileNetV2's."""
    from train.backend import keras
    from train.model import save_model_file
    from train.views import RESIZE

    layers = keras().layers
    model = keras().Sequential([keras().Input((32, 32, 3)), layers.GlobalAveragePooling2D(),
                                layers.Dense(2, activation="softmax")])
    model.layers[-1].set_weights([np.array([[0.005, -0.005]] * 3, np.float32), np.zeros(2, np.float32)])
    path = tmp_path_factory.mktemp("brightness") / "brightness.keras"
    save_model_file(model, path, {"labels": ["with_mask", "without_mask"], "input_size": 32, "resize": RESIZE})
    return path


@pytest.fixture()
def raw_dir(tmp_path, face_image) -> Path:
    """A small input folder: two good faces (one tilted), one picture without a face."""
    raw = tmp_path / "raw"
    raw.mkdir()
    save_rgb(raw / "upright.png", face_image)
    save_rgb(raw / "tilted.jpg", rotate(face_image, 25))
    save_rgb(raw / "noface.png", np.full((120, 160, 3), 128, np.uint8))
    return raw


@pytest.fixture()
def styles_dir(tmp_path) -> Path:
    """Two built-in styles, copied so tests may add files beside them."""
    folder = tmp_path / "styles"
    folder.mkdir()
    for name in ("surgical_blue", "cloth_black"):
        for suffix in (".png", ".json"):
            shutil.copy(BUILTIN_STYLES / f"{name}{suffix}", folder)
    return folder


@pytest.fixture()
def ctrl_c_default():
    """Python's own Ctrl-C handler, as a user's terminal has it, for the test's length: a test run
    started in the background (CI) ignores SIGINT."""
    saved = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, saved)


def children_of(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # not a process, or gone meanwhile
        if entry.name.isdigit() and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found

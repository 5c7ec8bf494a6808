"""A built-in demo set made from scikit-image's public-domain astronaut portrait.

One real face, shown the ways real photos show faces: tilted, turned, small, blurred,
dim, warm-lit, side-lit, greyscale, and two faces in one picture. Needs no user data.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from augment.images import save_rgb


def astronaut() -> np.ndarray:
    """scikit-image's astronaut portrait (Eileen Collins, NASA, public domain), RGB uint8 (512, 512, 3)."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


def rotate(rgb: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate about the centre, keeping the size, filling with the edge colours."""
    height, width = rgb.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    return cv2.warpAffine(rgb, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def turn(rgb: np.ndarray, amount: float) -> np.ndarray:
    """Fake a head turned sideways: squeeze one side of the picture with a perspective warp."""
    height, width = rgb.shape[:2]
    source = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
    squeeze = amount * height
    target = np.float32([[0, 0], [width * (1 - amount), squeeze], [width * (1 - amount), height - squeeze], [0, height]])
    matrix = cv2.getPerspectiveTransform(source, target)
    return cv2.warpPerspective(rgb, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def relight(rgb: np.ndarray, gains: tuple[float, float, float], gradient: float = 0.0) -> np.ndarray:
    """Multiply colours by ``gains`` in linear light, optionally darkening towards the left by ``gradient``."""
    linear = (rgb.astype(np.float32) / 255.0) ** 2.2 * np.asarray(gains, np.float32)
    if gradient:
        ramp = np.linspace(1.0 - gradient, 1.0, rgb.shape[1], dtype=np.float32)
        linear *= ramp[None, :, None]
    return np.clip(np.clip(linear, 0, 1) ** (1 / 2.2) * 255 + 0.5, 0, 255).astype(np.uint8)


def demo_faces() -> dict[str, np.ndarray]:
    """The demo inputs by file name."""
    face = astronaut()
    small = cv2.resize(face, (240, 240), interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(cv2.cvtColor(face, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    rng = np.random.default_rng(0)
    noisy = relight(face, (0.25, 0.25, 0.28))
    noisy = np.clip(noisy + rng.normal(0, 6, noisy.shape), 0, 255).astype(np.uint8)
    pair = np.hstack([face, cv2.flip(rotate(face, -12), 1)])
    return {
        "astronaut.png": face,
        "tilted_left.png": rotate(face, 25),
        "tilted_right.png": rotate(face, -20),
        "turned.png": turn(face, 0.22),
        "small.png": small,
        "blurred.png": cv2.GaussianBlur(face, (0, 0), 2.5),
        "dim_noisy.png": noisy,
        "warm_light.png": relight(face, (1.15, 0.85, 0.55)),
        "side_light.png": relight(face, (1.0, 1.0, 1.0), gradient=0.85),
        "greyscale.png": grey,
        "two_faces.png": pair,
    }


def write_demo_faces(folder: Path) -> list[Path]:
    """Write the demo inputs as PNG files into ``folder``; returns their paths."""
    paths = []
    for name, rgb in demo_faces().items():
        path = Path(folder) / name
        if not path.exists():
            save_rgb(path, rgb)
        paths.append(path)
    return paths

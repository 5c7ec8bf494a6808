"""Reading and writing images: EXIF orientation, odd pixel formats, atomic writes, and the hold
that keeps a folder to one run at a time.

Every image the product handles in memory is an RGB ``uint8`` array of shape (H, W, 3).
"""
from __future__ import annotations

import contextlib
import errno
import functools
import math
import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# JPEG (.jfif as browsers on Windows save it), PNG, BMP and WebP, the TIFF, GIF and Netpbm files
# some face databases come in, and the HEIC and AVIF photos of phones (HEIC through pillow-heif,
# ``_heif_readable``).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".jfif", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".pgm", ".ppm",
                  ".pnm", ".heic", ".heif", ".avif")
HEIF_SUFFIXES = (".heic", ".heif")

# What ``save_rgb`` writes an RGB picture as: OpenCV's encoders, less Netpbm's grey-only PGM and
# GIF (encoded only since OpenCV 4.11).
PICTURE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".ppm")

# Larger images are refused before decoding: a 20000x20000 photo would need 1.2 GB as RGB. A
# JPEG counts at the size it is decoded to (``load_rgb_reduced``), so the 108- and 200-megapixel
# photos of some phones are read at a reduced scale where their faces allow. This check replaces
# Pillow's own decompression-bomb guard, which is looser and gives a vaguer message.
MAX_PIXELS = 50_000_000
# How a picture the system would not read begins its reason (``outputs.tried_again``).
UNREADABLE = "cannot read"
Image.MAX_IMAGE_PIXELS = None

# How much longer than asked a reduced copy of a panorama may be (``working_longest``).
PANORAMA_REACH = 4


class ImageError(ValueError):
    """An input image that cannot be used; the message says why."""


class FolderBusy(RuntimeError):
    """Another run is writing into a folder; the message names it."""


def is_image_path(path: Path) -> bool:
    """True when the file name has one of the supported image suffixes."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def pictures_under(folder: Path) -> tuple[list[Path], list[OSError]]:
    """The picture files under ``folder`` (``is_image_path``), sorted by their path below it, and
    the errors of the folders that could not be read.

    Links to folders are followed (a photo collection is often linked into a folder), each folder
    once, under its own name where it has one there: a loop is not followed round. Hidden files
    and folders (named ``.*``: thumbnail caches, version control, the ``._NAME`` files a Mac
    leaves) are left out.
    """
    found, errors, listed = [], [], set()
    for directory, subdirectories, files in os.walk(folder, onerror=errors.append, followlinks=True):
        try:
            info = os.stat(directory)
        except OSError as error:
            errors.append(error)
            subdirectories.clear()
            continue
        if (info.st_dev, info.st_ino) in listed:
            subdirectories.clear()
            continue
        listed.add((info.st_dev, info.st_ino))
        # Real folders first, so that a folder also linked to is listed under its own name.
        subdirectories[:] = sorted((name for name in subdirectories if not name.startswith(".")),
                                   key=lambda name: (os.path.islink(os.path.join(directory, name)), name))
        found.extend(Path(directory, name) for name in files
                     if not name.startswith(".") and is_image_path(Path(name)))
    return sorted(found, key=lambda path: path.relative_to(folder).as_posix()), errors


def to_rgb8(image: Image.Image) -> np.ndarray:
    """Convert any PIL image (grayscale, palette, RGBA, 16- or 32-bit, float, CMYK) to RGB uint8.

    Deep greyscale is scaled by the range its values show: 0-1 for floats that stay within it,
    else 0-255 for values that stay within that, else 0-65535.
    """
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.nan_to_num(np.asarray(image, dtype=np.float64))
        top = values.max(initial=0.0)
        peak = 1.0 if image.mode == "F" and top <= 1.0 else 255.0 if top <= 255 else 65535.0
        grey = np.clip(values / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent areas become white, as every image viewer shows them.
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(canvas, rgba)
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


def load_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as upright RGB uint8 (H, W, 3), honouring EXIF orientation.

    Raises ImageError with a one-line reason for empty, corrupt, non-image or oversized files.
    """
    return load_rgb_reduced(path, None)[0]


def load_rgb_reduced(path: str | os.PathLike, longest: int | None) -> tuple[np.ndarray, float]:
    """Read an image file as ``load_rgb`` does, but smaller where its format makes that cheap.

    A JPEG decoder can scale a picture by 1/2, 1/4 or 1/8 as it decodes, several times quicker
    than decoding every pixel (a 16-megapixel photo: 0.02 s against 0.25 s). The image comes back
    at the smallest such scale that keeps ``working_longest(height, width, longest)`` pixels or
    more on its longest side (None: full size), with that scale (1.0: not reduced; other formats
    always come back at full size).
    """
    path = Path(path)
    try:
        status = path.stat()
    except OSError as error:
        if error.errno == errno.ENOENT and path.is_symlink():  # "No such file" would puzzle: the link is there
            raise ImageError(f"{UNREADABLE}: a link to {os.readlink(path)}, which does not exist") from None
        raise ImageError(f"{UNREADABLE}: {error.strerror}") from None
    if not stat.S_ISREG(status.st_mode):  # reading a pipe named .jpg would wait for ever
        raise ImageError("not a file (a folder, a pipe or a device)")
    if status.st_size == 0:
        raise ImageError("empty file")
    if path.suffix.lower() in HEIF_SUFFIXES:
        _heif_readable()
    try:
        with Image.open(path) as image:
            width, height = image.size
            keep = max(width, height) if longest is None else working_longest(height, width, longest)
            if max(width, height) > keep:
                ratio = keep / max(width, height)
                image.draft(image.mode, (int(np.ceil(width * ratio)), int(np.ceil(height * ratio))))
            if image.size[0] * image.size[1] > MAX_PIXELS:  # the size it decodes to
                raise ImageError(f"image too large: {width}x{height} is over {MAX_PIXELS // 1_000_000} megapixels")
            image.load()
            scale = max(image.size) / max(width, height)
            return to_rgb8(ImageOps.exif_transpose(image)), scale
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError("not a readable image") from None
    except OSError as error:
        if error.errno is not None:  # the system's refusal (permissions, a network drive), not the picture's
            raise ImageError(f"{UNREADABLE}: {error.strerror}") from None
        raise ImageError(f"corrupt image: {error}") from None
    except (ValueError, SyntaxError, EOFError) as error:
        raise ImageError(f"corrupt image: {error}") from None


@functools.cache
def _heif_readable() -> None:
    """Teach Pillow to open HEIC/HEIF files, once per process, when the first one is read."""
    import pillow_heif

    pillow_heif.register_heif_opener()


@functools.cache
def _file_mode() -> int:
    # What open() would give a new file: mkstemp makes its files private (0600) instead.
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def _replacing(path: Path) -> Iterator[tuple[int, str]]:
    """A new temporary file beside ``path``, ending in its suffix, as (open descriptor, name): when the
    block ends without an error the file replaces ``path`` (the descriptor must be closed by then);
    on an error (Ctrl-C included) it is removed. An OSError names ``path``, not the temporary file."""
    temp_name = None
    # A short prefix: the temporary name must fit where the final one just fits (255 bytes).
    beside = {"dir": path.parent, "prefix": f".{path.stem[:16]}.", "suffix": f".part{path.suffix[:16]}"}
    try:
        try:
            handle, temp_name = tempfile.mkstemp(**beside)
        except FileNotFoundError:  # the folder is made only when missing: asking first costs a call a file
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temp_name = tempfile.mkstemp(**beside)
        yield handle, temp_name
        os.chmod(temp_name, _file_mode())
        os.replace(temp_name, path)
    except BaseException as error:
        if temp_name is not None:
            Path(temp_name).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise OSError(error.errno, error.strerror or str(error), str(path)) from None
        raise


@contextlib.contextmanager
def staged(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary file name beside ``path``, ending in its suffix, for writers that want a name
    rather than bytes (a video encoder, a plotter, a model saver): when the block ends without an
    error the file replaces ``path``; on an error (Ctrl-C included) it is removed and ``path`` is
    left as it was. So no partial file is ever seen under ``path``.

    An OSError raised in the block or by the rename names ``path``, not the temporary file.
    """
    with _replacing(Path(path)) as (handle, temp_name):
        os.close(handle)
        yield Path(temp_name)


def write_atomic(path: str | os.PathLike, data: bytes | Iterable[bytes]) -> None:
    """Write bytes (or chunks of bytes, as they come) to path through a temporary file and a rename
    (as ``staged``), so no partial file is ever seen.

    A failure raises OSError naming ``path`` (not the temporary file) and leaves nothing behind.
    """
    with _replacing(Path(path)) as (handle, _), open(handle, "wb") as file:
        if isinstance(data, bytes):
            file.write(data)
        else:
            file.writelines(data)


def require_picture_suffix(path: str | os.PathLike) -> None:
    """Raise ImageError, naming the path, unless ``save_rgb`` can write a picture under its suffix."""
    suffix = Path(path).suffix
    if suffix.lower() not in PICTURE_SUFFIXES:
        raise ImageError(f"{path}: cannot write {suffix or 'suffix-less'} pictures; use .jpg or .png")


def encode_image(rgb: np.ndarray, suffix: str = ".jpg", quality: int = 95) -> bytes:
    """Encode an RGB uint8 image in the format its ``suffix`` names (one of PICTURE_SUFFIXES)."""
    if suffix.lower() not in PICTURE_SUFFIXES:
        raise ImageError(f"cannot encode image as {suffix or 'a file without a suffix'}")
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if suffix.lower() in (".jpg", ".jpeg") else []
    ok, buffer = cv2.imencode(suffix, bgr, params)
    if not ok:
        raise ImageError(f"cannot encode image as {suffix}")
    return buffer.tobytes()


def save_rgb(path: str | os.PathLike, rgb: np.ndarray, quality: int = 95) -> None:
    """Save an RGB uint8 image atomically; the format follows the file suffix."""
    write_atomic(path, encode_image(rgb, Path(path).suffix, quality))


def working_longest(height: int, width: int, side: int) -> int:
    """The longest side, in pixels, of a reduced copy of a ``height`` x ``width`` picture that is
    looked at ``side`` pixels long.

    ``side``, unless that would leave the short side under half of ``side``: a panorama keeps that
    much, so that its faces are not made smaller than those of a 2:1 photo, up to a long side of
    PANORAMA_REACH times ``side`` (a strip longer than 8:1 is reduced further), so that the time
    spent on it stays within a few photos' time. Never more than the picture's own longest side.
    """
    longest, shortest = max(height, width), max(min(height, width), 1)
    return min(longest, PANORAMA_REACH * side, max(side, math.ceil(longest * side / (2 * shortest))))


def resize_longest(rgb: np.ndarray, longest: int) -> tuple[np.ndarray, float]:
    """Resize so the longest side is ``longest`` pixels; returns the image and the scale used."""
    height, width = rgb.shape[:2]
    scale = longest / max(height, width)
    if abs(scale - 1.0) < 1e-6:
        return rgb, 1.0
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(rgb, size, interpolation=interpolation), scale


def contact_sheet(images: list[np.ndarray], columns: int, cell: int, captions: list[str] | None = None) -> np.ndarray:
    """Tile RGB uint8 images into one sheet, each fitted into a ``cell`` x ``cell`` square, captioned if given."""
    rows = max(1, -(-len(images) // columns))
    sheet = np.full((rows * cell, columns * cell, 3), 255, np.uint8)
    for index, image in enumerate(images):
        fitted, _ = resize_longest(image, cell)
        top = (index // columns) * cell + (cell - fitted.shape[0]) // 2
        left = (index % columns) * cell + (cell - fitted.shape[1]) // 2
        sheet[top:top + fitted.shape[0], left:left + fitted.shape[1]] = fitted
        if captions and captions[index]:
            scale = cell / 400
            (width, height), _ = cv2.getTextSize(captions[index], cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
            if width + 8 > cell:  # a long file name, made smaller to stay under its own picture
                scale *= (cell - 8) / width
                (width, height), _ = cv2.getTextSize(captions[index], cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
            left, bottom = (index % columns) * cell, (index // columns + 1) * cell
            sheet[bottom - height - 8:bottom, left:left + width + 8] //= 3  # a dark band under the text
            cv2.putText(sheet, captions[index], (left + 4, bottom - 5), cv2.FONT_HERSHEY_SIMPLEX, scale,
                        (255, 255, 255), 1, cv2.LINE_AA)
    return sheet


@contextlib.contextmanager
def held(folder: Path) -> Iterator[None]:
    """Keep ``folder`` to this process while inside: FolderBusy at once if another process holds it.

    For a run that writes there and would otherwise clear or mix with another run's files. The
    hold is the system's lock on ``folder/.lock``, so it ends with the process, however the
    process ends. A folder where that file cannot be made is not held: the run's own checks then
    say why it cannot be written there.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(folder / ".lock", "a+b")
    except OSError:
        yield
        return
    with handle:
        if not _lock_at_once(handle):
            raise FolderBusy(f"{folder}: another run is writing there now; wait for it to end, or stop it")
        yield


def _lock_at_once(handle: BinaryIO) -> bool:
    """Lock an open file for this process without waiting; False if another process has it."""
    try:
        if os.name == "nt":
            import msvcrt
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        # Another holder; or a file system without locks (some network mounts), where the run goes
        # on unguarded, as it would have before.
        return error.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES)
    return True

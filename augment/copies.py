"""Copies among the input photos: the same picture mirrored, turned, cropped, resized, re-saved or recoloured.

Folders of faces gathered from the web often hold such copies (augmented versions saved beside
the originals, one photo from two sites): 166 of the 514 photos of ``data/raw`` are in 68 groups
of copies. A copy of a training face in ``val`` or ``test`` flatters the scores there, so the
generator gives every group of copies the split of one of them.

A photo's signature is a difference hash (is each of 16 x 17 grey cells brighter than its left
neighbour?) of the picture and of its mirror image. Copies differ in a few of the 256 bits;
different photos, even two portraits on the same black background, in 20 or more. A copy that
was also turned, cropped or zoomed changes the whole picture's hash, so each face has a
signature too: the same hash of the face alone, turned upright and scaled to a fixed size by
its landmarks (``face_signature``). Such copies are common: in ``data/raw`` they put 64 more
photos in groups than the whole picture's hash does. Two photos of one person are not copies
and are not grouped. Pure functions; signatures are hex strings, so they can be kept in each
input's JSON record.
"""
from __future__ import annotations

from collections import defaultdict

import cv2
import numpy as np

from augment.fit import CANONICAL_FACE
from augment.geometry import fit_affine

HASH_SIDE = 16
HASH_BITS = HASH_SIDE * HASH_SIDE
SAMPLED = ((HASH_SIDE + 1) * 64, HASH_SIDE * 64)  # (width, height) a large photo is sampled down to first
# Copies in data/raw differ by 0-10 bits (mirrored and resized: 10); the closest pair of
# different photos by 21.
MAX_DISTANCE = 12
# A face's hash moves with its landmarks' jitter: copies turned or zoomed differ by 1-31 bits,
# most by under 16 (the 45-px astronaut zoomed and cropped: 2-15), faces of photos that are not
# copies by 28 or more in data/raw (a painting and a photo of a woman much like it; two renders
# of one 3-D head), 38 or more in real_dev.
MAX_FACE_DISTANCE = 16
MAX_SEARCH = 32  # farther limits would make the bands compared too narrow to tell photos apart
# The face chip: a CHIP_SIDE square where the canonical face's eyes are CHIP_EYE_DISTANCE apart
# with the point midway between them at CHIP_ORIGIN; fitted by the landmarks that jitter least
# (brows, nose, eyes, mouth: not the jaw).
CHIP_SIDE = 64
CHIP_EYE_DISTANCE = 24.0
CHIP_ORIGIN = np.array([32.0, 24.0])
INNER = slice(17, 68)
# A band value shared by this many photos says nothing (a flat sky, a plain backdrop): not used
# to find candidates, so the work stays about linear in the number of photos.
CROWDED_BAND = 1000
# A hash with fewer than this many bits set, or unset, is a blank or nearly flat picture (equal
# cells read as 0): every such picture would look like a copy of every other, so none is grouped.
# Photos of data/raw and real_dev set 42-190 of the 256.
FEATURELESS = 32


def _difference_hash(cells: np.ndarray) -> bytes:
    return np.packbits(cells[:, 1:] > cells[:, :-1]).tobytes()


def signature(rgb: np.ndarray) -> str:
    """The signature of an RGB uint8 image (H, W, 3): its hash and its mirror image's, 128 hex digits."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {rgb.dtype} {rgb.shape}")
    height, width = rgb.shape[:2]
    if width > SAMPLED[0] and height > SAMPLED[1]:
        # Averaging every pixel of a camera's photo costs more than finding its faces; 4,096
        # samples a cell average as well (a 13-megapixel frame and its copies at half and a
        # quarter of the size: the same hash).
        rgb = cv2.resize(rgb, SAMPLED, interpolation=cv2.INTER_NEAREST)
    small = cv2.resize(rgb, (HASH_SIDE + 1, HASH_SIDE), interpolation=cv2.INTER_AREA)
    cells = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.int16)  # a mirror image has these cells mirrored
    return (_difference_hash(cells) + _difference_hash(cells[:, ::-1])).hex()


def face_signature(rgb: np.ndarray, landmarks: np.ndarray) -> str:
    """The signature (as ``signature``) of one face of an RGB uint8 image, given its 68 landmarks
    (68, 2) in the image: the face turned upright and scaled onto a fixed chip by a least-squares
    fit of its brows, eyes, nose and mouth to the canonical face, so that a copy of the photo
    turned, cropped or zoomed gives nearly the same one."""
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (68, 2):
        raise ValueError(f"expected 68 landmarks of shape (68, 2), got {points.shape}")
    to_chip = fit_affine(points[INNER], CANONICAL_FACE[INNER] * CHIP_EYE_DISTANCE + CHIP_ORIGIN)
    # Sampled at four times the chip's pixels and averaged down, so that a large face does not alias.
    supersampled = cv2.warpAffine(rgb, to_chip * 2.0, (2 * CHIP_SIDE, 2 * CHIP_SIDE), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REFLECT)
    chip = cv2.resize(supersampled, (CHIP_SIDE, CHIP_SIDE), interpolation=cv2.INTER_AREA)
    return signature(chip)


def _halves(signature_hex: str) -> tuple[int, int]:
    digits = HASH_BITS // 4
    return int(signature_hex[:digits], 16), int(signature_hex[digits:], 16)


def distance(a: str, b: str) -> int:
    """How many of the 256 bits two signatures differ in, either picture mirrored (the fewer)."""
    return _bits_apart(_halves(a), _halves(b))


def copy_groups(signatures: dict[str, str], max_distance: int = MAX_DISTANCE,
                linked: dict[str, str] | None = None) -> dict[str, str]:
    """Each photo's group among ``signatures`` (name -> signature): the smallest name of the photos
    it is a copy of, directly or through another copy (itself when it has none, or when its
    picture is too plain to tell: ``FEATURELESS``). Names that ``linked`` maps to one key (two
    versions of one face, say) are in one group whatever their pictures.

    Two hashes within ``max_distance`` bits agree on at least one of ``max_distance + 1`` bands
    of bits, so only photos sharing a band's value (plain or mirrored) are compared: the work
    grows with the number of photos, not with its square.
    """
    if not 0 <= max_distance < MAX_SEARCH:
        raise ValueError(f"max_distance must be from 0 to under {MAX_SEARCH} bits, got {max_distance}")
    names = sorted(signatures)
    halves = [_halves(signatures[name]) for name in names]
    parent = list(range(len(names)))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    def join(first: int, second: int) -> None:
        a, b = root(first), root(second)
        parent[max(a, b)] = min(a, b)  # the smaller index, hence the smaller name, leads

    first_with_key: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in (linked or {}):
            join(first_with_key.setdefault(linked[name], index), index)
    distinct = [index for index, (plain, _) in enumerate(halves)
                if FEATURELESS <= plain.bit_count() <= HASH_BITS - FEATURELESS]
    identical: dict[int, int] = {}
    for index in distinct:
        for half in halves[index]:
            if half in identical:  # the same picture, or its mirror image: however many there are
                join(identical[half], index)
        identical.setdefault(halves[index][0], index)
    width = -(-HASH_BITS // (max_distance + 1))  # bits in a band
    mask = (1 << width) - 1
    for shift in range(0, HASH_BITS, width):  # one band at a time, so memory stays one entry a photo
        with_value: dict[int, list[int]] = defaultdict(list)
        for index in distinct:
            with_value[(halves[index][0] >> shift) & mask].append(index)
        for index in distinct:
            plain, mirrored = halves[index]
            for half in (plain, mirrored):
                others = with_value.get((half >> shift) & mask, ())
                if len(others) >= CROWDED_BAND:
                    continue
                for other in others:
                    if root(other) != root(index) and _bits_apart(halves[index], halves[other]) <= max_distance:
                        join(index, other)
    return {name: names[root(index)] for index, name in enumerate(names)}


def _bits_apart(a: tuple[int, int], b: tuple[int, int]) -> int:
    return min((a[0] ^ b[0]).bit_count(), (a[0] ^ b[1]).bit_count())

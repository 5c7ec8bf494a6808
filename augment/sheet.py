"""A generated dataset at a glance: a sample of its faces, each beside its masked twin, on one picture.

For looking at what a run made before training on it: how a new style sits on many faces, what
the faces found by the cascade's later passes look like, what went into the test split.
"""
from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from augment.dataset import MANIFEST
from augment.images import ImageError, contact_sheet, load_rgb_reduced

# Pairs side by side, this many to a row of the sheet.
PAIRS_PER_ROW = 3


class SheetError(ValueError):
    """A folder that is not a generated dataset, or a choice that no face of it matches."""


@dataclass(frozen=True)
class Pair:
    """One output file name of a generated dataset, as ``with_mask/NAME`` and ``without_mask/NAME``."""

    name: str
    split: str
    styles: tuple[str, ...]  # one per masked face: several in a whole picture (--full-images)
    detectors: tuple[str, ...]  # the cascade's pass that found each face


def read_pairs(folder: Path) -> list[Pair]:
    """The pairs of a generated dataset, from its manifest's with_mask records, sorted by name.

    Raises SheetError naming the folder when it holds no manifest, or the line that is not a record.
    """
    manifest = Path(folder) / MANIFEST
    if not manifest.is_file():
        raise SheetError(f"{folder}: not a generated dataset (no {MANIFEST}); give the folder `augment generate` wrote")
    pairs = []
    for number, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), 1):
        try:
            record = json.loads(line)
            if record["label"] != "with_mask":
                continue
            faces = record.get("faces", [record])  # a whole picture lists its faces; a crop is one
            pairs.append(Pair(record["path"].split("/", 1)[1], record["split"],
                              tuple(face["style"] for face in faces), tuple(face["detector"] for face in faces)))
        except (json.JSONDecodeError, KeyError, TypeError, IndexError, AttributeError) as error:
            raise SheetError(f"{manifest}: line {number} is not a manifest record ({error})") from None
    return sorted(pairs, key=lambda pair: pair.name)


def matching_pairs(pairs: list[Pair], styles: tuple[str, ...] = (), detectors: tuple[str, ...] = (),
                   split: str | None = None) -> list[Pair]:
    """The ``pairs`` with a face wearing one of ``styles``, found by one of ``detectors``, in ``split``
    (each only when given).

    Raises SheetError when none matches, saying what the pairs have of the choice that matched nothing.
    """
    chosen = pairs
    for wanted, values, what in ((styles, lambda pair: pair.styles, "style"),
                                 (detectors, lambda pair: pair.detectors, "detector"),
                                 ((split,) if split else (), lambda pair: (pair.split,), "split")):
        if not wanted:
            continue
        matching = [pair for pair in chosen if set(values(pair)) & set(wanted)]
        if not matching:
            present = Counter(value for pair in chosen for value in values(pair))
            listed = ", ".join(f"{value} ({number})" for value, number in sorted(present.items())) or "none"
            raise SheetError(f"no face with {what} {' or '.join(wanted)}; these have: {listed}")
        chosen = matching
    return chosen


def sample_pairs(pairs: list[Pair], count: int, seed: int = 0) -> list[Pair]:
    """``count`` of ``pairs`` drawn at random by ``seed`` (all when there are no more), in name order."""
    if len(pairs) <= count:
        return list(pairs)
    return sorted(random.Random(seed).sample(pairs, count), key=lambda pair: pair.name)


def pair_sheet(folder: Path, pairs: list[Pair], cell: int = 200) -> tuple[np.ndarray, list[str]]:
    """One RGB uint8 picture of ``pairs`` of the dataset in ``folder``: each unmasked face (captioned
    with its file name) beside its masked twin (captioned with its style), PAIRS_PER_ROW to a row,
    each picture fitted into a ``cell`` x ``cell`` square.

    Returns the sheet and one line per pair left out because a file of it cannot be read; raises
    SheetError when no pair can be.
    """
    tiles, captions, problems = [], [], []
    for pair in pairs:
        halves = []
        for label in ("without_mask", "with_mask"):
            path = Path(folder) / label / pair.name
            try:  # decoded no larger than the cell needs: whole phone photos (--full-images) too
                halves.append(load_rgb_reduced(path, cell)[0])
            except ImageError as error:
                problems.append(f"{path}: {error}; its pair is left out")
                break
        else:
            tiles += halves
            captions += [Path(pair.name).stem, ", ".join(dict.fromkeys(pair.styles))]
    if not tiles:
        raise SheetError(f"{folder}: none of the {len(pairs)} chosen pairs could be read ({problems[0]})")
    return contact_sheet(tiles, 2 * PAIRS_PER_ROW, cell, captions), problems

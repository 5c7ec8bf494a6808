"""Which images a training run uses, with which label, in which split, framed by which face box.

A folder made by ``python -m augment generate`` has a ``manifest.jsonl``: its split (per source
photo, so both versions of a face stay together) and its face boxes are used as they are. Any
other folder with one sub-folder per label also works: its split then comes from a hash of the
file name with the label words taken out (the generator's own
split rule, ``augment.dataset.split_of``), so ``12.jpg`` and ``12-with-mask.jpg`` still land
together; once the images are decoded, ``copies_together`` also puts copies of one picture
(mirrored, resized, re-saved: ``augment.copies``) and their pairs in one split.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from augment.copies import copy_groups, signature
from augment.dataset import MANIFEST, split_of
from augment.images import pictures_under


class DataError(ValueError):
    """A data folder that cannot be trained or evaluated on; the message names the folder."""


@dataclass(frozen=True)
class Sample:
    """One face to learn from: image file, label, split, and the face box in the image if known."""

    path: Path
    label: str
    split: str
    box: tuple[float, float, float, float] | None = None


def class_folders(data: Path, at_least: int = 2) -> dict[str, list[Path]]:
    """The label folders of ``data`` and their image files, sorted; at least ``at_least`` non-empty ones.

    Training needs two labels; scoring a model needs one (a folder of masked photos alone
    measures how many of them it finds masked). Raises ``DataError`` naming the folder otherwise,
    and for a folder holding a generated dataset (with its own label folders) as a sub-folder.
    """
    if not data.is_dir():
        raise DataError(f"{data}: not a folder")
    folders = {}
    for folder in sorted(p for p in data.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if (folder / MANIFEST).is_file():  # the folder above a generated dataset, given by mistake
            raise DataError(f"{data}: its sub-folder {folder.name}/ is a generated dataset, not a label; "
                            f"give --data {folder}")
        images, _ = pictures_under(folder)
        if images:
            folders[folder.name] = images
    if len(folders) < at_least:
        found = ", ".join(folders) or "none"
        raise DataError(f"{data}: needs at least {at_least} non-empty class folder{'s' if at_least > 1 else ''} "
                        f"(e.g. with_mask/ and without_mask/); found {found}")
    return folders


def pair_key(path: Path, labels: list[str]) -> str:
    """The part of a file name two versions of one face share: label words and separators removed."""
    stem = path.stem.lower()
    for label in labels:
        for spelling in {label.lower(), label.lower().replace("_", "-"), label.lower().replace("_", "")}:
            stem = stem.replace(spelling, "")
    return re.sub(r"[\s_\-.]+", "", stem) or path.stem.lower()


def manifest_samples(data: Path, labels: list[str]) -> list[Sample]:
    """Samples from a generator manifest: a crop record gives one, a whole-image record one per face."""
    samples = []
    with open(data / MANIFEST, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                path, label, split = data / record["path"], record["label"], record["split"]
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                raise DataError(f"{data / MANIFEST}: line {number} is not a manifest record ({error})") from None
            if label not in labels or not path.is_file():
                continue
            if "faces" in record:
                samples += [Sample(path, label, split, tuple(face["box"])) for face in record["faces"]]
            else:
                samples.append(Sample(path, label, split, tuple(record["box"]) if record.get("box") else None))
    return samples


def load_samples(data: Path, at_least: int = 2) -> tuple[list[Sample], list[str], str]:
    """All samples of a labelled folder, its sorted labels (``at_least`` of them), and how the
    split was decided.

    The third value is ``"manifest"`` or ``"file names"``; the latter keeps paired names
    together but knows nothing of source photos. Images put into a generated dataset's label
    folders by hand (your own masked photos, say) are not in its manifest: they are taken as face
    crops and split by their names, and the third value says how many there are.
    """
    folders = class_folders(data, at_least)
    labels = list(folders)
    by_name = [Sample(path, label, split_of(pair_key(path, labels)))
               for label, paths in folders.items() for path in paths]
    if (data / MANIFEST).is_file():
        samples = manifest_samples(data, labels)
        if {s.label for s in samples} == set(labels):
            listed = {sample.path for sample in samples}
            added = [sample for sample in by_name if sample.path not in listed]
            how = f"manifest; {len(added)} image{'s' if len(added) != 1 else ''} not in it by their file names"
            return samples + added, labels, how if added else "manifest"
    return by_name, labels, "file names"


def load_folders(folders: list[Path]) -> tuple[list[Sample], list[str], dict[Path, str]]:
    """The samples of one or more labelled folders together (a generated dataset and a folder of
    your own photos, say), every label of any of them, sorted, and how each folder's split was
    decided (``load_samples``). One folder needs two labels; of several, each needs one (your
    own masked photos alone) and all of them together two."""
    resolved = [folder.resolve() for folder in folders]
    for number, folder in enumerate(resolved):
        inside = [other for other in resolved[:number] + resolved[number + 1:]
                  if other == folder or other in folder.parents]
        if inside:
            raise DataError(f"{folders[number]}: given twice, or inside another --data folder")
    samples, labels, sources = [], set(), {}
    for folder in folders:
        found, its_labels, sources[folder] = load_samples(folder, 2 if len(folders) == 1 else 1)
        samples += found
        labels.update(its_labels)
    if len(labels) < 2:
        raise DataError(f"{', '.join(map(str, folders))}: together need at least 2 labels (e.g. with_mask/ and "
                        f"without_mask/); found {', '.join(sorted(labels))}")
    return samples, sorted(labels), sources


def copies_together(samples: list[Sample], images: list[np.ndarray | None], labels: list[str]
                    ) -> tuple[list[Sample], int]:
    """The samples of a folder split by file name, re-split so that copies of one picture share a
    split with each other and with their paired names; and how many images are in such groups
    (a copy, and every version of it and of its original).

    ``images`` are the samples' decoded RGB images (None where unreadable). A group's split is
    that of its smallest path's name key, so a sample with no copy keeps its split.
    """
    signatures = {str(sample.path): signature(image) for sample, image in zip(samples, images) if image is not None}
    keys = {str(sample.path): pair_key(sample.path, labels) for sample in samples}
    groups = copy_groups(signatures, linked=keys)
    keys_in_group: dict[str, set[str]] = {}
    for path, group in groups.items():
        keys_in_group.setdefault(group, set()).add(keys[path])
    copies = sum(1 for path, group in groups.items() if len(keys_in_group[group]) > 1)
    resplit = [replace(sample, split=split_of(keys[groups[str(sample.path)]]))
               if str(sample.path) in groups else sample for sample in samples]
    return resplit, copies

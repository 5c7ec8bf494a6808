"""The output folder's bookkeeping: what a run keeps of each finished input, resuming, clearing
out what is stale, and the manifest and report written at the end.

For each input a run writes a record in ``.parts/images/STEM.json`` (``dataset.process_image``):
its source path, the ``input_stamp`` of the file it was made from, the signatures of its picture
and of its faces (``copies``), its manifest records, and why it was skipped if it was. Everything
here works from those records and the folder's settings stamp; nothing here looks at pixels.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Collection, Iterable, Iterator, NamedTuple

from augment.copies import MAX_FACE_DISTANCE, copy_groups
from augment.dataset import (IMAGE_PARTS, LABELS, MANIFEST, PARTS, DatasetError, Settings, SettingsChanged, draw_style,
                             split_of)
from augment.images import UNREADABLE, write_atomic
from augment.styles import MaskStyle

# How inputs are grouped into splits (``splits``): each photo with its copies, or whole folders.
SPLIT_BY = ("photo", "folder")
# The settings a folder was made with, checked by every run into it.
SETTINGS_STAMP = Path(PARTS, "settings.json")
# The settings that say which styles there are: a change to them alone is brought up to date.
STYLE_SETTINGS = {"styles", "style_weights", "style_fingerprints"}
_WHAT_TO_DO = "use another --out, or --restart to delete what it made and start again"
# Skips whose cause lies outside the picture: a worker killed making it (out of memory, most
# often), a file the system would not read (permissions, a network drive). A later run tries
# such an input again, where a picture with no face stays skipped until its file changes.
WORKER_DIED = "the worker process died making it (out of memory, or a crash in a library)"


def tried_again(skipped: str | None) -> bool:
    """Whether an input skipped for this reason is tried again by the next run into its folder."""
    return skipped is not None and (skipped == WORKER_DIED or skipped.startswith(UNREADABLE))


class StyleChange(NamedTuple):
    """How the mask styles differ from a folder's earlier run: in words, and the styles edited
    under their name (other pixels, anchors or creases)."""

    what: str
    edited: frozenset[str]


def check_settings(out: Path, settings: Settings) -> StyleChange | None:
    """Refuse to resume into a folder made with other settings; say how its styles changed, if they did.

    Styles added, removed, reweighted or edited change only the faces that draw another style or
    wore an edited one (``dataset.draw_style``), which ``forget_restyled`` sends to be made again;
    every other difference raises SettingsChanged. The settings are stamped by ``save_settings``.
    """
    path = out / SETTINGS_STAMP
    if not path.exists():
        return None
    current = _as_json(asdict(settings))
    try:
        # Settings added since that folder was made had their default values then; a folder
        # made before the recipe was recorded was made by the first.
        previous = {**_as_json(asdict(Settings())), "recipe": 1,
                    # ... and one made before the styles' fingerprints were recorded is taken
                    # to have used the styles as they are (their names are still compared).
                    "style_fingerprints": current["style_fingerprints"], **json.loads(path.read_text())}
    except (ValueError, TypeError):
        raise SettingsChanged(f"{out}: was generated with other settings ({path} is unreadable); "
                              f"{_WHAT_TO_DO}") from None
    differing = [key for key, value in current.items() if previous.get(key) != value]
    if not differing:
        return None
    if set(differing) <= STYLE_SETTINGS and (change := _style_change(previous, current)) is not None:
        return change
    what = "; ".join(_change(key, previous.get(key), current[key]) for key in differing)
    raise SettingsChanged(f"{out}: was generated with other settings ({what}); {_WHAT_TO_DO}")


def _style_change(previous: dict, current: dict) -> StyleChange | None:
    """How the styles of two stamps differ, by name; None when the earlier stamp's style lists are
    not what a run writes (edited by hand)."""
    fingerprints, weights = _pairs(previous["style_fingerprints"]), _pairs(previous["style_weights"])
    if not isinstance(previous["styles"], list) or fingerprints is None or weights is None:
        return None
    now_fingerprints, now_weights = _pairs(current["style_fingerprints"]), _pairs(current["style_weights"])
    old, new = set(map(str, previous["styles"])), set(current["styles"])
    edited = frozenset(name for name in old & new if fingerprints.get(name) != now_fingerprints[name])
    words = ([f"{name} added" for name in sorted(new - old)] + [f"{name} removed" for name in sorted(old - new)]
             + [f"{name} edited" for name in sorted(edited)]
             + [f"{name} weight {weights.get(name, 1)} -> {now_weights.get(name, 1)}" for name in sorted(old & new)
                if weights.get(name, 1) != now_weights.get(name, 1)])
    return StyleChange(", ".join(words), edited)


def _pairs(items: object) -> dict | None:
    """A stamp's ``[name, value]`` list as a dict; None for anything else (a stamp edited by hand)."""
    if isinstance(items, list) and all(isinstance(item, list) and len(item) == 2 for item in items):
        return {str(name): value for name, value in items}
    return None


def save_settings(out: Path, settings: Settings) -> None:
    """Stamp ``out`` with the settings it is made with (``check_settings`` compares the next run's)."""
    write_atomic(out / SETTINGS_STAMP, (json.dumps(_as_json(asdict(settings)), indent=2) + "\n").encode())


def forget_restyled(out: Path, parts: dict[str, tuple[Finished, list[int] | None]], seed: int,
                    styles: Iterable[MaskStyle], edited: Collection[str]) -> list[str]:
    """Delete what earlier runs made for inputs with a face that now draws another style than it
    wore (``dataset.draw_style`` over ``styles``) or wore one of the ``edited`` styles; return
    those inputs. Their records are dropped from ``parts`` (``read_parts``), so they are made again.
    """
    styles = list(styles)
    restyled = []
    for stem, (done, _) in sorted(parts.items()):
        if any(worn in edited or draw_style(seed, done.source, face, styles).name != worn
               for face, worn in done.styles):
            _forget(out, stem, done)
            del parts[stem]
            restyled.append(done.source)
    return sorted(restyled)


def _change(key: str, before: object, after: object) -> str:
    """One setting's change in words; of a list (styles, or [name, value] pairs), only the items
    added, removed or changed, by name."""
    if not (isinstance(before, list) and isinstance(after, list)):
        return f"{key} was {before!r}, now {after!r}"

    def by_name(items: list) -> dict:
        return {str(item[0] if isinstance(item, list) else item): item for item in items}

    old, new = by_name(before), by_name(after)
    words = ([f"{name} added" for name in new if name not in old]
             + [f"{name} removed" for name in old if name not in new]
             + [f"{name} changed" for name in new if name in old and new[name] != old[name]])
    return f"{key}: {', '.join(words)}"


def _as_json(value: object) -> object:
    """``value`` as it reads back from JSON (tuples become lists), for comparing with a saved copy."""
    return json.loads(json.dumps(value))


def prepare_output(out: Path) -> None:
    """Create the output folders, prove they are writable, and clear temporary files of an interrupted run."""
    folders = (*LABELS, PARTS, IMAGE_PARTS)
    try:
        for sub in folders:
            (out / sub).mkdir(parents=True, exist_ok=True)
        write_atomic(out / PARTS / ".write-test", b"ok")
        (out / PARTS / ".write-test").unlink()
    except OSError as error:
        raise DatasetError(f"{out}: output folder is not writable ({error.strerror})") from None
    for sub in folders:
        for leftover in (out / sub).glob(".*.part*"):  # ``images.staged`` names
            leftover.unlink(missing_ok=True)


@dataclass(frozen=True)
class Finished:
    """What a run keeps in memory of one finished input: its files and counts, not its records.

    The records (landmarks and all, some 12-24 KB a face) stay in the input's file in ``.parts/``,
    which ``write_manifest`` reads back, so a run over 200,000 photos does not hold gigabytes.
    """

    source: str
    stem: str
    paths: tuple[str, ...]
    skipped: str | None
    counts: tuple[tuple[str, int], ...]  # ``record_counts`` of its records, as sorted items
    signature: str | None = None  # ``copies.signature`` of the picture (None: unreadable, or an older run's)
    face_signatures: tuple[str, ...] = ()  # ``copies.face_signature`` of each face found
    styles: tuple[tuple[int, str], ...] = ()  # (face index, style) of each masked face

    @classmethod
    def of(cls, source: str, stem: str, records: list[dict], skipped: str | None,
           signature: str | None = None, face_signatures: tuple[str, ...] = ()) -> "Finished":
        """What to keep of an input whose manifest records (or reason for being skipped) are given."""
        worn = tuple((face["face"], face["style"]) for record in records if record.get("label") == "with_mask"
                     for face in record.get("faces", [record]))  # a full image lists its faces; a crop is one
        return cls(source, stem, tuple(record["path"] for record in records), skipped,
                   tuple(sorted(record_counts(records).items())), signature, tuple(face_signatures), worn)

    @property
    def faces(self) -> int:
        """How many masked faces it gave."""
        return dict(self.counts).get("faces", 0)


def read_parts(out: Path) -> dict[str, tuple[Finished, list[int] | None]]:
    """What earlier runs left for their inputs, by output stem: each input's ``Finished`` and the
    ``input_stamp`` it was made from. Files that are not such records are left out."""
    parts = {}
    for path in (out / IMAGE_PARTS).glob("*.json"):
        try:
            data = json.loads(path.read_text())
            if isinstance(data["source"], str) and all(isinstance(record["path"], str) for record in data["records"]):
                signature, face_signatures = data.get("signature"), data.get("face_signatures")
                if not isinstance(face_signatures, list) or not all(isinstance(v, str) for v in face_signatures):
                    face_signatures = []  # an older run's part
                parts[path.stem] = (Finished.of(data["source"], path.stem, data["records"], data["skipped"],
                                                signature if isinstance(signature, str) else None,
                                                tuple(face_signatures)),
                                    data.get("stamp"))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return parts


def load_finished(out: Path, stems: dict[str, str], parts: dict[str, tuple[Finished, list[int] | None]]
                  ) -> dict[str, Finished]:
    """The inputs an earlier run finished (``read_parts``) whose output files are all still there,
    less those it skipped for a cause outside the picture (``tried_again``)."""
    finished = {}
    for source, stem in stems.items():
        done, _ = parts.get(stem, (None, None))
        if (done is not None and done.source == source and not tried_again(done.skipped)
                and all((out / path).is_file() for path in done.paths)):
            finished[source] = done
    return finished


def remove_stale(out: Path, raw: Path, stems: dict[str, str], stamps: dict[str, list[int] | None],
                 listing_problems: list[dict], parts: dict[str, tuple[Finished, list[int] | None]]
                 ) -> tuple[list[str], list[str]]:
    """Delete what earlier runs wrote for inputs no longer in ``raw``, or changed since; return both lists.

    ``stems`` maps every input now in ``raw`` to its output stem (``output_stems``) and ``stamps``
    to its ``input_stamp``; ``parts`` are the earlier runs' records (``read_parts``), and the
    deleted ones are dropped from it. Only files that an earlier run recorded as its own are
    deleted: those of inputs that are gone (first list), of inputs whose file has changed (a
    photo replaced, a broken file mended: second list), and of an input that is still there but
    now gets another stem (a same-named file was added beside it; it is made again under the
    new name, and listed in neither). An input under a directory that could not be read
    (``listing_problems``) may still be there: its files stay.
    """
    unreadable = [Path(problem["path"]) for problem in listing_problems]
    removed, changed = [], []
    for stem, (done, stamp) in sorted(parts.items()):
        source = done.source
        same_file = stamp == stamps.get(source)
        if stems.get(source) == stem and same_file:
            continue
        if source not in stems and any(folder in (raw / source).parents for folder in unreadable):
            continue
        _forget(out, stem, done)
        del parts[stem]
        if source not in stems:
            removed.append(source)
        elif not same_file:
            changed.append(source)
    return sorted(removed), sorted(changed)


def _forget(out: Path, stem: str, done: Finished) -> None:
    """Delete the output files an input's record lists as its own, then the record."""
    for name in done.paths:
        path = PurePosixPath(name)
        if path.parts[0] in LABELS and ".." not in path.parts:
            (out / path).unlink(missing_ok=True)
    (out / IMAGE_PARTS / f"{stem}.json").unlink(missing_ok=True)


def clear_earlier_run(out: Path) -> int:
    """Delete what earlier runs made in ``out``; return for how many inputs.

    Each input's files as its record lists them go, then the record, then the manifest and the
    report, and the settings stamp last: a run stopped half-way through this is still refused as
    one with other settings, and clearing again finishes the job. Files no run recorded stay.
    """
    parts = read_parts(out)
    for stem, (done, _) in sorted(parts.items()):
        _forget(out, stem, done)
    for name in (MANIFEST, "report.json", SETTINGS_STAMP):
        (out / name).unlink(missing_ok=True)
    return len(parts)


def _faces_in(records: list[dict]) -> int:
    """How many masked faces manifest records describe (one per crop pair, or listed per full image)."""
    return sum(len(record.get("faces", [record])) for record in records if record.get("label") == "with_mask")


def record_counts(records: list[dict]) -> Counter:
    """What the report counts in one input's records: faces, files per label, and per masked face its
    style and detector (keys such as ``"label:with_mask"``, ``"style:cloth_black"``)."""
    counts = Counter({"faces": _faces_in(records)})
    for record in records:
        counts[f"label:{record.get('label')}"] += 1
        if record.get("label") == "with_mask":
            for face in record.get("faces", [record]):  # a full image lists its faces; a crop is one
                for key in ("style", "detector"):
                    if face.get(key):
                        counts[f"{key}:{face[key]}"] += 1
    return counts


def splits(finished: list[Finished], by: str = "photo") -> tuple[dict[str, str], int]:
    """The split of every finished input, and how many inputs are copies of another.

    An input's split is ``split_of`` its name, or, for copies of one picture, of the smallest
    name among them (``copies.copy_groups``), so no copy sits in a split apart from the others.
    Copies are found by the whole picture and by each face (a copy turned, cropped or zoomed).
    ``by="folder"``: the photos in one folder share a split too (a folder per person, as LFW is
    laid out, so no person is in two splits); copies still join their splits across folders.
    """
    require_split_by(by)
    groups = _groups(finished, owner=lambda source: source)
    sizes = Counter(groups.values())
    copies = sum(1 for group in groups.values() if sizes[group] > 1)
    if by == "folder":
        groups = _groups(finished, owner=_folder)
    split = {done.source: split_of(groups.get(done.source, done.source)) for done in finished}
    return split, copies


def require_split_by(by: str) -> None:
    """ValueError unless ``by`` is one of SPLIT_BY."""
    if by not in SPLIT_BY:
        raise ValueError(f"unknown split grouping {by!r}; choose from {', '.join(SPLIT_BY)}")


def _groups(finished: list[Finished], owner: Callable[[str], str]) -> dict[str, str]:
    """Each readable input's group: ``copy_groups`` of the faces, each face tied to its photo's
    ``owner`` (the photo itself, or its folder), then of the photos, each tied to its faces' group."""
    faces = {f"{done.source}#{index}": (value, owner(done.source)) for done in finished
             for index, value in enumerate(done.face_signatures)}
    face_groups = copy_groups({key: value for key, (value, _) in faces.items()}, MAX_FACE_DISTANCE,
                              linked={key: tie for key, (_, tie) in faces.items()})
    return copy_groups({done.source: done.signature for done in finished if done.signature},
                       linked={done.source: face_groups[f"{done.source}#0"] for done in finished
                               if done.signature and done.face_signatures})


def _folder(source: str) -> str:
    """The folder of a source path (``a/b.jpg`` -> ``a/``); a photo at the top is its own."""
    folder = source.rpartition("/")[0]
    return f"{folder}/" if folder else source


def summarise(finished: list[Finished], listing_problems: list[dict], style_problems: list[str],
              seconds: float, resumed: int, removed: list[str], changed: list[str], restyled: list[str],
              split: dict[str, str], copies: int, split_by: str = "photo") -> dict:
    """The run's report: counts, skipped inputs with reasons, masked files per split (``split``: each
    input's, from ``splits``, grouped ``split_by``), inputs that are copies of another, detectors and
    styles used, stale outputs removed, inputs made again because their files or the styles changed."""
    counts = Counter()
    for done in finished:
        counts.update(dict(done.counts))
        masked = sum(1 for path in done.paths if path.startswith("with_mask/"))
        if masked:
            counts[f"split:{split[done.source]}"] += masked

    def named(kind: str) -> dict[str, int]:
        return {key.split(":", 1)[1]: count for key, count in sorted(counts.items()) if key.startswith(f"{kind}:")}

    skipped = listing_problems + [{"path": done.source, "reason": done.skipped} for done in finished if done.skipped]
    return {
        "inputs": len(finished) + len(listing_problems),
        "faces": counts["faces"],
        "with_mask": counts["label:with_mask"],
        "without_mask": counts["label:without_mask"],
        "skipped": sorted(skipped, key=lambda item: item["path"]),
        "skip_reasons": dict(Counter(item["reason"] for item in skipped).most_common()),
        "splits": named("split"),
        "split_by": split_by,
        "copies": copies,
        "styles": named("style"),
        "detectors": named("detector"),
        "style_problems": style_problems,
        "resumed": resumed,
        "removed": removed,
        "changed": changed,
        "restyled": restyled,
        "seconds": round(seconds, 2),
    }


def write_manifest(out: Path, finished: list[Finished], split: dict[str, str]) -> None:
    """Write manifest.jsonl, one record per output file sorted by its path, atomically; each record
    gets its input's ``split`` (from ``splits``).

    The records are read back from each input's file in ``.parts/`` as they are written (each
    file about twice: once among the with_mask paths, once among the without_mask ones).
    """
    order = sorted((path, done.stem) for done in finished for path in done.paths)

    def lines() -> Iterator[bytes]:
        stem, records = None, {}
        for path, owner in order:
            if owner != stem:
                stem = owner
                data = json.loads((out / IMAGE_PARTS / f"{stem}.json").read_text())
                records = {record["path"]: record for record in data["records"]}
            record = records[path]
            yield (json.dumps({**record, "split": split[record["source"]]}) + "\n").encode()

    write_atomic(out / MANIFEST, lines())

"""The generation run: inputs to worker processes to a manifest and report, with a progress bar."""
from __future__ import annotations

import collections
import json
import multiprocessing
import os
import queue
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterator

from tqdm import tqdm

from augment import dataset, faces, outputs
from augment.dataset import MAX_SEED, DatasetError, ImageResult, Settings
from augment.images import IMAGE_SUFFIXES, held, write_atomic
from augment.interrupts import ctrl_c_noted, wait_in_steps
from augment.processes import package_on_search_path, pickled, quiet_worker, start_server, unpickled, worker_context
from augment.styles import MaskStyle, StyleError, fingerprint, load_styles

# Set in each worker by _start_worker, so styles are sent once per process, not per image.
_WORKER: dict = {}
# What the workers' server imports once for all of them.
WORKER_MODULES = ("augment.dataset",)
# Tasks handed to the pool ahead of the results, per worker: enough that no worker waits.
TASKS_AHEAD = 4
# A worker's death is blamed on an image only when it dies making that image alone; past this many
# such images in one run the cause lies elsewhere (too little memory for any photo, say).
MAX_WORKER_DEATHS = 3


def _start_worker(raw: Path, out: Path, settings: Settings, styles: dict[str, MaskStyle]) -> None:
    _WORKER.update(raw=raw, out=out, settings=settings, styles=styles)
    if multiprocessing.parent_process() is not None:
        quiet_worker()
        faces.load_models()
        if settings.detector == faces.SCENE_DETECTOR:
            # One thread each, as for OpenCV: the workers already keep every core busy.
            os.environ.update(TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1")
            _load_scene_detector(settings)


def _start_pool_worker(state_file: Path) -> None:
    """A pool worker's start: ``_start_worker`` with the state ``_parallel`` left in ``state_file``."""
    _start_worker(*unpickled(state_file))


def _load_scene_detector(settings: Settings) -> None:
    """Load the mask-aware detector the settings name, once per process; DatasetError if it cannot be."""
    from detect.network import load_detector
    from train.model import ModelError

    try:
        load_detector(Path(settings.detector_model))
    except ModelError as error:
        raise DatasetError(str(error)) from None


def _work(task: tuple[str, str]) -> ImageResult:
    source, stem = task
    return dataset.process_image(_WORKER["raw"], _WORKER["out"], source, stem, _WORKER["settings"], _WORKER["styles"])


def _parallel(tasks: list[tuple[str, str]], workers: int, state: tuple, warn: Callable[[str], object],
              work: Callable[[tuple[str, str]], ImageResult] = _work) -> Iterator[ImageResult]:
    """Results of ``work`` (``_work``) over ``tasks`` from a pool of worker processes, in completion order.

    Workers start as ``augment.processes`` starts them (from a server process, OpenCV on one
    thread, Ctrl-C ignored); the server imports the heavy modules once, so each worker only loads
    the face models (in parallel), and reads ``state`` (the styles) from a file rather than through
    its pipe (``processes.pickled``). While the results are awaited Ctrl-C stops the pool, raising
    KeyboardInterrupt between two results (``interrupts.wait_in_steps``) once the images being
    made are finished: what is made is whole.

    A worker that dies (killed for memory, or a crash in a native library) takes the pool with
    it, and any of the images the pool had in hand may be the cause. Those are made again one at
    a time, each by a worker of its own: one that dies again is the cause, and comes back skipped
    (``outputs.WORKER_DIED``); the rest go on in a new pool. Past MAX_WORKER_DEATHS such images the
    cause is not the images, and the run stops with DatasetError, finished work kept.

    A process pool from ``concurrent.futures``, not ``multiprocessing.Pool``: the latter's
    worker-minding thread wakes at every result waiting to be read and looped 8,528 times in
    one run over data/raw's 514 photos, 0.56 s of a core taken from the workers.
    """
    raw, out = state[:2]
    waiting = collections.deque(tasks)
    deaths = 0
    with ctrl_c_noted() as interrupted, pickled(state, out / dataset.PARTS) as state_file:
        while waiting:
            suspects = collections.deque((yield from _pool_results(waiting, workers, state_file, work, interrupted)))
            if suspects:
                warn(f"warning: a worker process died; making the {len(suspects)} image"
                     f"{'s' if len(suspects) != 1 else ''} it and the others had in hand again, one at a time")
            while suspects:
                for source, stem in (yield from _pool_results(suspects, 1, state_file, work, interrupted, ahead=1)):
                    deaths += 1
                    if deaths > MAX_WORKER_DEATHS:
                        raise DatasetError(f"worker processes died on {deaths} images, so the cause is not the "
                                           "images (too little memory?); finished work is kept: run the same "
                                           "command again, with fewer --workers")
                    skipped = ImageResult(source, [], outputs.WORKER_DIED)
                    dataset.keep_result(out, stem, dataset.input_stamp(raw / source), skipped)  # as any skip is kept
                    yield skipped


def _pool_results(waiting: collections.deque, workers: int, state_file: Path,
                  work: Callable[[tuple[str, str]], ImageResult], interrupted: Callable[[], bool],
                  ahead: int = TASKS_AHEAD) -> Iterator[ImageResult]:
    """Results of ``work`` over the tasks taken from ``waiting`` by one pool, while it lasts.

    Returns (as a generator's value) the tasks it had in hand when a worker died, or [] when
    ``waiting`` was emptied. ``ahead``: tasks handed out per worker before their results.
    """
    finished: queue.SimpleQueue = queue.SimpleQueue()
    in_hand: dict[Future, tuple[str, str]] = {}
    suspects: list[tuple[str, str]] = []
    pool = ProcessPoolExecutor(workers, mp_context=worker_context(WORKER_MODULES),
                               initializer=_start_pool_worker, initargs=(state_file,))

    def hand_out_one() -> None:
        if waiting and not suspects:
            task = waiting.popleft()
            try:
                future = pool.submit(work, task)
            except BrokenProcessPool:  # a worker died since the last result came in
                waiting.appendleft(task)
                return
            in_hand[future] = task
            future.add_done_callback(finished.put)

    try:
        # A few tasks ahead per worker, not all: a task handed out holds a future and its
        # bookkeeping, 2.2 KB (measured), which for a folder of 200,000 photos is 435 MB.
        with package_on_search_path():  # the workers (and their server) start with the first tasks
            for _ in range(ahead * workers):
                hand_out_one()
        while in_hand:
            future = wait_in_steps(lambda timeout: finished.get(timeout=timeout), interrupted, queue.Empty)
            task = in_hand.pop(future)
            try:
                result = future.result()
            except BrokenProcessPool:
                suspects.append(task)
                continue
            hand_out_one()
            yield result
    finally:  # after an error or Ctrl-C, the images not yet begun are dropped
        pool.shutdown(wait=True, cancel_futures=True)
    return suspects


def resolve_styles(style_sources: list[Path]) -> tuple[dict[str, MaskStyle], list[str]]:
    """Load styles; fail when none is usable, otherwise return them and one message per bad file."""
    try:
        styles, problems = load_styles(style_sources)
    except StyleError as error:
        raise DatasetError(str(error)) from None
    if not styles:
        where = ", ".join(str(d) for d in style_sources)
        detail = "; ".join(problems) if problems else "no PNG files"
        raise DatasetError(f"no usable mask style in {where}: {detail}")
    return {style.name: style for style in styles}, problems


def _refuse_before_any_work(raw: Path, seed: int, split_by: str) -> None:
    """DatasetError for a run that cannot go well, before anything is read or made: a bad
    ``split_by`` or seed, an input that is not a folder, or one the generator made itself."""
    try:
        outputs.require_split_by(split_by)
    except ValueError as error:
        raise DatasetError(str(error)) from None
    if not 0 <= seed <= MAX_SEED:  # otherwise every face would fail in the workers
        raise DatasetError(f"seed {seed} is not a whole number from 0 to {MAX_SEED}")
    if not raw.is_dir():
        raise DatasetError(f"{raw}: " + ("the input must be a folder of photos, not a file" if raw.exists()
                                         else "input folder does not exist"))
    if (raw / dataset.MANIFEST).is_file():  # its masked faces would be masked again, and taken for unmasked ones
        if (raw / "with_mask").is_dir():
            raise DatasetError(f"{raw}: a generated dataset, not photos of unmasked faces; give the photos it was "
                               f"made from (or {raw / 'without_mask'}, to make more from its unmasked crops)")
        if (raw / "annotations.json").is_file():
            raise DatasetError(f"{raw}: generated scenes, not photos of unmasked faces; give the photos they were "
                               "made from")


def _work_left(raw: Path, out: Path, settings: Settings, styles: dict[str, MaskStyle], sources: list[str],
               stems: dict[str, str], listing_problems: list[dict], restart: bool, warn: Callable[[str], object]
               ) -> tuple[dict[str, outputs.Finished], list[tuple[str, str]], dict[str, list[str]]]:
    """Bring ``out`` up to date for this run and say what is left to make.

    Clears it first with ``restart``; deletes what was made from inputs since gone or changed, and
    from faces whose style changed; records the settings. Returns the inputs finished earlier
    (source: Finished), the tasks left ((source, stem), largest files first) and what was undone
    (``removed``, ``changed``, ``restyled``: the report's lists).
    """
    outputs.prepare_output(out)
    if restart and (cleared := outputs.clear_earlier_run(out)):
        warn(f"{out}: deleted what an earlier run made from {cleared} input{'s' if cleared != 1 else ''}")
    style_change = outputs.check_settings(out, settings)
    parts = outputs.read_parts(out)
    stamps = {source: dataset.input_stamp(raw / source) for source in stems}
    restyled = []
    with dataset.writing(out):
        removed, changed = outputs.remove_stale(out, raw, stems, stamps, listing_problems, parts)
        if style_change is not None:
            restyled = outputs.forget_restyled(out, parts, settings.seed, styles.values(), style_change.edited)
        outputs.save_settings(out, settings)  # after what is out of date is gone: a run stopped before redoes it
    if style_change is not None:
        warn(f"{out}: mask styles changed since the earlier run ({style_change.what}): making again the "
             f"{len(restyled)} image{'s' if len(restyled) != 1 else ''} with a face that now draws another "
             "style or wore an edited one")
    finished = outputs.load_finished(out, {source: stems[source] for source in sources}, parts)
    tasks = [(source, stems[source]) for source in sources if source not in finished]
    # Largest files first: big photos are the slow ones, and one left for the end keeps the other
    # workers idle (on data/raw the last 14 results took 1.0-1.3 s in name order, 0.45 s in this one).
    tasks.sort(key=lambda task: -(stamps[task[0]] or [0])[0])
    return finished, tasks, {"removed": removed, "changed": changed, "restyled": restyled}


def generate(raw: Path, out: Path, style_sources: list[Path], settings: Settings = Settings(),
             workers: int | None = None, limit: int | None = None, warn: Callable[[str], object] = tqdm.write,
             progress: bool = True, split_by: str = "photo", restart: bool = False) -> dict:
    """Generate the dataset from ``raw`` into ``out``; returns the report (also written as report.json).

    A run into a folder made before resumes it: finished inputs are kept; what was made from
    inputs that have since left ``raw`` is deleted (listed in the report as ``removed``), and
    inputs whose files have changed are made again (``changed``). After styles were added,
    removed, reweighted or edited, the inputs with a face that now draws another style or wore an
    edited one are made again (``restyled``): the folder ends as a fresh run would make it.

    ``style_sources``: folders of mask styles and single style pictures (``styles.load_styles``).
    ``warn`` receives one line per skipped input or style (by default printed above the progress bar).
    ``split_by``: "photo" (each photo and its copies draw a split) or "folder" (a folder's photos
    share one: a folder per person keeps each person in one split); see ``outputs.splits``. The
    splits are drawn over every input at the end of each run, so a resumed run may group them
    otherwise than the earlier run did. ``restart``: first delete what earlier runs made in ``out``
    (``outputs.clear_earlier_run``), so a folder made with other settings is made again.

    Raises DatasetError for problems that stop the run before any work: no input images,
    an unwritable output folder, no usable style, a seed outside [0, MAX_SEED], an output
    folder made with other settings than its styles (``SettingsChanged``, unless ``restart``),
    or a mask-aware detector (``settings.detector_model``) that cannot be loaded; and for an
    output that cannot be written during the run (a full disk), with finished work kept.
    Raises ``images.FolderBusy`` while another run is writing into ``out``.
    """
    started = time.perf_counter()
    raw, out = Path(raw), Path(out)
    _refuse_before_any_work(raw, settings.seed, split_by)
    if (workers or os.cpu_count() or 1) > 1:
        start_server(WORKER_MODULES)  # while the styles load and earlier work is checked
    styles, style_problems = resolve_styles(style_sources)
    for problem in style_problems:
        warn(f"warning: skipping style {problem}")
    settings = replace(settings, styles=tuple(sorted(styles)),
                       style_weights=tuple(sorted((name, s.weight) for name, s in styles.items() if s.weight != 1)),
                       style_fingerprints=tuple(sorted((name, fingerprint(s)) for name, s in styles.items())))
    sources, listing_problems = dataset.list_inputs(raw)
    stems = dataset.output_stems(sources)  # from every input, so that --limit names outputs as a full run does
    if limit is not None:
        sources = sources[:limit]
    if not sources:
        raise DatasetError(f"{raw}: no input images ({', '.join(IMAGE_SUFFIXES)}); put photos of faces there")
    if out.resolve() == raw.resolve() or raw.resolve() in out.resolve().parents:
        raise DatasetError(f"{out}: the output folder must not be inside the input folder {raw}")
    if settings.detector == faces.SCENE_DETECTOR:
        _load_scene_detector(settings)  # a missing or wrong model fails here, before any work
    with held(out):  # before anything is cleared there: one run at a time
        finished, tasks, undone = _work_left(raw, out, settings, styles, sources, stems, listing_problems,
                                             restart, warn)
        done = list(finished.values())
        workers = max(1, min(workers or os.cpu_count() or 1, len(tasks) or 1))
        bar = tqdm(total=len(sources), initial=len(finished), unit="img", desc="generate", disable=not progress,
                   dynamic_ncols=True)
        counts = {"faces": sum(d.faces for d in done), "skipped": sum(1 for d in done if d.skipped)}

        def collect(result: ImageResult) -> None:
            done.append(outputs.Finished.of(result.source, stems[result.source], result.records, result.skipped,
                                            result.signature, result.face_signatures))
            counts["faces"] += done[-1].faces
            if result.skipped:
                counts["skipped"] += 1
                warn(f"warning: skipped {raw / result.source}: {result.skipped}")
            bar.set_postfix(counts, refresh=False)
            bar.update()

        try:
            if workers == 1:
                _start_worker(raw, out, settings, styles)
                for task in tasks:
                    collect(_work(task))
            else:
                for result in _parallel(tasks, workers, (raw, out, settings, styles), warn):
                    collect(result)
        finally:  # an interrupted run leaves its bar closed where it stopped
            bar.close()
        for problem in listing_problems:
            warn(f"warning: skipped {problem['path']}: {problem['reason']}")

        split, copies = outputs.splits(done, split_by)
        report = outputs.summarise(done, listing_problems, style_problems, time.perf_counter() - started,
                                   resumed=len(finished), **undone, split=split, copies=copies, split_by=split_by)
        with dataset.writing(out):
            outputs.write_manifest(out, done, split)
            write_atomic(out / "report.json", (json.dumps(report, indent=2) + "\n").encode())
        return report

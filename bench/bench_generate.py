"""Generator benchmark on the shared development data: coverage, fit, throughput, memory, looks.

    python bench/bench_generate.py [--shared ../shared] [--out build/bench] [--workers 2] [--seeds 0,1,2]
                                   [--repeats 3]

In one invocation it
1. runs the throughput baseline (``shared/tools/naive_generator.py``, one process, one of our
   mask PNGs) and our generator on ``data/raw``, alternately ``--repeats`` times (the machine's
   speed drifts by 10-15 % between runs minutes apart), and prints images per second and the
   ratio of each pair and their median;
2. makes two harder copies of ``data/raw`` (rotated by +-25 degrees alternately; downscaled to
   100 px on the longest side) and generates from them too;
3. scores every output with ``shared/tools/fitcheck.py`` (nose and mouth covered, eyes clear),
   also per mask style, and tells for each failure whether the mask's own alpha passes fitcheck's
   rule at fitcheck's own landmarks (then the mask is there and fitcheck did not see it). The
   harder copies have a known answer (the full-size upright photo's landmarks, rotated or scaled
   as the copy was): against it the benchmark checks our landmarks, the reference landmarks
   fitcheck measured with, and fitcheck's own test on each mask's alpha;
4. with ``--seeds``, generates from ``data/raw`` again with each further seed (other styles and
   placements on the same faces) and scores each with fitcheck: how much one seed's figure says;
5. draws 48 random faces of ours beside the same 48 faces from ``data/anchor_generated`` with
   ``shared/tools/contact_sheet.py``.
Figures go to stdout and OUT/results.json; pictures to OUT/*.png.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from augment.blend import MaskParams, placed_mask  # noqa: E402
from augment.dataset import Settings  # noqa: E402
from augment.faces import find_faces  # noqa: E402
from augment.geometry import rotation_onto_canvas  # noqa: E402
from augment.generate import generate  # noqa: E402
from augment.images import load_rgb, resize_longest, save_rgb  # noqa: E402
from augment.styles import MaskStyle, load_styles  # noqa: E402

STYLES = PROJECT / "mask_images"
BASELINE_STYLE = STYLES / "surgical_blue.png"
SMALL_SIDE = 100  # the downscaled set's longest side


def rotated_copy(rgb: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate onto a canvas large enough for the whole picture (black corners, no mirrored faces)."""
    matrix, size = rotation_onto_canvas(rgb.shape, degrees)
    return cv2.warpAffine(rgb, matrix, size, flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))


def rotation_of(index: int) -> float:
    """The roll given to the index-th photo (sorted by name) of the rotated set."""
    return 25.0 if index % 2 == 0 else -25.0


def known_answers(raw: Path) -> dict[str, dict[str, np.ndarray]]:
    """Landmarks each harder copy of a one-face photo should get: its full-size upright ones, moved as the photo was.

    ``{"rotated25": {name: (68, 2)}, "small100": {...}}``, keyed by the copy's file name, in its pixels.
    """
    answers: dict[str, dict[str, np.ndarray]] = {"rotated25": {}, "small100": {}}
    for index, path in enumerate(sorted(raw.iterdir())):
        rgb = load_rgb(path)
        upright = find_faces(rgb)
        if len(upright) != 1:
            continue
        landmarks, name = upright[0].landmarks, path.stem + ".png"
        matrix, _ = rotation_onto_canvas(rgb.shape, rotation_of(index))
        answers["rotated25"][name] = landmarks @ matrix[:, :2].T + matrix[:, 2]
        small, _ = resize_longest(rgb, SMALL_SIDE)
        per_axis = np.array([small.shape[1] / rgb.shape[1], small.shape[0] / rgb.shape[0]])
        answers["small100"][name] = (landmarks + 0.5) * per_axis - 0.5  # pixel centres, as cv2.resize maps them
    return answers


def masked_records(generated: Path) -> dict[str, dict]:
    """The manifest records of a generated folder's masked crops, by file name."""
    return {Path(record["path"]).name: record
            for record in map(json.loads, (generated / "manifest.jsonl").read_text().splitlines())
            if record["label"] == "with_mask"}


def in_crop(points: np.ndarray, record: dict) -> np.ndarray:
    """Points in a source photo's pixels moved into the pixels of the crop a manifest record describes."""
    scale = (record["box"][2] - record["box"][0]) / (record["source_box"][2] - record["source_box"][0])
    return (points - record["crop"][:2]) * scale


def point_error(landmarks: np.ndarray, truth: np.ndarray) -> float:
    """Mean landmark distance as a share of the true eye distance."""
    eyes = np.linalg.norm(truth[36:42].mean(axis=0) - truth[42:48].mean(axis=0))
    return float(np.linalg.norm(np.asarray(landmarks) - truth, axis=1).mean() / eyes)


def landmark_accuracy(folder: Path, truth: dict[str, np.ndarray]) -> dict:
    """Our landmarks on each photo of a harder copy of the set against the known answer.

    Free of fitcheck's own landmark errors on rolled and tiny faces: the mean point error as a
    share of the eye distance, over photos with one face.
    """
    errors = []
    for name, expected in truth.items():
        found = find_faces(load_rgb(folder / name))
        if found:
            errors.append(min(point_error(face.landmarks, expected) for face in found))
    errors = np.array(errors)
    return {"faces": len(errors), "median": round(float(np.median(errors)), 4),
            "p95": round(float(np.percentile(errors, 95)), 4),
            "over_15_percent": int((errors > 0.15).sum()), "over_30_percent": int((errors > 0.3).sum())}


FITCHECK_CACHE = Path.home() / ".cache" / "fitcheck"


def fitcheck_references(cache: Path = FITCHECK_CACHE) -> dict[str, np.ndarray]:
    """The landmarks fitcheck placed on each original it measured (its largest face), from its cache.

    Keyed by the original's absolute path; only entries made from the file now at that path.
    """
    references = {}
    for path in cache.glob("ref_*.json"):
        for original, entry in json.loads(path.read_text()).items():
            try:
                stat = Path(original).stat()
            except OSError:
                continue
            if entry.get("faces") and entry.get("sig") == [stat.st_size, int(stat.st_mtime)]:
                references[original] = np.array(entry["faces"][0]["pts"])
    return references


def fit_where_reference_is_right(generated: Path, rows: Path, truth: dict[str, np.ndarray]) -> dict:
    """fitcheck's strict fit on a harder copy of the set, split by whether its reference landmarks are right.

    fitcheck judges a mask against landmarks it places itself, upright-first, which drift on
    strongly rolled and on tiny faces. The known answer tells which pairs it measured against
    the wrong eyes and mouth (reference off by more than 15 % of the eye distance).
    """
    references = fitcheck_references()
    records = masked_records(generated)
    right = {"pairs": 0, "fit_ok": 0}
    wrong = {"pairs": 0, "fit_ok": 0}
    with rows.open(newline="") as handle:
        for row in csv.DictReader(handle):
            record = records[row["masked"]]
            original = str((generated / "without_mask" / row["orig"]).resolve())
            if row["status"] != "ok" or record["source"] not in truth or original not in references:
                continue
            expected = in_crop(truth[record["source"]], record)
            tally = right if point_error(references[original], expected) <= 0.15 else wrong
            tally["pairs"] += 1
            tally["fit_ok"] += int(row["fit_ok"] == "1")
    return {"reference_right": right, "reference_off": wrong}


def mask_alpha(generated: Path, record: dict, styles: dict[str, MaskStyle]) -> np.ndarray:
    """The alpha (H, W) of the mask a manifest record describes, placed again from its style and parameters."""
    shape = load_rgb(generated / record["path"]).shape
    warped, (x0, y0, x1, y1) = placed_mask(shape, np.array(record["landmarks"]), styles[record["style"]],
                                           MaskParams(**record["params"]))
    alpha = np.zeros(shape[:2], np.float32)
    if warped.size:
        alpha[y0:y1, x0:x1] = warped[:, :, 3]
    return alpha


def strict_fit(alpha: np.ndarray, points: np.ndarray) -> tuple[bool, bool]:
    """fitcheck's strict rule on a mask's alpha: (nose tip, nostrils and mouth all covered, no eye point covered).

    A point is covered where the alpha is at least 0.5; ``points`` are 68 landmarks in the alpha's pixels.
    """
    columns = np.clip(np.round(points[:, 0]).astype(int), 0, alpha.shape[1] - 1)
    rows = np.clip(np.round(points[:, 1]).astype(int), 0, alpha.shape[0] - 1)
    covered = alpha[rows, columns] >= 0.5
    return bool(covered[30:36].all() and covered[48:68].all()), not covered[36:48].any()


def builtin_styles() -> dict[str, MaskStyle]:
    """The built-in mask styles by name."""
    return {style.name: style for style in load_styles([STYLES])[0]}


def mask_fit(generated: Path, truth: dict[str, np.ndarray] | None) -> dict:
    """fitcheck's strict test on each mask as placed, against a known answer.

    Nose tip and nostrils (landmarks 30-35) and mouth (48-67) must lie where the mask's alpha is
    at least 0.5, no eye point (36-47) may: the alpha comes from re-placing the recorded style and
    parameters, the points from ``truth`` (keyed by source name, in the source's pixels), so
    neither the mask's colour nor fitcheck's own landmarks enter. ``truth=None`` takes the
    landmarks the generator itself found, which checks the placement alone.
    """
    styles = builtin_styles()
    tally = {"pairs": 0, "fit_ok": 0, "nose_mouth_covered": 0, "eyes_clear": 0}
    for record in masked_records(generated).values():
        if truth is not None and record["source"] not in truth:
            continue
        expected = np.array(record["landmarks"]) if truth is None else in_crop(truth[record["source"]], record)
        nose_mouth, eyes_clear = strict_fit(mask_alpha(generated, record, styles), expected)
        tally["pairs"] += 1
        tally["nose_mouth_covered"] += nose_mouth
        tally["eyes_clear"] += eyes_clear
        tally["fit_ok"] += nose_mouth and eyes_clear
    return tally


def unseen_masks(generated: Path, rows: Path) -> dict:
    """fitcheck's strict failures, split by whether the mask's own alpha passes at fitcheck's own landmarks.

    Where it does, the mask lies where fitcheck wants it and fitcheck did not see it there: it
    finds a mask by the pixels it changes by more than 25/255, which a mask as light as an
    overexposed nose, or as dark as a beard in shadow, does not. Where it does not, the mask and
    fitcheck's landmarks disagree.
    """
    styles, references, records = builtin_styles(), fitcheck_references(), masked_records(generated)
    tally = {"failures": 0, "alpha_fits_its_landmarks": 0, "alpha_misses_its_landmarks": 0}
    with rows.open(newline="") as handle:
        for row in csv.DictReader(handle):
            original = str((generated / "without_mask" / row["orig"]).resolve())
            if row["status"] != "ok" or row["fit_ok"] == "1" or original not in references:
                continue
            nose_mouth, eyes_clear = strict_fit(mask_alpha(generated, records[row["masked"]], styles),
                                                references[original])
            tally["failures"] += 1
            tally["alpha_fits_its_landmarks" if nose_mouth and eyes_clear else "alpha_misses_its_landmarks"] += 1
    return tally


def make_variants(raw: Path, out: Path) -> dict[str, Path]:
    """The rotated and the downscaled copies of the raw set (made once, reused)."""
    folders = {"rotated25": out / "raw_rotated25", "small100": out / "raw_small100"}
    if all(folder.is_dir() and any(folder.iterdir()) for folder in folders.values()):
        return folders
    for folder in folders.values():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    for index, path in enumerate(sorted(raw.iterdir())):
        rgb = load_rgb(path)
        name = path.stem + ".png"
        save_rgb(folders["rotated25"] / name, rotated_copy(rgb, rotation_of(index)))
        save_rgb(folders["small100"] / name, resize_longest(rgb, SMALL_SIDE)[0])
    return folders


def fitcheck(shared: Path, originals: Path, masked: Path, rows: Path | None = None) -> dict:
    """shared/tools/fitcheck.py's JSON summary; with ``rows``, its per-pair CSV is written there too."""
    extra = ["--csv", str(rows)] if rows else []
    result = subprocess.run([sys.executable, str(shared / "tools" / "fitcheck.py"), str(originals), str(masked),
                             "--json", *extra], capture_output=True, text=True, check=True)
    line = next(line for line in result.stdout.splitlines() if line.startswith("JSON "))
    return json.loads(line[len("JSON "):])


def fit_by_style(generated: Path, rows: Path) -> dict[str, dict]:
    """Pairs fitcheck could evaluate and those that fit (strict), per mask style, worst share first.

    Shows whether failures follow the mask's placement or its colour: fitcheck finds the mask by
    its difference from the face, which a mask coloured like the skin under it partly escapes.
    """
    records = masked_records(generated)
    counts: dict[str, dict] = {}
    with rows.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["status"] != "ok":
                continue
            tally = counts.setdefault(records[row["masked"]]["style"], {"pairs": 0, "fit_ok": 0})
            tally["pairs"] += 1
            tally["fit_ok"] += int(row["fit_ok"] == "1")
    return dict(sorted(counts.items(), key=lambda item: item[1]["fit_ok"] / item[1]["pairs"]))


def run_baseline(shared: Path, raw: Path, out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    result = subprocess.run([sys.executable, str(shared / "tools" / "naive_generator.py"), str(raw), str(out),
                             str(BASELINE_STYLE)], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_ours(raw: Path, out: Path, workers: int, seed: int = 0) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    report = generate(raw, out, [STYLES], Settings(seed=seed), workers=workers, warn=lambda message: None,
                      progress=False)
    seconds = time.perf_counter() - started
    report["wall_seconds"] = seconds
    report["images_per_second"] = report["inputs"] / seconds
    masked_sources = {r["source"] for r in map(json.loads, (out / "manifest.jsonl").read_text().splitlines())}
    report["images_masked"] = len(masked_sources)
    return report


def throughput(shared: Path, raw: Path, out: Path, workers: int | None, seed: int, repeats: int
               ) -> tuple[dict, dict, dict]:
    """The baseline and our generator on ``raw``, alternately ``repeats`` times; returns the figures
    (each pair's and the medians) and the last run of each.

    The baseline's clock starts after its models are loaded; ours runs from the call, which
    includes starting the workers and loading their models. That start-up is timed alone before
    each of our runs, on a folder of one photo per worker (so that the pool starts, as it does for
    the full folder), to compare like with like as well as end to end. The pool's server process,
    started by the first of these, stays up for the later runs, as in any program that generates
    more than once; a command-line run starts its own (0.3-1 s more, docs/benchmarks.md).
    """
    few = out / "raw_few"
    shutil.rmtree(few, ignore_errors=True)
    few.mkdir(parents=True)
    for photo in sorted(raw.iterdir())[:workers or os.cpu_count() or 1]:
        shutil.copy(photo, few)
    runs = []
    for _ in range(repeats):
        baseline = run_baseline(shared, raw, out / "naive")
        startup = run_ours(few, out / "ours_few", workers, seed)["wall_seconds"]
        ours = run_ours(raw, out / "ours", workers, seed)
        steady = ours["inputs"] / (ours["wall_seconds"] - startup)
        runs.append({"baseline_images_per_second": baseline["images_per_second"],
                     "ours_images_per_second": round(ours["images_per_second"], 2),
                     "ratio": round(ours["images_per_second"] / baseline["images_per_second"], 2),
                     "ours_startup_seconds": round(startup, 2),
                     "ours_images_per_second_after_startup": round(steady, 2),
                     "ratio_after_startup": round(steady / baseline["images_per_second"], 2)})
    figures = {key: float(np.median([run[key] for run in runs])) for key in runs[0]}
    return {**figures, "runs": runs}, baseline, ours


def side_by_side_sheets(shared: Path, ours: Path, anchor: Path, out: Path, count: int = 48) -> list[Path]:
    """The same faces from both generators: numbered sources present in both, drawn with one seed."""
    ours_names = {p.stem.rsplit("_", 1)[0]: p for p in (ours / "with_mask").glob("*_0.jpg")}
    anchor_names = {p.name.split("-with-mask")[0]: p for p in anchor.glob("*-with-mask.*")}
    common = sorted(set(ours_names) & set(anchor_names), key=lambda s: (len(s), s))
    chosen = random.Random(0).sample(common, min(count, len(common)))
    sheets = []
    for label, names in (("ours", ours_names), ("anchor", anchor_names)):
        folder = out / f"sheet_{label}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for stem in chosen:
            shutil.copy(names[stem], folder / f"{stem}{names[stem].suffix}")
        sheet = out / f"faces_{label}.png"
        subprocess.run([sys.executable, str(shared / "tools" / "contact_sheet.py"), str(sheet), str(folder),
                        "--n", str(len(chosen)), "--cols", "8", "--cell", "160", "--seed", "0",
                        "--title", f"{label}: {len(chosen)} faces"], check=True, capture_output=True)
        sheets.append(sheet)
    return sheets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=PROJECT.parent / "shared")
    parser.add_argument("--out", type=Path, default=PROJECT / "build" / "bench")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--seeds", default="0",
                        help="seeds for the unrotated set's fit, comma-separated; the first is used everywhere else")
    parser.add_argument("--repeats", type=int, default=3, help="baseline and ours, alternately, this many times")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    seeds = [int(seed) for seed in args.seeds.split(",")]
    data = args.shared / "data"
    raw = data / "raw"
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict = {}

    speed, baseline, ours = throughput(args.shared, raw, args.out, args.workers, seeds[0], args.repeats)
    peak_child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    peak_self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results["throughput"] = {
        **speed,
        "workers": args.workers or "one per core",
        "peak_rss_mb_main": round(peak_self_mb, 1),
        "peak_rss_mb_largest_worker_or_tool": round(peak_child_mb, 1),
    }
    results["raw"] = {
        "images": ours["inputs"], "images_masked": ours["images_masked"], "faces": ours["faces"],
        "masked_share": round(ours["images_masked"] / ours["inputs"], 4), "detectors": ours["detectors"],
        "fitcheck": fitcheck(args.shared, args.out / "ours" / "without_mask", args.out / "ours" / "with_mask",
                             args.out / "fit_raw.csv"),
        "baseline_masked_share": round(baseline["written"] / baseline["inputs"], 4),
        "baseline_fitcheck": fitcheck(args.shared, raw, args.out / "naive"),
    }
    for name, folder in make_variants(raw, args.out).items():
        variant = run_ours(folder, args.out / f"ours_{name}", args.workers, seeds[0])
        results[name] = {
            "images": variant["inputs"], "images_masked": variant["images_masked"],
            "masked_share": round(variant["images_masked"] / variant["inputs"], 4),
            "detectors": variant["detectors"],
            "fitcheck": fitcheck(args.shared, args.out / f"ours_{name}" / "without_mask",
                                 args.out / f"ours_{name}" / "with_mask", args.out / f"fit_{name}.csv"),
        }
    for name, generated in (("raw", args.out / "ours"), ("rotated25", args.out / "ours_rotated25"),
                            ("small100", args.out / "ours_small100")):
        results[name]["fit_by_style"] = fit_by_style(generated, args.out / f"fit_{name}.csv")
        results[name]["failure_causes"] = unseen_masks(generated, args.out / f"fit_{name}.csv")
    answers = known_answers(raw)
    results["raw"]["mask_fit_own_landmarks"] = mask_fit(args.out / "ours", None)
    for name in ("rotated25", "small100"):
        results[name]["mask_fit_known_answer"] = mask_fit(args.out / f"ours_{name}", answers[name])
        results[name]["landmark_accuracy"] = landmark_accuracy(args.out / f"raw_{name}", answers[name])
        results[name]["fit_by_reference"] = fit_where_reference_is_right(
            args.out / f"ours_{name}", args.out / f"fit_{name}.csv", answers[name])
    results["raw"]["fit_ok_by_seed"] = {seeds[0]: results["raw"]["fitcheck"]["fit_ok"]}
    results["raw"]["failures_by_seed"] = {seeds[0]: results["raw"]["failure_causes"]}
    for seed in seeds[1:]:
        generated, rows = args.out / "ours_seed", args.out / "fit_raw_seed.csv"
        run_ours(raw, generated, args.workers, seed)
        fit = fitcheck(args.shared, generated / "without_mask", generated / "with_mask", rows)
        results["raw"]["fit_ok_by_seed"][seed] = fit["fit_ok"]
        results["raw"]["failures_by_seed"][seed] = unseen_masks(generated, rows)
    results["sheets"] = [str(p) for p in side_by_side_sheets(args.shared, args.out / "ours",
                                                             data / "anchor_generated" / "with_mask", args.out)]
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")

    speed = results["throughput"]
    print(f"throughput, medians of {len(speed['runs'])} alternating runs: ours {speed['ours_images_per_second']:.1f} "
          f"img/s, baseline {speed['baseline_images_per_second']:.1f} img/s (one process); ratio {speed['ratio']:.2f}x "
          f"end to end, {speed['ratio_after_startup']:.2f}x after our {speed['ours_startup_seconds']:.1f} s start-up "
          f"(the baseline's clock starts after its own); peak RSS main {speed['peak_rss_mb_main']:.0f} MB, "
          f"largest child {speed['peak_rss_mb_largest_worker_or_tool']:.0f} MB")
    for run in speed["runs"]:
        print(f"  run: baseline {run['baseline_images_per_second']:.1f}, ours {run['ours_images_per_second']:.1f} img/s "
              f"= {run['ratio']:.2f}x; {run['ratio_after_startup']:.2f}x after a {run['ours_startup_seconds']:.1f} s start-up")
    print(f"{'set':<11} {'images':>6} {'masked':>8} {'fit ok':>7} {'lenient':>8} {'nose+mouth':>11} {'eyes clear':>11}")
    for name in ("raw", "rotated25", "small100"):
        row = results[name]
        fit = row["fitcheck"]
        print(f"{name:<11} {row['images']:>6} {row['masked_share']:>8.1%} {fit['fit_ok']:>7.1%} "
              f"{fit['fit_ok_lenient']:>8.1%} {fit['nose_mouth_covered']:>11.1%} {fit['eyes_uncovered']:>11.1%}")
    base_fit = results["raw"]["baseline_fitcheck"]
    print(f"{'baseline':<11} {results['raw']['images']:>6} {results['raw']['baseline_masked_share']:>8.1%} "
          f"{base_fit['fit_ok']:>7.1%} {base_fit['fit_ok_lenient']:>8.1%} {base_fit['nose_mouth_covered']:>11.1%} "
          f"{base_fit['eyes_uncovered']:>11.1%}")
    print("(fit columns: share of evaluated pairs, as fitcheck.py reports; masked: share of input images with output)")
    for name in ("raw", "rotated25", "small100"):
        failing = {style: t["pairs"] - t["fit_ok"] for style, t in results[name]["fit_by_style"].items()
                   if t["fit_ok"] < t["pairs"]}
        print(f"{name}: strict failures by style: " + ", ".join(f"{style} {n}" for style, n in failing.items()))
        causes = results[name]["failure_causes"]
        print(f"{name}: of {causes['failures']} strict failures with fitcheck's landmarks at hand, the mask's own "
              f"alpha passes its rule at those landmarks in {causes['alpha_fits_its_landmarks']} (a mask there that "
              "its 25/255 difference does not see)")
    by_seed = results["raw"]["fit_ok_by_seed"]
    if len(by_seed) > 1:
        print("raw, fit ok by seed: " + ", ".join(f"{seed}: {fit:.1%}" for seed, fit in by_seed.items())
              + f"; mean {np.mean(list(by_seed.values())):.1%}")
        failures = results["raw"]["failures_by_seed"].values()
        print(f"raw, over {len(by_seed)} seeds: {sum(t['failures'] for t in failures)} strict failures, the mask's "
              f"alpha passing at fitcheck's landmarks in {sum(t['alpha_fits_its_landmarks'] for t in failures)}")
    own = results["raw"]["mask_fit_own_landmarks"]
    print(f"raw: masks as placed (their alpha) against the generator's own landmarks: {own['fit_ok']} of "
          f"{own['pairs']} fit ok")
    for name in ("rotated25", "small100"):
        known = results[name]["mask_fit_known_answer"]
        print(f"{name}: masks as placed against the known answer's landmarks: {known['fit_ok']} of {known['pairs']} "
              f"fit ok ({known['fit_ok'] / max(known['pairs'], 1):.1%}; nose+mouth {known['nose_mouth_covered']}, "
              f"eyes clear {known['eyes_clear']})")
        accuracy = results[name]["landmark_accuracy"]
        print(f"{name}: our landmarks against the known answer ({accuracy['faces']} faces): mean point error median "
              f"{accuracy['median']:.1%}, 95th percentile {accuracy['p95']:.1%} of the eye distance; "
              f"{accuracy['over_15_percent']} faces over 15 %, {accuracy['over_30_percent']} over 30 %")
        right, off = (results[name]["fit_by_reference"][key] for key in ("reference_right", "reference_off"))
        print(f"{name}, fitcheck's reference landmarks against the known answer: within 15 % on {right['pairs']} "
              f"pairs, {right['fit_ok'] / max(right['pairs'], 1):.1%} fit ok there; off on {off['pairs']}, "
              f"{off['pairs'] - off['fit_ok']} of them failed")
    print("sheets:", ", ".join(results["sheets"]))


if __name__ == "__main__":
    main()

"""Detector comparison on real annotated scenes: every face detector, with and without masks.

    python bench/bench_detect.py [--shared ../shared] [--model M] [--detector-model D] [--with-cnn]

In one invocation, on ``data/detection_dev`` (real street and indoor photos, PASCAL VOC boxes):
1. ``python -m detect evaluate``'s report for dlib HOG (upsample 1, then our classifier), the
   mask-aware detector trained only on generated scenes alone (``maskdet --no-classify``) and
   with the classifier weighing in on each label (``maskdet``, the default) and, with
   ``--with-cnn``, dlib's CNN detector (about 2.4 s per image here): AP@0.5 over all faces and
   over faces 40 px or taller, found and recall by size, recall at IoU >= 0.5;
2. time per 640-px-wide image: every image scaled to 640 px wide, HOG (upsample 1) and both
   maskdet variants at their operating thresholds, each timed on all of them in the same process.
Figures go to stdout and OUT/results.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from augment.faces import detect_boxes  # noqa: E402
from augment.images import load_rgb  # noqa: E402
from detect.evaluate import evaluate_scenes, score_thresholds, summary_lines  # noqa: E402
from detect.faces import make_labeller  # noqa: E402


def milliseconds_at_640(data: Path, finds: dict) -> dict[str, float]:
    """Milliseconds per 640-px-wide image for HOG (upsample 1) and each of ``finds``, same images, same process."""
    images = []
    for path in sorted((data / "images").iterdir()):
        rgb = load_rgb(path)
        images.append(cv2.resize(rgb, (640, round(rgb.shape[0] * 640 / rgb.shape[1])), interpolation=cv2.INTER_LINEAR))
    finds = {"hog_up1": lambda rgb: detect_boxes(rgb, "hog", 1), **finds}
    timings = {}
    for name, find in finds.items():
        find(images[0])  # compile outside the clock
        started = time.perf_counter()
        for rgb in images:
            find(rgb)
        timings[name] = round(1000 * (time.perf_counter() - started) / len(images), 1)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=PROJECT.parent / "shared")
    parser.add_argument("--model", type=Path, default=PROJECT / "models/mask_classifier.keras")
    parser.add_argument("--detector-model", type=Path, default=PROJECT / "models/mask_detector.keras")
    parser.add_argument("--out", type=Path, default=PROJECT / "build/bench_detect")
    parser.add_argument("--with-cnn", action="store_true")
    args = parser.parse_args()
    data = args.shared / "data/detection_dev"
    variants = {"hog": ("hog", args.model), "maskdet": ("maskdet", args.model), "maskdet-alone": ("maskdet", None)}
    if args.with_cnn:
        variants["cnn"] = ("cnn", args.model)
    results = {}
    for name, (detector, classifier) in variants.items():
        floor, operating = score_thresholds(detector)
        find, labels = make_labeller(detector, classifier, args.detector_model, upsample=1, threshold=floor)
        results[name] = evaluate_scenes(data, find, labels, name, progress=False, threshold=operating)
        print("\n" + "\n".join(summary_lines(results[name], labels)))
    timings = milliseconds_at_640(data, {name: make_labeller(*variants[name], args.detector_model)[0]
                                         for name in ("maskdet", "maskdet-alone")})
    results["time_640"] = {**timings, **{f"{name}_vs_hog": round(ms / timings["hog_up1"], 2)
                                         for name, ms in timings.items() if name != "hog_up1"}}
    print("\nper 640-px-wide image: " + ", ".join(f"{name} {ms} ms" for name, ms in timings.items())
          + " (" + ", ".join(f"{name} {ms / timings['hog_up1']:.2f}x HOG's time"
                             for name, ms in timings.items() if name != "hog_up1") + ")")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

"""Detector comparison on real annotated scenes: every face detector, with and without masks.

    python bench/bench_detect.py [--shared ../shared] [--model M] [--detector-model D] [--with-cnn]

In one invocation, on ``data/detection_dev`` (real street and indoor photos, PASCAL VOC boxes):
1. ``python -m detect evaluate``'s report for dlib HOG (upsample 1, then our classifier), the
   mask-aware detector trained only on generated scenes alone (``maskdet --no-classify``) and
   with the classifier weighing in on each label (``maskdet``, the default) and, with
   ``--with-cnn``, dlib's CNN detector (about 2.4 s per image here): AP@0.5 over all faces and
   over faces 40 px or taller, found and recall by size, recall at IoU >= 0.5;
2. time per 640-px-wide image: every image scaled to 640 px wide, HOG (upsample 1) and both
   maskdet variants at their operating thresholds, each timed on all of them in the same process;
3. the same faces in panoramas (``PANORAMA_PHOTOS`` photos side by side at one height, written to
   OUT/panoramas with their boxes): each detector's report there, to set beside the photos' own.
Figures go to stdout and OUT/results.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from augment.faces import detect_boxes  # noqa: E402
from augment.images import load_rgb, save_rgb, write_atomic  # noqa: E402
from detect.evaluate import evaluate_scenes, read_voc, score_thresholds, summary_lines  # noqa: E402
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


PANORAMA_PHOTOS, PANORAMA_HEIGHT = 4, 360


def make_panoramas(data: Path, out: Path) -> Path:
    """Every run of ``PANORAMA_PHOTOS`` annotated photos (in name order) scaled to one height and
    set side by side, as ``out/images`` and VOC ``out/annotations``; returns ``out``."""
    notes = sorted((data / "annotations").glob("*.xml"))
    for first in range(0, len(notes) - PANORAMA_PHOTOS + 1, PANORAMA_PHOTOS):
        pieces, objects, left = [], [], 0.0
        for note in notes[first:first + PANORAMA_PHOTOS]:
            file_name, truths = read_voc(note)
            rgb = load_rgb(data / "images" / file_name)
            scale = PANORAMA_HEIGHT / rgb.shape[0]
            pieces.append(cv2.resize(rgb, (round(rgb.shape[1] * scale), PANORAMA_HEIGHT), interpolation=cv2.INTER_AREA))
            objects += [(truth.label, [left + truth.box[0] * scale, truth.box[1] * scale,
                                       left + truth.box[2] * scale, truth.box[3] * scale]) for truth in truths]
            left += pieces[-1].shape[1]
        name = f"panorama_{first // PANORAMA_PHOTOS:03d}"
        save_rgb(out / "images" / f"{name}.png", np.concatenate(pieces, axis=1))
        boxes = "".join(f"<object><name>{label}</name><bndbox>" + "".join(
            f"<{key}>{value:.1f}</{key}>" for key, value in zip(("xmin", "ymin", "xmax", "ymax"), box))
            + "</bndbox></object>" for label, box in objects)
        write_atomic(out / "annotations" / f"{name}.xml",
                     f"<annotation><filename>{name}.png</filename>{boxes}</annotation>".encode())
    return out


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
    panoramas = make_panoramas(data, args.out / "panoramas")
    for name, (detector, classifier) in variants.items():
        floor, operating = score_thresholds(detector)
        find, labels = make_labeller(detector, classifier, args.detector_model, upsample=1, threshold=floor)
        results[name] = evaluate_scenes(data, find, labels, name, progress=False, threshold=operating)
        print("\n" + "\n".join(summary_lines(results[name], labels)))
        results[f"{name}_panoramas"] = evaluate_scenes(panoramas, find, labels, name, progress=False,
                                                       threshold=operating)
        print(f"the same faces in panoramas of {PANORAMA_PHOTOS} photos:\n"
              + "\n".join(summary_lines(results[f"{name}_panoramas"], labels)))
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

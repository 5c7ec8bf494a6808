"""Detector comparison on real annotated scenes: every face detector, with and without masks.

    python bench/bench_detect.py [--shared ../shared] [--model M] [--detector-model D] [--with-cnn]

In one invocation, on ``data/detection_dev`` (real street and indoor photos, PASCAL VOC boxes):
1. ``python -m detect evaluate``'s report for dlib HOG (upsample 1, then our classifier), the
   mask-aware detector trained only on generated scenes (``maskdet``) and, with ``--with-cnn``,
   dlib's CNN detector (about 2.4 s per image here);
2. recall at IoU >= 0.5 for faces 40 px or taller (the issue's target measure) besides the
   report's IoU >= 0.3 figures;
3. time per 640-px-wide image: every image scaled to 640 px wide, HOG (upsample 1) and maskdet
   each timed on all of them in the same process.
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
from detect.evaluate import evaluate_scenes, match, read_voc  # noqa: E402
from detect.faces import make_labeller  # noqa: E402


def strict_recall(data: Path, find, labels: list[str]) -> dict:
    """Recall (found and labelled right) at IoU >= 0.5 for boxes 40 px or taller, per class."""
    hits: dict[str, list[int]] = {}
    for path in sorted((data / "annotations").glob("*.xml")):
        name, truths = read_voc(path)
        faces = find(load_rgb(data / "images" / name))
        matched = match(truths, faces, 0.5)
        for index, truth in enumerate(truths):
            if truth.label in labels and truth.box[3] - truth.box[1] >= 40:
                right = index in matched and faces[matched[index]].label == truth.label
                hits.setdefault(truth.label, [0, 0])
                hits[truth.label][0] += right
                hits[truth.label][1] += 1
    return {label: {"recall": right / total, "n": total} for label, (right, total) in sorted(hits.items())}


def time_at_640(data: Path, find) -> tuple[float, float]:
    """Milliseconds per 640-px-wide image for HOG (upsample 1) and for ``find``, same images, same process."""
    images = []
    for path in sorted((data / "images").iterdir()):
        rgb = load_rgb(path)
        images.append(cv2.resize(rgb, (640, round(rgb.shape[0] * 640 / rgb.shape[1])), interpolation=cv2.INTER_LINEAR))
    find(images[0])  # compile outside the clock
    started = time.perf_counter()
    for rgb in images:
        detect_boxes(rgb, "hog", 1)
    hog = (time.perf_counter() - started) / len(images)
    started = time.perf_counter()
    for rgb in images:
        find(rgb)
    return 1000 * hog, 1000 * (time.perf_counter() - started) / len(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=PROJECT.parent / "shared")
    parser.add_argument("--model", type=Path, default=PROJECT / "models/mask_classifier.keras")
    parser.add_argument("--detector-model", type=Path, default=PROJECT / "models/mask_detector.keras")
    parser.add_argument("--out", type=Path, default=PROJECT / "build/bench_detect")
    parser.add_argument("--with-cnn", action="store_true")
    args = parser.parse_args()
    data = args.shared / "data/detection_dev"
    results = {}
    for detector in ("hog", "maskdet") + (("cnn",) if args.with_cnn else ()):
        find, labels = make_labeller(detector, args.model, args.detector_model, upsample=1)
        report = evaluate_scenes(data, find, labels, detector, progress=False)
        report["recall_iou50_40px"] = strict_recall(data, find, labels)
        results[detector] = report
        print(f"\n{detector}: {report['ms_per_image']} ms per image (as stored, 400-512 px)")
        for label, entry in report["classes"].items():
            ap = "  -  " if entry["ap50"] is None else f"{entry['ap50']:.3f}"
            found = " ".join(f"{k} {v:.1%}" if v is not None else f"{k} -" for k, v in entry["found"].items())
            strict = report["recall_iou50_40px"].get(label)
            strict_text = f"  recall@0.5 >=40px {strict['recall']:.1%}" if strict else ""
            print(f"  {label:<22} n {entry['n']:>4}  AP50 {ap}  found(IoU .3) {found}{strict_text}")
    find, _ = make_labeller("maskdet", args.model, args.detector_model)
    hog_ms, ours_ms = time_at_640(data, find)
    results["time_640"] = {"hog_up1_ms": round(hog_ms, 1), "maskdet_ms": round(ours_ms, 1),
                           "ratio": round(ours_ms / hog_ms, 2)}
    print(f"\nper 640-px-wide image: HOG upsample 1 {hog_ms:.1f} ms, maskdet {ours_ms:.1f} ms "
          f"({ours_ms / hog_ms:.2f}x HOG's time)")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

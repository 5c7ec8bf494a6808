"""Video benchmark: end-to-end frames per second on a 1080p clip, ours against a naive loop.

    python bench/bench_video.py --model models/mask_classifier.keras [--shared ../shared] [--baseline-frames 60]

In one invocation, on ``data/video/mask.mp4`` (1920x1080, 600 frames):
- ours: ``detect.video.process_video`` as ``python -m detect video --no-display`` runs it
  (decode thread, HOG on a 640 px copy every 3 frames, one batched classifier call per frame,
  boxes drawn on every frame), and again detecting on every frame;
- the naive loop: full-resolution HOG (upsample 0) on every frame, then ``model.predict`` on
  each face, boxes drawn, all in one thread; timed on the first ``--baseline-frames`` frames
  (it runs at a few frames per second) and reported as frames per second all the same.
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
from detect.draw import draw_faces  # noqa: E402
from detect.faces import LabelledFace, make_labeller  # noqa: E402
from detect.sources import open_source  # noqa: E402
from detect.video import process_video  # noqa: E402
from train.model import load_classifier  # noqa: E402
from train.views import plain_view  # noqa: E402


def naive_loop(video: Path, classifier, frames: int) -> tuple[float, int]:
    """Frames per second of the naive loop on the first ``frames`` frames, and the faces it saw."""
    capture = cv2.VideoCapture(str(video))
    faces_seen, done = 0, 0
    started = time.perf_counter()
    while done < frames:
        ok, bgr = capture.read()
        if not ok:
            break
        rgb = bgr[:, :, ::-1].copy()
        faces = []
        for found in detect_boxes(rgb, "hog", 0):
            crop = plain_view(rgb, found.box, classifier.size)[None].astype(np.float32)
            probabilities = classifier.model.predict(crop, verbose=0)[0]
            best = int(probabilities.argmax())
            faces.append(LabelledFace(found.box, classifier.labels[best], float(probabilities[best]), found.score))
        draw_faces(rgb, faces)
        faces_seen += len(faces)
        done += 1
    capture.release()
    return done / (time.perf_counter() - started), faces_seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=PROJECT / "models/mask_classifier.keras")
    parser.add_argument("--shared", type=Path, default=PROJECT.parent / "shared")
    parser.add_argument("--out", type=Path, default=PROJECT / "build/bench_video")
    parser.add_argument("--baseline-frames", type=int, default=60)
    args = parser.parse_args()
    video = args.shared / "data/video/mask.mp4"
    classifier = load_classifier(args.model)
    classifier.predict(np.zeros((1, 64, 64, 3), np.uint8))  # compile once, outside every clock
    find, _ = make_labeller("hog", args.model, Path(), upsample=0, max_side=640)

    results = {}
    for name, every in (("ours, detect every 3rd frame", 3), ("ours, detect every frame", 1)):
        run = process_video(open_source(str(video)), find, every)
        faces = sum(len(r["faces"]) for r in run.records if r["detected"])
        results[name] = {"fps": round(run.frames / run.seconds, 1), "frames": run.frames, "faces_on_detection_frames": faces}
        print(f"{name}: {run.frames} frames in {run.seconds:.1f} s = {run.frames / run.seconds:.1f} FPS "
              f"({faces} faces on detection frames)", flush=True)
    fps, faces = naive_loop(video, classifier, args.baseline_frames)
    results["naive"] = {"fps": round(fps, 2), "frames": args.baseline_frames, "faces": faces}
    print(f"naive (full-resolution HOG every frame, model.predict per face): {fps:.2f} FPS "
          f"on {args.baseline_frames} frames ({faces} faces)")
    for name in list(results)[:2]:
        results[name]["ratio"] = round(results[name]["fps"] / fps, 1)
        print(f"ratio {name}: {results[name]['ratio']}x")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

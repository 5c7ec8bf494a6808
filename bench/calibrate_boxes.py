"""How people draw face boxes, against our landmark face box: the numbers behind ``augment.scenes.annotation_box``.

    python bench/calibrate_boxes.py [--shared ../shared]

On ``data/detection_dev`` it finds faces with landmarks (HOG, upsampled once), pairs each
landmark face box (``augment.faces.face_box``) with the hand-drawn box it overlaps best
(IoU >= 0.3), and prints, for masked and unmasked faces apart, the median width and height
ratios and centre shifts (as shares of our box's side), with the IoU of the raw and of the
reframed boxes.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from augment.dataset import LABELS  # noqa: E402
from augment.faces import face_box, find_faces  # noqa: E402
from augment.geometry import box_iou  # noqa: E402
from augment.images import load_rgb  # noqa: E402
from augment.scenes import annotation_box  # noqa: E402
from detect.evaluate import read_voc  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=PROJECT.parent / "shared")
    data = parser.parse_args().shared / "data/detection_dev"
    rows: dict[str, list] = {}
    for path in sorted((data / "annotations").glob("*.xml")):
        name, truths = read_voc(path)
        for face in find_faces(load_rgb(data / "images" / name), "hog", 1):
            ours = face_box(face.landmarks)
            best = max(truths, key=lambda t: box_iou(t.box, ours), default=None)
            if best is None or box_iou(best.box, ours) < 0.3 or best.label not in LABELS:
                continue
            side = ours[2] - ours[0]
            rows.setdefault(best.label, []).append((
                (best.box[2] - best.box[0]) / side, (best.box[3] - best.box[1]) / side,
                ((best.box[0] + best.box[2]) - (ours[0] + ours[2])) / 2 / side,
                ((best.box[1] + best.box[3]) - (ours[1] + ours[3])) / 2 / side,
                box_iou(best.box, ours), box_iou(best.box, annotation_box(ours))))
    for label, found in sorted(rows.items()):
        table = np.array(found)
        median = np.median(table, axis=0)
        print(f"{label}, {len(table)} faces: width x{median[0]:.3f}, height x{median[1]:.3f}, centre shift "
              f"x {median[2]:+.3f}, y {median[3]:+.3f} (of our side); IoU median {median[4]:.3f} as is, "
              f"{median[5]:.3f} reframed; IoU >= 0.5: {np.mean(table[:, 4] >= 0.5):.1%} as is, "
              f"{np.mean(table[:, 5] >= 0.5):.1%} reframed")


if __name__ == "__main__":
    main()

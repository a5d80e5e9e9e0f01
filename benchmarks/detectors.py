"""Every detector on the real photos in ../shared/faces: faces found, missed, false detections, ms per photo.

    python benchmarks/detectors.py [--folders wild,deepface]

There are no box annotations, so the reference faces of a photo are those at least half of the detectors
agree on (IoU >= 0.4 with the detection of a majority); a detection that matches no reference face is
counted false. Each detector runs with its defaults (photos shrunk to 640 px on the long side first).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from facesift.detection import available_detectors, create_detector
from facesift.image import load_image

REPO = Path(__file__).resolve().parents[1]
FACES = Path(os.environ.get("FACESIFT_FACES_DIR", REPO.parent / "shared" / "faces"))


def iou(a, b) -> float:
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def consensus(boxes: dict[str, list], quorum: int) -> list:
    """Boxes that at least ``quorum`` detectors found (each detector's own box, merged by IoU)."""
    faces = []
    for name, found in boxes.items():
        for box in found:
            votes = {other for other, theirs in boxes.items() if any(iou(box, b) >= 0.4 for b in theirs)}
            if len(votes) >= quorum and not any(iou(box, f) >= 0.4 for f in faces):
                faces.append(box)
    return faces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folders", default="wild,deepface")
    args = parser.parse_args()
    photos = sorted(
        p for folder in args.folders.split(",") for p in (FACES / folder).rglob("*")
        if p.suffix.lower() in {".jpg", ".jpeg", ".png"}
    )
    names = available_detectors()
    detectors = {name: create_detector(name) for name in names}
    boxes = {name: {} for name in names}
    seconds = {name: [] for name in names}
    for photo in photos:
        image = load_image(photo)
        for name, detector in detectors.items():
            detector.detect(image) if not seconds[name] else None  # warm-up on the first photo
            start = time.perf_counter()
            boxes[name][photo] = [f.box for f in detector.detect(image)]
            seconds[name].append(time.perf_counter() - start)
    truth = {p: consensus({n: boxes[n][p] for n in names}, (len(names) + 1) // 2) for p in photos}
    group = [p for p in photos if len(truth[p]) > 1]
    print(f"{len(photos)} photos ({args.folders}); {sum(map(len, truth.values()))} reference faces, "
          f"{len(group)} photos with several ({sum(len(truth[p]) for p in group)} faces)")
    print(f"{'detector':<17}{'found':>7}{'missed':>8}{'false':>7}{'group found':>13}{'group false':>13}{'ms/photo':>10}")
    for name in names:
        found = missed = false = group_found = group_false = 0
        for photo in photos:
            mine = boxes[name][photo]
            hits = sum(any(iou(t, b) >= 0.4 for b in mine) for t in truth[photo])
            wrong = sum(not any(iou(b, t) >= 0.4 for t in truth[photo]) for b in mine)
            found, missed, false = found + hits, missed + len(truth[photo]) - hits, false + wrong
            if photo in group:
                group_found, group_false = group_found + hits, group_false + wrong
        print(f"{name:<17}{found:>7}{missed:>8}{false:>7}{group_found:>13}{group_false:>13}"
              f"{1000 * np.median(seconds[name]):>10.1f}")


if __name__ == "__main__":
    main()

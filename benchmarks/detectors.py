"""Every detector on the real photos in ../shared/faces: faces found, missed, false detections, ms per photo.

    python benchmarks/detectors.py

Group photos (wild/_multi_face): 7 faces, counted by eye; a detection overlapping none of them (IoU < 0.4)
is false. Single-person photos (the rest of wild/ and deepface/): whether the person's face is found (the
largest face at least half of the detectors agree on); "other" counts every further detection, which on
these photos are partly real background faces and partly false ones (no box annotations to tell them
apart). Each detector runs with its defaults (photos shrunk to 640 px on the long side first).
"""

from __future__ import annotations

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


#: faces in each group photo, counted by eye (the consensus boxes are checked against these counts)
GROUP = {"kit_with_rose.jpg": 2, "obama_and_biden.jpg": 3, "two_people.jpg": 2}


def main() -> None:
    photos = sorted(p for folder in ("wild", "deepface") for p in (FACES / folder).rglob("*")
                    if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    names = available_detectors()
    detectors = {name: create_detector(name) for name in names}
    boxes = {name: {} for name in names}
    seconds = {name: [] for name in names}
    for photo in photos:
        image = load_image(photo)
        for name, detector in detectors.items():
            if not seconds[name]:
                detector.detect(image)  # warm-up
            start = time.perf_counter()
            boxes[name][photo] = [f.box for f in detector.detect(image)]
            seconds[name].append(time.perf_counter() - start)
    truth = {p: consensus({n: boxes[n][p] for n in names}, (len(names) + 1) // 2) for p in photos}
    for photo in photos:
        if photo.name in GROUP:
            assert len(truth[photo]) == GROUP[photo.name], f"{photo.name}: consensus disagrees with the eye"
        elif truth[photo]:
            truth[photo] = [max(truth[photo], key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))]
    singles = [p for p in photos if p.name not in GROUP]
    print(f"group photos: 3 ({sum(GROUP.values())} faces); single-person photos: {len(singles)}")
    print(f"{'detector':<17}{'group found':>12}{'missed':>8}{'false':>7}{'person found':>14}{'other':>7}{'ms/photo':>10}")
    for name in names:
        found = false = person = other = 0
        for photo in photos:
            mine = boxes[name][photo]
            hits = sum(any(iou(t, b) >= 0.4 for b in mine) for t in truth[photo])
            extra = sum(not any(iou(b, t) >= 0.4 for t in truth[photo]) for b in mine)
            if photo.name in GROUP:
                found, false = found + hits, false + extra
            else:
                person, other = person + hits, other + extra
        print(f"{name:<17}{found:>12}{sum(GROUP.values()) - found:>8}{false:>7}{f'{person}/{len(singles)}':>14}"
              f"{other:>7}{1000 * np.median(seconds[name]):>10.1f}")


if __name__ == "__main__":
    main()

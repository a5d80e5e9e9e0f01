"""Different-person scores outside the calibration's population: does SFace's card threshold keep its false-match
rate on UTKFace's ordinary people (by age group and by race group, for audit), and on tight 112 px crops?

    python benchmarks/impostor_groups.py

UTKFace (``../shared/faces/utkface-dev``, 3,000 faces, no identities: every two photos are taken as two people, so
a duplicate in the set would count as a false match) against the card's threshold for FMR 1e-3, calibrated on
celeba300. The control: 1,500 celeba300 photos embedded as they are and cropped tightly to the detected face box and
resized to 112 px (UTKFace's and fiw-dev's format), so the crop's share of the effect is measured apart.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import facesift
from facesift.evaluation import embed_images, load_identity_roots
from facesift.pipeline import get_pipeline
from facesift.recognition import load_card

FACES = Path("../shared/faces")
RACES = ("White", "Black", "Asian", "Indian", "Others")


def impostor_scores(vectors: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    """Sorted scores of every pair (of different labels, when labels are given)."""
    rows, cols = np.triu_indices(len(vectors), 1)
    scores = np.einsum("ij,ij->i", vectors[rows], vectors[cols])
    if labels is not None:
        scores = scores[labels[rows] != labels[cols]]
    return np.sort(scores)


def line(name: str, count: int, scores: np.ndarray, threshold: float) -> str:
    """A table row; the FMR 1e-3 point only where at least 10 pairs lie above it."""
    point = f"{scores[int(len(scores) * (1 - 1e-3))]:.3f}" if len(scores) >= 10_000 else "too few pairs"
    return f"| {name} | {count:,} | {len(scores):,} | {(scores >= threshold).mean():.2e} | {point} |"


def tight_crop(pixels: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    x0, y0, x1, y1 = box
    cx, cy, side = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0)
    left, top = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    return cv2.resize(pixels[top : int(cy + side / 2), left : int(cx + side / 2)], (112, 112), interpolation=cv2.INTER_AREA)


def main() -> None:
    threshold = load_card("sface").thresholds["0.001"]
    print(f"SFace card threshold for FMR 1e-3 (celeba300): {threshold}")
    print("| faces | count | different-person pairs | FMR at that threshold | threshold that gives FMR 1e-3 there |")
    print("|---|---|---|---|---|")
    files = sorted((FACES / "utkface-dev").glob("*.jpg"))
    vectors, usable = embed_images(files).matrix(files)
    fields = np.array([f.name.split("_")[:3] for f in files])[usable]
    vectors, ages = vectors[usable], fields[:, 0].astype(int)
    races = np.array([int(r) if r.isdigit() else -1 for r in fields[:, 2]])
    for name, mask in (("UTKFace ages 0-12", ages <= 12), ("UTKFace ages 13-19", (ages >= 13) & (ages <= 19)),
                       ("UTKFace ages 20-60", (ages >= 20) & (ages <= 60)), ("UTKFace ages 61+", ages > 60)):
        print(line(name, int(mask.sum()), impostor_scores(vectors[mask]), threshold))
    for race, group in enumerate(RACES):
        mask = (ages >= 20) & (ages <= 60) & (races == race)
        print(line(f"UTKFace ages 20-60, {group}", int(mask.sum()), impostor_scores(vectors[mask]), threshold))
    pipeline = get_pipeline(low_resolution=False)
    celeba = load_identity_roots([FACES / "celeba300"])
    chosen = np.random.default_rng(0).choice(len(celeba.images), 1500, replace=False)
    whole, tight, labels = [], [], []
    for index in chosen:
        pixels = facesift.load_image(celeba.images[index])
        found = pipeline.represent(pixels, policy="auto")
        cropped = pipeline.represent(tight_crop(pixels, found[0].face.box), policy="auto") if found else []
        if found and cropped:
            whole.append(found[0].embedding)
            tight.append(cropped[0].embedding)
            labels.append(celeba.labels[index])
    labels = np.array(labels)
    print(line("celeba300 photos as they are (control)", len(labels), impostor_scores(np.array(whole), labels), threshold))
    print(line("the same faces, tight 112 px crops", len(labels), impostor_scores(np.array(tight), labels), threshold))


if __name__ == "__main__":
    main()

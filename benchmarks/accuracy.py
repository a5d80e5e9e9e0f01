"""Accuracy of the default pipeline on the shared development photos, at the shipped default threshold.

    python benchmarks/accuracy.py

deepface-pairs.csv: fraction of pairs decided correctly by ``facesift.verify``'s default threshold.
celeba300-pairs.txt: the LFW 10-fold protocol (threshold chosen on 9 folds, accuracy on the 10th).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

import facesift
from facesift.recognition import load_card

REPO = Path(__file__).resolve().parents[1]
FACES = Path(os.environ.get("FACESIFT_FACES_DIR", REPO.parent / "shared" / "faces"))


def embed(files: list[Path]) -> dict[Path, np.ndarray | None]:
    results = facesift.get_pipeline().represent_batch(files)
    return {f: (r.faces[0].embedding if r.faces else None) for f, r in zip(files, results)}


def deepface_pairs() -> str:
    root = FACES / "deepface"
    rows = list(csv.DictReader(open(FACES / "deepface-pairs.csv")))
    vectors = embed(sorted({root / r["img_a"] for r in rows} | {root / r["img_b"] for r in rows}))
    threshold = load_card("sface").threshold_for()
    correct = sum((float(vectors[root / r["img_a"]] @ vectors[root / r["img_b"]]) >= threshold) == (r["same"] == "1") for r in rows)
    return f"deepface-pairs.csv: {correct}/{len(rows)} = {100 * correct / len(rows):.2f} % correct at threshold {threshold:.4f}"


def celeba_ten_fold() -> str:
    root = FACES / "celeba300"
    lines = (FACES / "celeba300-pairs.txt").read_text().split("\n")[1:]
    pairs, labels = [], []
    for fields in (line.split("\t") for line in lines if line.strip()):
        if len(fields) == 3:
            fields = [fields[0], fields[1], fields[0], fields[2]]
        a, i, b, j = fields
        pairs.append((sorted((root / a).iterdir())[int(i) - 1], sorted((root / b).iterdir())[int(j) - 1]))
        labels.append(len(set((a, b))) == 1)
    vectors = embed(sorted({p for pair in pairs for p in pair}))
    scores = np.array([float(vectors[a] @ vectors[b]) if vectors[a] is not None and vectors[b] is not None else -1.0 for a, b in pairs])
    labels = np.array(labels)
    folds = np.arange(len(pairs)) // (len(pairs) // 10)
    accuracies = []
    for fold in range(10):
        train = folds != fold
        candidates = np.unique(scores[train])
        best = max(candidates, key=lambda t: np.mean((scores[train] >= t) == labels[train]))
        accuracies.append(np.mean((scores[~train] >= best) == labels[~train]))
    return f"celeba300 10-fold: {100 * np.mean(accuracies):.2f} ± {100 * np.std(accuracies):.2f} %"


if __name__ == "__main__":
    print(deepface_pairs())
    print(celeba_ten_fold())

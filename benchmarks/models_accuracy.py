"""Every embedder and the fusion on celeba300: 10-fold accuracy side by side, McNemar, calibrated thresholds.

    python benchmarks/models_accuracy.py [--cache /tmp/facesift-celeba] [--models sface,dlib,facenet,accurate]

Embeddings are cached per model (an .npz per variant), so a second run only re-scores. The fusion's weights
are learned on the pairs of folds 1-5 (identity-disjoint from folds 6-10); every number is reported on all
10 folds and on folds 6-10 alone, the part no weight was learned on. Thresholds for the model cards are the
quantiles of all different-person pairs of celeba300 (19.5 M) at false-match rates 1e-1 .. 1e-4.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from scipy.stats import binomtest

from facesift.pipeline import Pipeline
from facesift.recognition.fusion import ACCURATE_WEIGHTS

REPO = Path(__file__).resolve().parents[1]
FACES = Path(os.environ.get("FACESIFT_FACES_DIR", REPO.parent / "shared" / "faces"))
ROOT = FACES / "celeba300"
VARIANTS = {  # cache name -> (embedder, options); dlib and dlib-noflip come from one pass
    "sface": ("sface", {}),
    "facenet": ("facenet", {}),
    "facenet-m0": ("facenet", {"margin": 0.0}),
    "facenet-m30": ("facenet", {"margin": 0.3}),
}


def celeba_pairs() -> tuple[list[Path], np.ndarray, np.ndarray, np.ndarray]:
    """Images (sorted), pair indices into them (P, 2), same-person labels, and fold numbers 0-9."""
    lines = (FACES / "celeba300-pairs.txt").read_text().split("\n")[1:]
    listing = {person.name: sorted(person.iterdir()) for person in ROOT.iterdir()}
    files = sorted(f for fs in listing.values() for f in fs)
    index = {f: i for i, f in enumerate(files)}
    pairs, labels = [], []
    for fields in (line.split("\t") for line in lines if line.strip()):
        if len(fields) == 3:
            fields = [fields[0], fields[1], fields[0], fields[2]]
        a, i, b, j = fields
        pairs.append((index[listing[a][int(i) - 1]], index[listing[b][int(j) - 1]]))
        labels.append(a == b)
    folds = np.arange(len(pairs)) // (len(pairs) // 10)
    return files, np.array(pairs), np.array(labels), folds


def embeddings(variant: str, files: list[Path], cache: Path) -> np.ndarray:
    """(N, d) embeddings, NaN rows where no face was found; cached.

    ``accurate`` is assembled from its members' cached vectors: the fusion embedder's output is by
    construction their weighted concatenation (tests/test_models_fusion.py checks it on real photos).
    """
    if variant == "accurate":
        parts = [np.sqrt(w) * embeddings(name, files, cache) for name, w in ACCURATE_WEIGHTS.items()]
        return np.concatenate(parts, axis=1)
    path = cache / f"{variant}.npz"
    if path.is_file():
        return np.load(path)["vectors"]
    if variant in ("dlib", "dlib-noflip"):
        return _dlib_both(files, cache)[variant]
    name, options = VARIANTS[variant]
    pipeline = Pipeline("yunet", name, embedder_options=options)
    results = pipeline.represent_batch(files)
    vectors = np.full((len(files), pipeline.embedder.dims), np.nan, dtype=np.float32)
    for i, item in enumerate(results):
        if item.faces:
            vectors[i] = item.faces[0].embedding
    pipeline.close()
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, vectors=vectors)
    return vectors


def _dlib_both(files: list[Path], cache: Path) -> dict[str, np.ndarray]:
    """dlib with and without flip test-time augmentation from one pass (the flip costs a second forward).

    dlib is slow (about 60 ms a forward on one core), so only the 5,151 photos that the pairs use are
    embedded; the others stay NaN and calibration uses the different-person pairs among those photos.
    """
    _, pairs, _, _ = celeba_pairs()
    used = set(np.unique(pairs).tolist())
    pipeline = Pipeline("yunet", "dlib", embedder_options={"flip": False})
    both = {v: np.full((len(files), 128), np.nan, dtype=np.float32) for v in ("dlib", "dlib-noflip")}
    for i, path in enumerate(files):
        if i not in used:
            continue
        crops = pipeline._analyse(path, "largest").crops
        if crops:
            raw = pipeline.embedder.embed(crops[:1])[0]
            flipped = pipeline.embedder.embed([crops[0][:, ::-1]])[0]
            both["dlib-noflip"][i] = raw
            both["dlib"][i] = (raw + flipped) / np.linalg.norm(raw + flipped)
    pipeline.close()
    for variant, vectors in both.items():
        np.savez(cache / f"{variant}.npz", vectors=vectors)
    return both


def pair_scores(vectors: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    scores = np.einsum("ij,ij->i", vectors[pairs[:, 0]], vectors[pairs[:, 1]])
    return np.nan_to_num(scores, nan=-1.0)


def ten_fold(scores: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Per-pair correctness under the LFW protocol: the best threshold on 9 folds, applied to the 10th."""
    correct = np.zeros(len(scores), dtype=bool)
    for fold in np.unique(folds):
        train, test = folds != fold, folds == fold
        threshold = best_threshold(scores[train], labels[train])
        correct[test] = (scores[test] >= threshold) == labels[test]
    return correct


def best_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The observed score t maximising accuracy of ``score >= t`` (the smallest such t), in O(n log n)."""
    order = np.argsort(scores, kind="stable")
    s, positive = scores[order], labels[order]
    negatives_below = np.concatenate([[0], np.cumsum(~positive)[:-1]])
    positives_at_or_above = np.cumsum(positive[::-1])[::-1]
    first_of_tie = np.concatenate([[True], s[1:] != s[:-1]])
    accuracy = np.where(first_of_tie, negatives_below + positives_at_or_above, -1)
    return float(s[int(np.argmax(accuracy))])


def tar_at_far(scores: np.ndarray, labels: np.ndarray, far: float) -> float:
    threshold = np.quantile(scores[~labels], 1 - far)
    return float(np.mean(scores[labels] > threshold))


def fusion_weights(per_model: dict[str, np.ndarray], labels: np.ndarray, train: np.ndarray) -> dict[str, float]:
    """Weights a_m of sum_m a_m cos_m: z-normalisation per model, then a grid search of mixing weights."""
    names = list(per_model)
    sigma = {n: float(np.std(per_model[n][train & ~labels])) for n in names}
    grid = np.linspace(0, 1, 21)
    best, best_accuracy = None, -1.0
    for w in np.array(np.meshgrid(*[grid] * len(names))).reshape(len(names), -1).T:
        if not np.isclose(w.sum(), 1.0):
            continue
        fused = sum(wi / sigma[n] * per_model[n] for wi, n in zip(w, names, strict=True))
        accuracy = ten_fold(fused[train], labels[train], np.arange(train.sum()) * 5 // train.sum()).mean()
        if accuracy > best_accuracy:
            best, best_accuracy = w, accuracy
    raw = {n: float(wi / sigma[n]) for wi, n in zip(best, names, strict=True)}
    total = sum(raw.values())
    return {n: round(v / total, 4) for n, v in raw.items()}


def impostor_thresholds(vectors: np.ndarray, files: list[Path]) -> dict[str, float]:
    """Cosine thresholds at FMR 1e-1..1e-4 over all different-person pairs of the dataset."""
    keep = ~np.isnan(vectors).any(axis=1)
    vectors = vectors[keep]
    people = np.array([f.parent.name for f, k in zip(files, keep, strict=True) if k])
    scores = []
    for start in range(0, len(vectors), 500):
        block = vectors[start : start + 500] @ vectors.T
        rows = np.arange(start, min(start + 500, len(vectors)))
        mask = (people[rows][:, None] != people[None, :]) & (rows[:, None] < np.arange(len(vectors))[None, :])
        scores.append(block[mask])
    impostors = np.concatenate(scores)
    return {f"{fmr:g}": round(float(np.quantile(impostors, 1 - fmr)), 4) for fmr in (1e-1, 1e-2, 1e-3, 1e-4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/facesift-celeba"))
    parser.add_argument("--models", default="sface,dlib,dlib-noflip,facenet,accurate")
    parser.add_argument("--calibrate", action="store_true", help="print FMR thresholds for the model cards")
    args = parser.parse_args()
    files, pairs, labels, folds = celeba_pairs()
    held_out = folds >= 5
    scores, correct = {}, {}
    print(f"celeba300: {len(pairs)} pairs, {len(files)} images; folds 1-5 train fusion weights, 6-10 held out")
    print(f"{'model':<14}{'10-fold acc %':>16}{'errors':>8}{'folds 6-10 %':>14}{'errors':>8}{'TAR@FAR1e-3':>13}")
    for variant in args.models.split(","):
        vectors = embeddings(variant, files, args.cache)
        scores[variant] = pair_scores(vectors, pairs)
        correct[variant] = ten_fold(scores[variant], labels, folds)
        per_fold = [correct[variant][folds == f].mean() for f in range(10)]
        held = ten_fold(scores[variant][held_out], labels[held_out], folds[held_out])
        print(
            f"{variant:<14}{100 * np.mean(per_fold):>9.2f} ± {100 * np.std(per_fold):.2f}{(~correct[variant]).sum():>8}"
            f"{100 * held.mean():>14.2f}{(~held).sum():>8}{100 * tar_at_far(scores[variant], labels, 1e-3):>13.2f}"
        )
        if args.calibrate:
            print(f"    thresholds {impostor_thresholds(vectors, files)}")
    singles = [v for v in ("sface", "dlib", "facenet") if v in scores]
    if len(singles) > 1:
        weights = fusion_weights({v: scores[v] for v in singles}, labels, ~held_out)
        print(f"score-level fusion weights learned on folds 1-5 (z-normalised, as cosine weights): {weights}")
        fused = sum(w * scores[v] for v, w in weights.items())
        held = ten_fold(fused[held_out], labels[held_out], folds[held_out])
        print(f"  with those weights, folds 6-10: {100 * held.mean():.2f} % ({(~held).sum()} errors)")
        train = ~held_out & ~labels
        z_mean = sum((scores[v] - scores[v][train].mean()) / scores[v][train].std() for v in singles)
        held = ten_fold(z_mean[held_out], labels[held_out], folds[held_out])
        print(f"  plain mean of z-normalised scores (MODELS.md), folds 6-10: {100 * held.mean():.2f} % ({(~held).sum()} errors)")
    for variant in scores:
        for other in scores:
            if variant == "accurate" and other in singles:
                held_a = ten_fold(scores[variant][held_out], labels[held_out], folds[held_out])
                held_b = ten_fold(scores[other][held_out], labels[held_out], folds[held_out])
                for part, a, b in (("folds 6-10", held_a, held_b), ("all 10 folds", correct[variant], correct[other])):
                    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
                    p = binomtest(only_a, only_a + only_b).pvalue if only_a + only_b else 1.0
                    print(
                        f"McNemar, {part}, {variant} vs {other}: {variant} right where {other} wrong {only_a}, "
                        f"the reverse {only_b}; exact two-sided p = {p:.2g}"
                    )


if __name__ == "__main__":
    main()

"""The 1:1 verification protocols: a pairs file (LFW 10-fold) or every pair of an identity-folder set."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from facesift.errors import DatasetError
from facesift.evaluation import metrics
from facesift.evaluation.datasets import IdentityDataset, Pair, read_attributes, read_pairs
from facesift.evaluation.degradations import CropDegradation
from facesift.evaluation.embeddings import Embeddings, embed_images
from facesift.pipeline import DEFAULT_FACE_POLICY
from facesift.recognition.base import load_card
from facesift.results import Serialisable, unserialised

#: the false-accept rates reported for every run (those the data cannot support are reported as None)
FAR_TARGETS = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6)
FAILED_SCORE = -1.0
FAILURE_POLICY = (
    "a pair with an image in which no face was found is scored -1 (the lowest cosine): it is always "
    "decided 'different', so a same-person pair counts as an error and a different-person pair as correct"
)

ProgressCallback = Callable[[str, int, int], None]


@dataclass(frozen=True)
class SliceResult(Serialisable):
    """Verification on the pairs whose two images share an attribute value (``a|b`` for mixed pairs)."""

    attribute: str
    value: str
    pairs: int
    genuine: int
    impostor: int
    accuracy: float
    auc: float | None
    #: with the model card's default threshold: accuracy, and the share of same-person pairs accepted
    accuracy_at_default: float | None = None
    tar_at_default: float | None = None


@dataclass(frozen=True)
class PairsReport(Serialisable):
    """Everything a verification run measured; ``genuine``/``impostor`` scores are kept for plots."""

    dataset: str
    protocol: str  # "pairs file <name>" or "all pairs"
    model: str
    detector: str
    degradation: str
    pairs: int
    genuine_pairs: int
    impostor_pairs: int
    images: int
    failed_images: int
    failed_pairs: int
    failure_policy: str
    accuracy: float
    accuracy_std: float
    fold_accuracies: tuple[float, ...]
    fold_thresholds: tuple[float, ...]
    auc: float
    eer: float
    eer_threshold: float
    tar_at_far: dict[str, metrics.OperatingPoint | None]
    notes: tuple[str, ...]
    slices: tuple[SliceResult, ...]
    failures: dict[str, str]
    cached_images: int
    seconds: float
    genuine: np.ndarray = unserialised(compare=False)
    impostor: np.ndarray = unserialised(compare=False)
    #: per pair of the k-fold protocol: decided right with its fold's threshold (for paired tests)
    correct: np.ndarray = unserialised(compare=False, default_factory=lambda: np.zeros(0, bool))
    #: the model card's default operating point (what ``verify`` uses) and the accuracy it gives on these pairs
    default_threshold: float | None = None
    accuracy_at_default: float | None = None
    #: per pair: decided right with the card's default threshold (for paired tests at the default operating point)
    correct_at_default: np.ndarray = unserialised(compare=False, default_factory=lambda: np.zeros(0, bool))
    #: how this run differs from a plain one of the same protocol (e.g. "enrolled with 3 photos")
    variant: str = ""
    #: which face of a photo with several was used (pipeline.FACE_POLICIES)
    policy: str = DEFAULT_FACE_POLICY

    @property
    def label(self) -> str:
        return run_label(self.model, self.detector, self.degradation, self.policy) + (f" {self.variant}" if self.variant else "")

    def tar(self, far: float) -> float | None:
        point = self.tar_at_far.get(far_key(far))
        return None if point is None else point.tar


def run_label(model: str, detector: str, degradation: str, policy: str) -> str:
    """model+detector, then the degradation and the face policy where they are not the defaults."""
    suffix = "" if degradation == "clean" else f" {degradation}"
    return f"{model}+{detector}{suffix}" + ("" if policy == DEFAULT_FACE_POLICY else f" [{policy} face]")


def far_key(far: float) -> str:
    return f"{far:.0e}"


def _progress(progress: ProgressCallback | None, label: str) -> Callable[[int, int], None] | None:
    return None if progress is None else (lambda done, total: progress(label, done, total))


def _embed_sides(
    side_a: Sequence[Path], side_b: Sequence[Path], model: str, detector: str, degradation: CropDegradation | None,
    cache_dir: Path | None, progress: ProgressCallback | None, policy: str = DEFAULT_FACE_POLICY,
) -> tuple[Embeddings, Embeddings]:
    """Clean embeddings of the first images and (possibly degraded) embeddings of the second ones."""
    clean = embed_images(
        list(side_a) + ([] if degradation else list(side_b)), model=model, detector=detector, cache_dir=cache_dir,
        progress=_progress(progress, f"Embedding ({model}, {detector})"), policy=policy,
    )
    if degradation is None:
        return clean, clean
    damaged = embed_images(
        side_b, model=model, detector=detector, degradation=degradation, cache_dir=cache_dir, policy=policy,
        progress=_progress(progress, f"Embedding {degradation.name} ({model}, {detector})"),
    )
    return clean, damaged


def _summary(
    genuine: np.ndarray, impostor: np.ndarray, fold_scores: np.ndarray, fold_same: np.ndarray, folds: np.ndarray,
    model: str,
) -> dict:
    accuracies, thresholds = metrics.k_fold_accuracy(fold_scores, fold_same, folds)
    threshold_of = dict(zip(np.unique(folds), thresholds, strict=True))
    correct = (fold_scores >= np.array([threshold_of[f] for f in folds])) == fold_same
    rate, threshold = metrics.eer(genuine, impostor)
    points = {far_key(far): metrics.tar_at_far(genuine, impostor, far) for far in FAR_TARGETS}
    lowest = min((far for far in FAR_TARGETS if points[far_key(far)] is not None), default=None)
    notes = [
        f"{len(np.unique(folds))}-fold accuracy: threshold chosen on the other folds, accuracy on each fold; mean ± std",
        f"TAR@FAR needs at least 1/FAR impostor pairs: with {impostor.size:,} the lowest measurable FAR here is "
        f"{lowest:g}" if lowest else "too few impostor pairs for any TAR@FAR",
    ]
    return dict(
        accuracy=float(accuracies.mean()), accuracy_std=float(accuracies.std()),
        fold_accuracies=tuple(map(float, accuracies)), fold_thresholds=tuple(map(float, thresholds)),
        auc=metrics.auc(genuine, impostor), eer=rate, eer_threshold=threshold, tar_at_far=points, notes=tuple(notes),
        correct=correct, **_at_default_threshold(model, fold_scores, fold_same),
    )


def _at_default_threshold(model: str, scores: np.ndarray, same: np.ndarray) -> dict:
    """Accuracy with the fixed threshold ``verify`` uses by default (no fitting on these pairs)."""
    try:
        threshold = load_card(model.split("+")[0]).threshold_for()
    except (FileNotFoundError, ValueError):
        return {}
    correct = (scores >= threshold) == same
    return dict(default_threshold=threshold, accuracy_at_default=float(np.mean(correct)), correct_at_default=correct)


def evaluate_pairs(
    data: str | Path,
    pairs: str | Path | Sequence[Pair],
    *,
    model: str = "sface",
    detector: str = "yunet",
    degradation: CropDegradation | str | None = None,
    attributes: str | Path | None = None,
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
    policy: str = DEFAULT_FACE_POLICY,
) -> PairsReport:
    """Verification on a pairs file (LFW format or CSV) under the LFW 10-fold protocol, plus ROC, AUC, TAR@FAR, EER.

    With ``degradation`` the second image of every pair is degraded (see ``degradations``); ``policy`` picks the
    face of a photo with several (``auto``, ``largest``, ``central``).
    """
    started = time.perf_counter()
    data = Path(data)
    name = "pairs" if not isinstance(pairs, (str, Path)) else f"pairs file {Path(pairs).name}"
    pairs = read_pairs(pairs, data) if isinstance(pairs, (str, Path)) else list(pairs)
    if isinstance(degradation, str):
        degradation = CropDegradation.parse(degradation)
    clean, damaged = _embed_sides([p.a for p in pairs], [p.b for p in pairs], model, detector, degradation, cache_dir, progress,
                                  policy)
    scores, failed = np.empty(len(pairs)), np.zeros(len(pairs), bool)
    for row, pair in enumerate(pairs):
        a, b = clean.vectors[pair.a], damaged.vectors[pair.b]
        failed[row] = a is None or b is None
        scores[row] = FAILED_SCORE if failed[row] else float(np.dot(a, b))
    same = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])
    summary = _summary(scores[same], scores[~same], scores, same, folds, model)
    slices = _slices(pairs, scores, same, summary["correct"], attributes, data) if attributes else ()
    failures = {str(k): v for k, v in {**clean.failures, **damaged.failures}.items()}
    images = len(set(clean.vectors) | set(damaged.vectors))
    return PairsReport(
        dataset=str(data), protocol=name, model=clean.model, detector=detector,
        degradation=degradation.name if degradation else "clean", pairs=len(pairs), genuine_pairs=int(same.sum()),
        impostor_pairs=int((~same).sum()), images=images, failed_images=len(failures), failed_pairs=int(failed.sum()),
        failure_policy=FAILURE_POLICY, slices=slices, failures=failures,
        cached_images=clean.cached + (damaged.cached if damaged is not clean else 0),
        seconds=time.perf_counter() - started, genuine=scores[same], impostor=scores[~same], policy=policy, **summary,
    )


def _slices(pairs, scores, same, correct, attributes, data) -> tuple[SliceResult, ...]:
    images = sorted({p.a for p in pairs} | {p.b for p in pairs})
    results = []
    for attribute, values in read_attributes(attributes, data, images).items():
        groups: dict[str, list[int]] = {}
        for row, pair in enumerate(pairs):
            a, b = values.get(pair.a), values.get(pair.b)
            if a is not None and b is not None:
                groups.setdefault(a if a == b else "|".join(sorted((a, b))), []).append(row)
        for value, rows in sorted(groups.items()):
            rows = np.array(rows)
            genuine, impostor = scores[rows][same[rows]], scores[rows][~same[rows]]
            area = metrics.auc(genuine, impostor) if genuine.size and impostor.size else None
            results.append(SliceResult(attribute, value, rows.size, genuine.size, impostor.size, float(correct[rows].mean()), area))
    return tuple(results)


def all_pair_scores(
    first: np.ndarray, second: np.ndarray, usable: np.ndarray, labels: np.ndarray, *, block: int = 512
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores of every unordered pair i < j (rows of ``first`` against rows of ``second``).

    Returns (genuine scores, impostor scores, row index i of each genuine pair, to find its person).
    Pairs with an unusable image score ``FAILED_SCORE``.
    """
    genuine, impostor, genuine_rows = [], [], []
    n = len(first)
    for start in range(0, n, block):
        rows = np.arange(start, min(start + block, n))
        scores = first[rows] @ second.T
        scores[~usable[rows]] = FAILED_SCORE
        scores[:, ~usable] = FAILED_SCORE
        upper = np.arange(n)[None, :] > rows[:, None]
        same = labels[rows][:, None] == labels[None, :]
        genuine.append(scores[upper & same].astype(np.float32))
        genuine_rows.append(rows[np.nonzero(upper & same)[0]].astype(np.int32))
        impostor.append(scores[upper & ~same].astype(np.float32))
    return np.concatenate(genuine), np.concatenate(impostor), np.concatenate(genuine_rows)


def evaluate_all_pairs(
    dataset: IdentityDataset,
    *,
    model: str = "sface",
    detector: str = "yunet",
    degradation: CropDegradation | str | None = None,
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
    folds: int = 10,
    policy: str = DEFAULT_FACE_POLICY,
) -> PairsReport:
    """Every same-person and every different-person pair of an identity-folder set.

    ROC, AUC, TAR@FAR and EER use all pairs (far more impostors than a pairs file). The k-fold accuracy
    puts each person in fold ``index % k`` (k = ``folds``, fewer when there are under two people per fold)
    and uses the pairs whose two people share a fold, so the folds are identity-disjoint.
    With ``degradation``, the later image of every pair (in sorted order) is degraded.
    """
    started = time.perf_counter()
    folds = min(folds, len(dataset.people) // 2)
    if folds < 2:
        raise DatasetError(f"All-pairs mode needs at least 4 people for identity-disjoint folds; {dataset.root} has "
                           f"{len(dataset.people)}")
    if isinstance(degradation, str):
        degradation = CropDegradation.parse(degradation)
    images = list(dataset.images)
    clean, damaged = _embed_sides(images, images, model, detector, degradation, cache_dir, progress, policy)
    first, ok_first = clean.matrix(images)
    second, ok_second = damaged.matrix(images)
    labels = np.array(dataset.labels)
    genuine, impostor, genuine_rows = all_pair_scores(first, second, ok_first & ok_second, labels)
    image_fold = labels % folds  # person k is in fold k % folds
    same_fold_impostors = _same_fold_impostors(first, second, ok_first & ok_second, labels, image_fold)
    fold_scores = np.concatenate([genuine, same_fold_impostors[0]])
    fold_same = np.concatenate([np.ones(genuine.size, bool), np.zeros(same_fold_impostors[0].size, bool)])
    fold_ids = np.concatenate([image_fold[genuine_rows], same_fold_impostors[1]])
    summary = _summary(genuine, impostor, fold_scores, fold_same, fold_ids, model)
    share = impostor.size / (impostor.size + genuine.size)
    summary["notes"] += (
        f"all pairs: {100 * share:.1f} % of the pairs are different-person pairs, so the k-fold accuracy mostly says how "
        "well those are rejected; read TAR@FAR (and distrust FARs where label noise in the data dominates)",
    )
    failures = {str(k): v for k, v in {**clean.failures, **damaged.failures}.items()}
    failed_pairs = int(np.sum(genuine == FAILED_SCORE) + np.sum(impostor == FAILED_SCORE))
    return PairsReport(
        dataset=str(dataset.root), protocol="all pairs", model=clean.model, detector=detector,
        degradation=degradation.name if degradation else "clean", pairs=genuine.size + impostor.size,
        genuine_pairs=genuine.size, impostor_pairs=impostor.size, images=len(images), failed_images=len(failures),
        failed_pairs=failed_pairs, failure_policy=FAILURE_POLICY, slices=(), failures=failures,
        cached_images=clean.cached, seconds=time.perf_counter() - started, genuine=genuine, impostor=impostor,
        policy=policy, **summary,
    )


def _same_fold_impostors(first, second, usable, labels, image_fold) -> tuple[np.ndarray, np.ndarray]:
    scores, fold_ids = [], []
    for fold in np.unique(image_fold):
        members = np.flatnonzero(image_fold == fold)
        _, impostor, _ = all_pair_scores(first[members], second[members], usable[members], labels[members])
        scores.append(impostor)
        fold_ids.append(np.full(impostor.size, fold))
    return np.concatenate(scores), np.concatenate(fold_ids)

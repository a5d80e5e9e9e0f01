"""The metric arithmetic, on plain score arrays: ROC, AUC, TAR@FAR, EER, the LFW 10-fold accuracy, CMC, DIR.

Convention everywhere: a pair (or a probe) is accepted when its score is **>=** the threshold; a
higher score means more alike. A false-accept rate ``far`` is measurable only when there are at least
``1 / far`` impostor scores (otherwise not even one false accept is expected): below that the functions
return ``None`` rather than a number that would only reflect the sample size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def _arrays(genuine, impostor) -> tuple[np.ndarray, np.ndarray]:
    genuine = np.asarray(genuine, dtype=np.float64).ravel()
    impostor = np.asarray(impostor, dtype=np.float64).ravel()
    if genuine.size == 0 or impostor.size == 0:
        raise ValueError("Both genuine and impostor scores are needed (at least one of each)")
    return genuine, impostor


def roc(genuine, impostor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(far, tar, thresholds) at every distinct score, highest threshold first, starting at (0, 0, +inf).

    The same points as ``sklearn.metrics.roc_curve(..., drop_intermediate=False)``.
    """
    genuine, impostor = _arrays(genuine, impostor)
    thresholds = np.unique(np.concatenate([genuine, impostor]))[::-1]
    genuine_sorted, impostor_sorted = np.sort(genuine), np.sort(impostor)
    accepted_genuine = genuine.size - np.searchsorted(genuine_sorted, thresholds, side="left")
    accepted_impostor = impostor.size - np.searchsorted(impostor_sorted, thresholds, side="left")
    far = np.concatenate([[0.0], accepted_impostor / impostor.size])
    tar = np.concatenate([[0.0], accepted_genuine / genuine.size])
    return far, tar, np.concatenate([[np.inf], thresholds])


def auc(genuine, impostor) -> float:
    """Area under the ROC curve: the chance a random genuine score beats a random impostor (ties count half)."""
    far, tar, _ = roc(genuine, impostor)
    return float(np.trapezoid(tar, far))


def strict_cut(impostor, rate: float) -> float | None:
    """The score above which (strictly) at most ``rate`` of the impostors lie; None if not measurable."""
    impostor = np.sort(np.asarray(impostor, dtype=np.float64).ravel())[::-1]
    if impostor.size == 0 or impostor.size * rate < 1 - 1e-9:
        return None
    allowed = int(np.floor(impostor.size * rate + 1e-9))
    return float(impostor[allowed]) if allowed < impostor.size else -np.inf


@dataclass(frozen=True)
class OperatingPoint:
    """A threshold and what it gives: the genuine accept rate (TAR) at an impostor accept rate (FAR)."""

    far: float
    threshold: float
    tar: float
    false_accepts: int


def tar_at_far(genuine, impostor, far: float) -> OperatingPoint | None:
    """The best TAR whose FAR is at most ``far`` (None when there are fewer than 1/far impostors)."""
    genuine, impostor = _arrays(genuine, impostor)
    cut = strict_cut(impostor, far)
    if cut is None:
        return None
    threshold = float(np.nextafter(cut, np.inf)) if np.isfinite(cut) else float(min(genuine.min(), impostor.min()))
    return OperatingPoint(far, threshold, float(np.mean(genuine > cut)), int(np.sum(impostor > cut)))


def eer(genuine, impostor) -> tuple[float, float]:
    """Equal error rate (where FAR = 1 - TAR, linearly interpolated on the ROC) and its threshold."""
    far, tar, thresholds = roc(genuine, impostor)
    frr = 1.0 - tar
    index = int(np.argmax(far >= frr))  # first point where false accepts catch up with false rejects
    if index == 0:
        return float(far[0]), float(thresholds[1])
    d_prev, d_here = frr[index - 1] - far[index - 1], far[index] - frr[index]
    weight = d_prev / (d_prev + d_here) if d_prev + d_here > 0 else 0.0
    rate = far[index - 1] + weight * (far[index] - far[index - 1])
    low = thresholds[index - 1] if np.isfinite(thresholds[index - 1]) else thresholds[index]
    return float(rate), float(low + weight * (thresholds[index] - low))


def best_threshold(scores, same) -> tuple[float, float]:
    """The threshold that maximises accuracy on these pairs, and that accuracy.

    The threshold sits midway between the two neighbouring distinct scores it separates.
    """
    scores = np.asarray(scores, dtype=np.float64)
    same = np.asarray(same, dtype=bool)
    order = np.argsort(-scores, kind="stable")
    ranked, labels = scores[order], same[order]
    # accepting the top m pairs, m = 0..n; only cuts between distinct scores are possible
    genuine_in = np.concatenate([[0], np.cumsum(labels)])
    impostor_in = np.concatenate([[0], np.cumsum(~labels)])
    correct = genuine_in + (np.sum(~labels) - impostor_in)
    possible = np.concatenate([[True], ranked[1:] != ranked[:-1], [True]])
    correct = np.where(possible, correct, -1)
    m = int(np.argmax(correct))
    if m == 0:
        threshold = ranked[0] + 1e-6
    elif m == len(ranked):
        threshold = ranked[-1] - 1e-6
    else:
        threshold = (ranked[m - 1] + ranked[m]) / 2
    return float(threshold), float(correct[m] / len(ranked))


def k_fold_accuracy(scores, same, folds) -> tuple[np.ndarray, np.ndarray]:
    """The LFW protocol: per fold, the threshold chosen on all other folds and the accuracy on this one.

    Returns (accuracies, thresholds), one per fold in sorted fold order.
    """
    scores, same, folds = np.asarray(scores, float), np.asarray(same, bool), np.asarray(folds)
    if np.unique(folds).size < 2:
        raise ValueError("k-fold accuracy needs at least 2 folds")
    accuracies, thresholds = [], []
    for fold in np.unique(folds):
        test = folds == fold
        threshold, _ = best_threshold(scores[~test], same[~test])
        thresholds.append(threshold)
        accuracies.append(np.mean((scores[test] >= threshold) == same[test]))
    return np.array(accuracies), np.array(thresholds)


@dataclass(frozen=True)
class McNemar:
    """Two classifiers on the same pairs: how many pairs only the first / only the second got right."""

    only_first: int
    only_second: int
    p_value: float  # exact two-sided (binomial with p = 1/2 over the discordant pairs)


def mcnemar(first_correct, second_correct) -> McNemar:
    """McNemar's exact test: is the difference in errors on the same pairs more than chance?"""
    first, second = np.asarray(first_correct, bool), np.asarray(second_correct, bool)
    if first.shape != second.shape:
        raise ValueError("McNemar's test needs the same pairs on both sides")
    b, c = int(np.sum(first & ~second)), int(np.sum(~first & second))
    n = b + c
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2**n if n else 1.0
    return McNemar(b, c, min(1.0, 2 * tail))


@dataclass(frozen=True)
class IdentificationRates:
    """Closed-set CMC (rank -> rate over known probes) and open-set DIR ((rate, rank) -> DIR)."""

    cmc: dict[int, float]
    dir: dict[float, dict[int, float] | None]
    thresholds: dict[float, float | None]


def identification_rates(
    best_scores: np.ndarray,
    true_person: np.ndarray,
    usable: np.ndarray,
    *,
    ranks: tuple[int, ...] = (1, 5, 10),
    false_positive_rates: tuple[float, ...] = (1e-1, 1e-2),
) -> IdentificationRates:
    """Rates from a probe x gallery-person matrix of best similarity per person.

    ``true_person[i]`` is the gallery column of probe i's identity, or -1 for a probe whose person is not
    in the gallery (an impostor). ``usable[i]`` is False for a probe with no face: a known one counts as
    a miss at every rank, an unknown one is (correctly) never a false alarm.
    DIR at a false-positive identification rate f: the fraction of known probes found at rank <= r with a
    score above the threshold that lets through at most a fraction f of the unknown probes' top scores.
    """
    best_scores = np.asarray(best_scores, dtype=np.float64)
    true_person, usable = np.asarray(true_person), np.asarray(usable, bool)
    known = true_person >= 0
    rows = np.flatnonzero(known)
    true_scores = best_scores[rows, true_person[rows]]
    rank = 1 + np.sum(best_scores[rows] > true_scores[:, None], axis=1)
    rank = np.where(usable[rows], rank, np.iinfo(np.int64).max)
    cmc = {r: float(np.mean(rank <= r)) if rows.size else float("nan") for r in ranks}
    unknown_top = np.where(usable[~known], best_scores[~known].max(axis=1, initial=-np.inf), -np.inf)
    dir_rates: dict[float, dict[int, float] | None] = {}
    thresholds: dict[float, float | None] = {}
    for rate in false_positive_rates:
        cut = strict_cut(unknown_top, rate)
        thresholds[rate] = None if cut is None else float(np.nextafter(cut, np.inf))
        dir_rates[rate] = None if cut is None or not rows.size else {
            r: float(np.mean((rank <= r) & (true_scores > cut))) for r in ranks
        }
    return IdentificationRates(cmc, dir_rates, thresholds)

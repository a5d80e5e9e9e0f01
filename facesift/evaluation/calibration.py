"""Thresholds for target false-match rates, measured on every different-person pair of a dataset, written
into the embedder's model card so ``verify`` and search use measured operating points, never guesses.

Beyond the table: a generalised Pareto model of the impostor scores' upper tail (the rates a million-person
gallery needs, below what any pairs file can count), and how per-person aggregation changes a stranger's chance
to pass a person with several samples; :mod:`facesift.gallery.operating_point` turns both into thresholds."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from facesift.evaluation import metrics
from facesift.evaluation.datasets import IdentityDataset
from facesift.evaluation.embeddings import embed_images
from facesift.evaluation.pairs import FAILED_SCORE, ProgressCallback, _progress, all_pair_scores
from facesift.pipeline import DEFAULT_FACE_POLICY
from facesift.recognition.base import _PACKAGED_CARDS, ModelCard, _tail_threshold, load_card, save_card
from facesift.results import Serialisable

DEFAULT_RATES = (1e-1, 1e-2, 1e-3, 1e-4)
#: a rate is calibrated only when at least this many impostor pairs lie above its threshold
MIN_FALSE_MATCHES = 100
#: the tail model starts at this rate's threshold (about 19,500 exceedances on celeba300's 19.5 M pairs)
TAIL_START_RATE = 1e-3
#: and is fitted on the exceedances up to this rate's threshold: above it CelebA's label noise (one person filed
#: under two ids) dominates the count, which a model of different people must not learn
TAIL_FIT_LIMIT_RATE = 1e-5
#: rates the card reports from the tail model (a million-person gallery at FPIR 1e-2 needs about 1e-8)
TAIL_RATES = (1e-5, 1e-6, 1e-7, 1e-8)
#: two ids whose mean SFace embeddings are this similar are one human filed twice (label noise): their pairs are left out of
#: the tail model, which models different people (on celeba300 such pairs are 685 of the 726 pairs above cosine 0.6)
SAME_HUMAN_CENTROID = 0.55
SAME_HUMAN_MODEL = "sface"
#: samples per person at which the aggregation effect is measured
AGGREGATION_SAMPLES = (2, 3, 5, 8)


@dataclass(frozen=True)
class Calibration(Serialisable):
    """Thresholds (cosine) per false-match rate, and the genuine match rate each gives on the same data."""

    dataset: str
    model: str
    detector: str
    images: int
    images_with_face: int
    people: int
    impostor_pairs: int
    genuine_pairs: int
    thresholds: dict[str, float]
    true_match_rates: dict[str, float]
    refused: dict[str, str]
    seconds: float
    impostor_tail: dict = field(default_factory=dict)
    tail_thresholds: dict[str, float] = field(default_factory=dict)
    aggregation: dict = field(default_factory=dict)
    tail_check: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.model}+{self.detector}"

    def describe(self, command: str, note: str = "") -> str:
        """The card's ``calibration`` text: the data, the pairs, the command that made it, and ``note``."""
        name = Path(self.dataset).name
        text = (
            f"{name} ({self.people} people, {self.images_with_face:,} images with a face), all "
            f"{self.impostor_pairs:,} different-person pairs, {self.detector} + {self.model}; command: {command}"
        )
        if self.refused:
            text += f"; not calibrated: FMR {', '.join(self.refused)} ({next(iter(self.refused.values()))})"
        return f"{text}; {note}" if note else text


def calibrate(
    dataset: IdentityDataset,
    *,
    rates: tuple[float, ...] = DEFAULT_RATES,
    model: str = "sface",
    detector: str = "yunet",
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
    check: IdentityDataset | None = None,
    policy: str = DEFAULT_FACE_POLICY,
) -> Calibration:
    """For each false-match rate, the lowest cosine threshold that accepts at most that fraction of all
    different-person pairs (rounded to 4 decimals). Images with no face are left out (they would add pairs no threshold can match).
    A rate with fewer than ``MIN_FALSE_MATCHES`` impostor pairs above its threshold is refused, not guessed.
    The tail model (:func:`fit_tail`) and the aggregation effect (:func:`aggregation_effect`) come from the same
    pairs; ``check``, a dataset of other people, tests the tail model's thresholds on its different-person pairs.
    """
    started = time.perf_counter()
    images = list(dataset.images)
    embeddings = embed_images(images, model=model, detector=detector, cache_dir=cache_dir, policy=policy,
                              progress=_progress(progress, f"Embedding ({model}, {detector})"))
    vectors, usable = embeddings.matrix(images)
    labels = np.array(dataset.labels)
    genuine, impostor, _ = all_pair_scores(vectors[usable], vectors[usable], np.ones(usable.sum(), bool), labels[usable])
    impostor = np.sort(impostor[impostor > FAILED_SCORE])
    thresholds, matches, refused = {}, {}, {}
    for rate in sorted(rates, reverse=True):
        key = f"{rate:g}"
        if impostor.size * rate < MIN_FALSE_MATCHES:
            refused[key] = f"needs {MIN_FALSE_MATCHES / rate:,.0f} different-person pairs, the data has {impostor.size:,}"
            continue
        point = metrics.tar_at_far(genuine, impostor, rate)
        thresholds[key] = round(point.threshold, 4)  # the 5e-5 rounding moves FMR far less than its noise
        matches[key] = point.tar
    reference, known = same_human_vectors(images, vectors, usable, model, detector, cache_dir, progress, policy)
    same_human = same_humans(reference[known], labels[known])
    merged = merge_labels(labels[usable], same_human)
    tail, tail_thresholds, aggregation, tail_check = {}, {}, {}, {}
    if impostor.size * TAIL_START_RATE >= MIN_FALSE_MATCHES:  # else no tail model: the card offers its table alone
        clean = impostor
        if same_human:
            _, clean, _ = all_pair_scores(vectors[usable], vectors[usable], np.ones(usable.sum(), bool), merged)
            clean = np.sort(clean)
        tail = fit_tail(clean) | {
            "left_out": f"{len(same_human)} id pairs that are one human filed twice (mean {SAME_HUMAN_MODEL} embeddings >= {SAME_HUMAN_CENTROID}): "
            + ", ".join(f"{dataset.people[a]}={dataset.people[b]}" for a, b in same_human)
        }
        tail_thresholds = {f"{rate:g}": round(_tail_threshold(tail, rate), 4) for rate in TAIL_RATES}
        aggregation = aggregation_effect(vectors[usable], merged, [_tail_threshold(tail, r) for r in (1e-3, 1e-4, 1e-5)])
        tail_check = check_tail(tail, thresholds, check, model, detector, cache_dir, progress) if check is not None else {}
    return Calibration(
        dataset=str(dataset.root), model=model, detector=detector, images=len(images),
        images_with_face=int(usable.sum()), people=len(set(labels[usable])), impostor_pairs=int(impostor.size),
        genuine_pairs=int(genuine.size), thresholds=thresholds, true_match_rates=matches, refused=refused,
        seconds=time.perf_counter() - started, impostor_tail=tail, tail_thresholds=tail_thresholds, aggregation=aggregation,
        tail_check=tail_check,
    )


def check_tail(tail: dict, table: dict[str, float], check: IdentityDataset, model: str, detector: str,
               cache_dir: Path | None, progress: ProgressCallback | None) -> dict:
    """The false-match rate the card's thresholds give on every different-person pair of ``check`` (people the
    calibration never saw), with the count behind each rate and what an exact binomial interval allows."""
    from scipy import stats

    images = list(check.images)
    embeddings = embed_images(images, model=model, detector=detector, cache_dir=cache_dir,
                              progress=_progress(progress, f"Embedding the check data ({model}, {detector})"))
    vectors, usable = embeddings.matrix(images)
    labels = np.array(check.labels)
    _, impostor, _ = all_pair_scores(vectors[usable], vectors[usable], np.ones(usable.sum(), bool), labels[usable])
    impostor = np.sort(impostor)
    rows = {}
    for rate in (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7):
        threshold = table[f"{rate:g}"] if rate >= tail["rate"] and f"{rate:g}" in table else _tail_threshold(tail, rate)
        count = int(impostor.size - np.searchsorted(impostor, threshold, side="left"))
        low, high = stats.binomtest(count, impostor.size).proportion_ci(0.95, method="exact")
        rows[f"{rate:g}"] = {"threshold": round(float(threshold), 4), "false_matches": count, "measured": count / impostor.size,
                             "ci95": [float(low), float(high)]}
    return {"dataset": str(check.root), "people": len(set(labels[usable])), "pairs": int(impostor.size), "rates": rows}


def same_human_vectors(
    images: Sequence[Path], vectors: np.ndarray, usable: np.ndarray, model: str, detector: str, cache_dir: Path | None,
    progress: ProgressCallback | None, policy: str = DEFAULT_FACE_POLICY,
) -> tuple[np.ndarray, np.ndarray]:
    """The :data:`SAME_HUMAN_MODEL` vectors of ``images`` and which have a face: ``vectors`` and ``usable`` themselves
    when ``model`` is that model. Which ids are one human is a fact about the data, not the model: SFace, whose cosine
    the limit is in, decides it for every model (another model's centres may sit closer together: dlib's different
    people share much more)."""
    if model == SAME_HUMAN_MODEL:
        return vectors, usable
    return embed_images(images, model=SAME_HUMAN_MODEL, detector=detector, cache_dir=cache_dir, policy=policy,
                        progress=_progress(progress, f"Embedding ({SAME_HUMAN_MODEL}, {detector}) for ids filed twice")).matrix(images)


def same_humans(vectors: np.ndarray, labels: np.ndarray, limit: float = SAME_HUMAN_CENTROID) -> list[tuple[int, int]]:
    """Every two ids whose mean embeddings (SFace's: ``limit`` is in its cosine) reach ``limit``."""
    people = np.unique(labels)
    centres = np.stack([vectors[labels == p].mean(axis=0) for p in people])
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    similar = np.triu(centres @ centres.T, 1) >= limit
    return [(int(people[i]), int(people[j])) for i, j in zip(*np.nonzero(similar), strict=True)]


def merge_labels(labels: np.ndarray, pairs: list[tuple[int, int]]) -> np.ndarray:
    """``labels`` with the two ids of every pair made one."""
    root = {int(p): int(p) for p in np.unique(labels)} | {p: p for pair in pairs for p in pair}

    def find(p: int) -> int:
        while root[p] != p:
            p = root[p]
        return p

    for a, b in pairs:
        root[find(b)] = find(a)
    return np.array([find(int(p)) for p in labels])


def fit_tail(sorted_impostor: np.ndarray, start_rate: float = TAIL_START_RATE, limit_rate: float = TAIL_FIT_LIMIT_RATE) -> dict:
    """Generalised Pareto fit (maximum likelihood, scipy) of the impostor scores above the ``start_rate`` threshold,
    the exceedances censored at the ``limit_rate`` threshold: what lies above it counts as "more than the limit",
    its value unused, so a few mislabelled same-person pairs near cosine 1 cannot fatten the fitted tail."""
    from scipy import optimize, stats

    n = sorted_impostor.size
    start_index, limit_index = n - int(round(n * start_rate)), n - int(round(n * limit_rate))
    if n - start_index < MIN_FALSE_MATCHES:
        raise ValueError(f"A tail model needs {MIN_FALSE_MATCHES / start_rate:,.0f} different-person pairs, the data has {n:,}")
    u = float(sorted_impostor[start_index - 1])
    cap = float(sorted_impostor[limit_index - 1]) - u
    excess = sorted_impostor[start_index:limit_index].astype(np.float64) - u
    excess = excess[excess > 0]
    censored = n - limit_index

    def negative_log_likelihood(params: np.ndarray) -> float:
        shape, log_scale = params
        scale = np.exp(log_scale)
        inside = stats.genpareto.logpdf(excess, shape, scale=scale).sum()
        beyond = stats.genpareto.logsf(cap, shape, scale=scale) * censored
        value = -(inside + beyond)
        return float(value) if np.isfinite(value) else 1e300

    start = stats.genpareto.fit(excess, floc=0)
    fitted = optimize.minimize(negative_log_likelihood, np.array([start[0], np.log(start[2])]), method="Nelder-Mead")
    shape, scale = float(fitted.x[0]), float(np.exp(fitted.x[1]))
    return {
        "threshold": round(u, 6), "rate": float(f"{(n - start_index) / n:.4g}"), "shape": round(shape, 6), "scale": round(scale, 6),
        "pairs": int(n), "exceedances": int(n - start_index), "censored_above": round(u + cap, 6), "censored": int(censored),
        "method": "generalised Pareto, maximum likelihood, censored at the FMR 1e-5 threshold",
    }


def aggregation_effect(vectors: np.ndarray, labels: np.ndarray, thresholds: list[float], seed: int = 0) -> dict:
    """For each aggregation, the exponent a in "a stranger passes a person with m samples m ** a times as often as
    one sample": enrol m random samples of every person with more than m, probe with every other person's images,
    count aggregated scores above each threshold against single-sample scores; a is the least-squares slope of
    log(ratio) against log(m) (through the origin), over the thresholds and m."""
    from facesift.gallery.gallery import MEAN_TOP

    rng = np.random.default_rng(seed)
    people = np.unique(labels)
    points: dict[str, list[tuple[float, float]]] = {"best": [], "mean_top": []}
    measured: dict[str, dict[str, float]] = {"best": {}, "mean_top": {}}
    single = np.zeros(len(thresholds))
    single_total = 0
    for m in AGGREGATION_SAMPLES:
        passed = {name: np.zeros(len(thresholds)) for name in points}
        trials = 0
        for person in people:
            own = np.flatnonzero(labels == person)
            if len(own) <= m:
                continue
            chosen = rng.choice(own, m, replace=False)
            strangers = vectors[labels != person]
            sims = strangers @ vectors[chosen].T  # (strangers, m)
            top = np.sort(sims, axis=1)[:, ::-1]
            scores = {"best": top[:, 0], "mean_top": top[:, :MEAN_TOP].mean(axis=1)}
            for name, score in scores.items():
                passed[name] += [(score >= t).sum() for t in thresholds]
            if m == AGGREGATION_SAMPLES[0]:
                single += [(sims[:, 0] >= t).sum() for t in thresholds]
                single_total += len(strangers)
            trials += len(strangers)
        for name in points:
            for t_index, count in enumerate(passed[name]):
                base = single[t_index] / max(single_total, 1)
                if count > 0 and base > 0:
                    ratio = (count / trials) / base
                    points[name].append((np.log(m), np.log(ratio)))
                    measured[name][f"m={m} t={thresholds[t_index]:.3f}"] = round(float(ratio), 3)
    out = {}
    for name, pts in points.items():
        if pts:
            x, y = np.array(pts).T
            out[name] = {"exponent": round(float((x @ y) / (x @ x)), 4), "ratios": measured[name]}
    return out


def write_card(
    calibration: Calibration, command: str, *, note: str = "", packaged: bool = False, folder: Path | None = None
) -> Path:
    """Put the calibrated thresholds into the model card: the user's cards folder (which then takes
    precedence over the shipped card), ``folder``, or with ``packaged`` the card that ships in facesift."""
    card: ModelCard = load_card(calibration.model)
    if not calibration.thresholds:
        raise ValueError("The calibration produced no thresholds; the data has too few different-person pairs")
    default = card.default_false_match_rate
    if f"{default:g}" not in calibration.thresholds:
        default = float(min(calibration.thresholds, key=lambda k: abs(np.log(float(k)) - np.log(default))))
    updated = replace(
        card, thresholds=dict(sorted(calibration.thresholds.items(), key=lambda kv: -float(kv[0]))),
        default_false_match_rate=default, calibration=calibration.describe(command, note),
        impostor_tail=calibration.impostor_tail, aggregation=calibration.aggregation,
    )
    return save_card(updated, _PACKAGED_CARDS if packaged else folder)

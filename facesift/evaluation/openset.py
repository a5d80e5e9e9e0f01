"""Open-set identification as a gallery lives it: enrol G people, search with other photos of them and with
photos of people never enrolled, at the operating point the gallery itself would choose for G people.

For each G of a ladder (10 up to every person the data can enrol) the threshold comes from
:func:`facesift.gallery.operating_point` (the model card's impostor tail and aggregation effect), never from
these probes; what is measured is whether it keeps its promise: FPIR measured against FPIR targeted, and how
many enrolled people's photos are still found (DIR: rank 1 and accepted). Small galleries are drawn several
times (different people each draw) so their FPIR is counted over enough stranger searches. Beyond the real
people, G grows with synthetic people (drawn like ``benchmarks/gallery.py`` draws them), labelled as such.

Pooled public sets share people (the same celebrity in CelebA, Pins, LAG and FIW under four ids): a stranger who is
such a person's second id is not a stranger, and counting their matches as false positives measures the labels, not
the threshold. Ids of *different* sources whose mean SFace embeddings reach the calibration's same-human limit are
made one person (listed in the report); ids within one source keep that source's labels. FPIR is also given per
source of the strangers, at the largest real gallery.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from facesift.evaluation.calibration import SAME_HUMAN_CENTROID, SAME_HUMAN_MODEL, merge_labels, same_human_vectors, same_humans
from facesift.evaluation.datasets import IdentityDataset
from facesift.evaluation.embeddings import embed_images
from facesift.evaluation.pairs import ProgressCallback, _progress
from facesift.gallery.gallery import MEAN_TOP
from facesift.gallery.operating_point import AGGREGATIONS, DEFAULT_FPIR, operating_point
from facesift.recognition import load_card
from facesift.results import Face, Serialisable

LADDER = (10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
SYNTHETIC_LADDER = (10_000, 100_000, 1_000_000)
#: fraction of the people with enough photos kept out of every gallery as strangers (with everyone who has one photo)
STRANGER_FRACTION = 0.3
MAX_DRAWS = 20
#: strangers the age head puts below this apparent age are counted apart (the calibration holds adults)
CHILD_AGE = 13


@dataclass(frozen=True)
class OpenSetPoint(Serialisable):
    """One gallery size: the operating point used and what it gave."""

    gallery_size: int
    synthetic_people: int
    samples: int
    draws: int
    threshold: float
    fpir_target: float
    fpir: float
    stranger_searches: int
    false_positives: int
    dir: float
    rank1: float
    mated_searches: int

    @property
    def fpir_ratio(self) -> float:
        return self.fpir / self.fpir_target


@dataclass(frozen=True)
class OpenSetReport(Serialisable):
    dataset: str
    roots: tuple[str, ...]
    model: str
    detector: str
    aggregation: str
    samples_per_person: int
    fpir_target: float
    people: int
    enrollable_people: int
    stranger_people: int
    stranger_probes: int
    failed_images: int
    sizes: tuple[OpenSetPoint, ...]
    notes: tuple[str, ...]
    seconds: float
    #: "a = b" for every two ids of different sources made one person
    same_humans: tuple[str, ...] = ()
    #: at the largest real gallery, per source of the strangers: (false positives, stranger searches)
    fpir_by_source: dict[str, tuple[int, int]] | None = None
    #: at the largest real gallery, strangers under and over :data:`CHILD_AGE` by the age head: (false positives, searches)
    fpir_by_apparent_age: dict[str, tuple[int, int]] | None = None

    @property
    def label(self) -> str:
        return f"{self.model}+{self.detector} {self.aggregation}, {self.samples_per_person} photo(s) each"


def synthetic_people(real: np.ndarray, labels: np.ndarray, people: int, per_person: int, seed: int) -> np.ndarray:
    """(people, per_person, dims) synthetic samples shaped like the real ones: a centre from the Gaussian fitted to
    the real people's means, plus per-sample deviations from the Gaussian fitted to the within-person deviations
    (the construction of ``benchmarks/gallery.py``), L2-normalised."""
    rng = np.random.default_rng(seed)
    names, index = np.unique(labels, return_inverse=True)
    centres = np.stack([real[index == i].mean(axis=0) for i in range(len(names))])
    dims = real.shape[1]
    centre_factor = np.linalg.cholesky(np.cov(centres, rowvar=False) + 1e-6 * np.eye(dims))
    within_factor = np.linalg.cholesky(np.cov(real - centres[index], rowvar=False) + 1e-6 * np.eye(dims))
    drawn = centres.mean(axis=0) + rng.standard_normal((people, 1, dims)) @ centre_factor.T
    drawn = drawn + rng.standard_normal((people, per_person, dims)) @ within_factor.T
    return (drawn / np.linalg.norm(drawn, axis=2, keepdims=True)).astype(np.float32)


def _aggregate(sims: np.ndarray, aggregation: str) -> np.ndarray:
    """(probes, people, samples) similarities -> (probes, people) person scores, as the gallery aggregates them."""
    if aggregation == "best" or sims.shape[2] == 1:
        return sims.max(axis=2)
    top = -np.sort(-sims, axis=2)[:, :, :MEAN_TOP]
    return top.mean(axis=2)


def evaluate_open_set(
    dataset: IdentityDataset,
    *,
    roots: Sequence[str | Path] = (),
    model: str = "sface",
    detector: str = "yunet",
    aggregation: str = "best",
    samples_per_person: int = 1,
    fpir: float = DEFAULT_FPIR,
    ladder: Sequence[int] = LADDER,
    synthetic: Sequence[int] = (),
    synthetic_probes: int = 1000,
    seed: int = 0,
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
) -> OpenSetReport:
    """The protocol above; ``synthetic`` lists total gallery sizes to reach with synthetic people."""
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"Unknown aggregation {aggregation!r}; choose one of {', '.join(AGGREGATIONS)}")
    if samples_per_person < 1:
        raise ValueError("Enrol at least one photo per person")
    started = time.perf_counter()
    card = load_card(model)
    images = list(dataset.images)
    embeddings = embed_images(images, model=model, detector=detector, cache_dir=cache_dir,
                              progress=_progress(progress, f"Embedding ({model}, {detector})"))
    vectors, usable = embeddings.matrix(images)
    labels = np.array(dataset.labels)
    # SFace's vectors decide which ids are one human (they are in SFace's space whatever the model)
    reference, known = same_human_vectors(images, vectors, usable, model, detector, cache_dir, progress)
    merged_pairs: list[tuple[int, int]] = []
    if len(roots) > 1:  # pooled sources: the same human under an id in each is one person
        merged_pairs = [(a, b) for a, b in same_humans(reference[known], labels[known])
                        if _source(dataset.people[a]) != _source(dataset.people[b])]
        labels = merge_labels(labels, merged_pairs)
    labels = labels[usable]
    vectors = vectors[usable]
    rng = np.random.default_rng(seed)
    counts = np.bincount(labels, minlength=len(dataset.people))
    present = np.flatnonzero(counts > 0)
    enough = rng.permutation(np.flatnonzero(counts > samples_per_person))
    cut = round(len(enough) * STRANGER_FRACTION)
    pool, strangers = enough[cut:], np.union1d(enough[:cut], np.setdiff1d(present, enough))
    if len(pool) < 2 or not len(strangers):
        raise ValueError(f"The data has too few people with more than {samples_per_person} photos to enrol and strangers to probe")
    # each pool person's enrolled samples (the first photos in a seeded shuffle) and other photos (mated probes)
    enrolled = np.empty((len(pool), samples_per_person), dtype=np.int64)
    mated_rows, mated_owner = [], []
    for slot, person in enumerate(pool):
        rows = rng.permutation(np.flatnonzero(labels == person))
        enrolled[slot] = rows[:samples_per_person]
        mated_rows.extend(rows[samples_per_person:])
        mated_owner.extend([slot] * (len(rows) - samples_per_person))
    mated_rows, mated_owner = np.array(mated_rows), np.array(mated_owner)
    stranger_rows = np.flatnonzero(np.isin(labels, strangers))
    gallery = vectors[enrolled]  # (pool, k, dims)
    stranger_sims = _aggregate(np.einsum("pd,gkd->pgk", vectors[stranger_rows], gallery, optimize=True), aggregation)
    mated_sims = _aggregate(np.einsum("pd,gkd->pgk", vectors[mated_rows], gallery, optimize=True), aggregation)
    stranger_sources = np.array([_source(dataset.people[p]) for p in labels[stranger_rows]])
    sizes = sorted({g for g in ladder if 2 <= g < len(pool)} | {len(pool)})
    points = []
    for size in sizes:
        draws = max(1, min(MAX_DRAWS, len(pool) // size))
        false_pos = found = correct = searches = 0
        point = operating_point(card, size, fpir, aggregation, size * samples_per_person)
        for _ in range(draws):
            chosen = rng.choice(len(pool), size, replace=False) if size < len(pool) else np.arange(len(pool))
            passed = stranger_sims[:, chosen].max(axis=1) >= point.threshold
            false_pos += int(passed.sum())
            in_gallery = np.isin(mated_owner, chosen)
            scores = mated_sims[in_gallery][:, chosen]
            top = chosen[scores.argmax(axis=1)]
            right = top == mated_owner[in_gallery]
            correct += int(right.sum())
            found += int((right & (scores.max(axis=1) >= point.threshold)).sum())
            searches += int(in_gallery.sum())
        if size == len(pool):  # one draw, the whole pool: ``passed`` is every stranger's search against it
            by_source = {name: (int(passed[stranger_sources == name].sum()), int((stranger_sources == name).sum()))
                         for name in sorted(set(stranger_sources))}
            usable_images = [image for image, ok in zip(images, usable, strict=True) if ok]
            ages = _apparent_ages([usable_images[row] for row in stranger_rows], embeddings.faces)
            by_age = {name: (int(passed[group].sum()), int(group.sum()))
                      for name, group in ((f"under {CHILD_AGE}", ages < CHILD_AGE), (f"{CHILD_AGE} and over", ages >= CHILD_AGE))
                      if group.any()}
        stranger_searches = draws * len(stranger_rows)
        points.append(OpenSetPoint(size, 0, size * samples_per_person, draws, round(point.threshold, 4), fpir,
                                   false_pos / stranger_searches, stranger_searches, false_pos, found / max(searches, 1),
                                   correct / max(searches, 1), searches))
    for total in sorted(g for g in synthetic if g > len(pool)):
        points.append(_synthetic_point(card, vectors, labels, gallery, stranger_rows, mated_rows, mated_owner,
                                       total, fpir, aggregation, samples_per_person, synthetic_probes, seed))
    notes = (
        f"People are split once (seed {seed}): {len(strangers)} strangers (everyone with at most {samples_per_person} photo(s), and "
        f"{STRANGER_FRACTION:.0%} of the rest) are never enrolled; every gallery is drawn from the other {len(pool)}.",
        f"The threshold of each gallery size is the operating point facesift.gallery.operating_point gives for the target FPIR "
        f"{fpir:g} (from the model card's impostor tail and aggregation effect), not fitted on these probes.",
        "DIR: a mated search whose rank-1 person is right and whose score reaches the threshold. FPIR: a stranger's search "
        "whose best person reaches the threshold. Gallery sizes below the largest are drawn several times (draws).",
    ) + ((f"Rows with synthetic people: the {len(pool)} real people plus synthetic ones drawn like benchmarks/gallery.py "
          f"draws them; {synthetic_probes} stranger and {synthetic_probes} mated probes. Synthetic people are not faces: "
          "their rows show how the real probes fare among many more vectors, not accuracy on real people.",) if synthetic else ()) + (
        (f"{len(merged_pairs)} pairs of ids in two sources are one person (mean {SAME_HUMAN_MODEL} embeddings >= "
         f"{SAME_HUMAN_CENTROID}) and were made one (same_humans in results.json).",) if merged_pairs else ()) + (
        (f"FPIR by the strangers' source at {len(pool)} people: "
         + "; ".join(f"{name} {fp / n:.2%} ({fp} of {n:,})" for name, (fp, n) in by_source.items()) + ".",) if len(roots) > 1 else ()) + (
        (f"FPIR by the strangers' apparent age (the analysis age head) at {len(pool)} people: "
         + "; ".join(f"{name} {fp / n:.2%} ({fp} of {n:,})" for name, (fp, n) in by_age.items())
         + (". The card is calibrated on adults: children's faces match each other far more often."
            if f"under {CHILD_AGE}" in by_age else "."),)
        if by_age else ())
    return OpenSetReport(
        dataset=str(dataset.root), roots=tuple(map(str, roots)) or (str(dataset.root),), model=model, detector=detector,
        aggregation=aggregation, samples_per_person=samples_per_person, fpir_target=fpir, people=len(present),
        enrollable_people=len(pool), stranger_people=len(strangers), stranger_probes=len(stranger_rows),
        failed_images=int((~usable).sum()), sizes=tuple(points), notes=notes, seconds=time.perf_counter() - started,
        same_humans=tuple(f"{dataset.people[a]} = {dataset.people[b]}" for a, b in merged_pairs),
        fpir_by_source=by_source if len(roots) > 1 else None, fpir_by_apparent_age=by_age or None,
    )


def _apparent_ages(images: Sequence[Path], faces: Mapping[Path, Face]) -> np.ndarray:
    """The analysis age network on the face of each image that was embedded (``faces``, as the embedding step found
    it; NaN where no age network ships): it reads SFace's own maps of the aligned crop, so it runs on the photos."""
    from facesift.analysis.analyzer import analyze_faces, sface_crop
    from facesift.analysis.heads import load_heads
    from facesift.image import load_image

    ages = np.full(len(images), np.nan)
    if "age" not in load_heads():
        return ages
    for start in range(0, len(images), 64):
        crops = [sface_crop(load_image(path), faces[path]) for path in images[start : start + 64]]
        ages[start : start + len(crops)] = [estimate.years for estimate in analyze_faces(crops, None, ("age",))["age"]]
    return ages


def _source(person: str) -> str:
    """The set a pooled person comes from (pooled names are ``<folder>/<person>``)."""
    return person.split("/", 1)[0]


def _synthetic_point(card, vectors, labels, gallery, stranger_rows, mated_rows, mated_owner, total, fpir, aggregation,
                     samples_per_person, probes, seed) -> OpenSetPoint:
    """The whole real pool plus ``total - pool`` synthetic people, searched in blocks (a million people fit in memory
    only as a stream)."""
    rng = np.random.default_rng(seed + total)
    strangers = vectors[rng.choice(stranger_rows, min(probes, len(stranger_rows)), replace=False)]
    pick = rng.choice(len(mated_rows), min(probes, len(mated_rows)), replace=False)
    mated, owner = vectors[mated_rows[pick]], mated_owner[pick]
    point = operating_point(card, total, fpir, aggregation, total * samples_per_person)
    stranger_best = _aggregate(np.einsum("pd,gkd->pgk", strangers, gallery, optimize=True), aggregation).max(axis=1)
    real_scores = _aggregate(np.einsum("pd,gkd->pgk", mated, gallery, optimize=True), aggregation)
    mated_top, mated_best = real_scores.argmax(axis=1), real_scores.max(axis=1)
    extra = total - len(gallery)
    for start in range(0, extra, 50_000):
        block = synthetic_people(vectors, labels, min(50_000, extra - start), samples_per_person, seed + start + 1)
        stranger_best = np.maximum(
            stranger_best, _aggregate(np.einsum("pd,gkd->pgk", strangers, block, optimize=True), aggregation).max(axis=1)
        )
        fake = _aggregate(np.einsum("pd,gkd->pgk", mated, block, optimize=True), aggregation).max(axis=1)
        beaten = fake > mated_best
        mated_top[beaten], mated_best = -1, np.maximum(mated_best, fake)
    right = mated_top == owner
    false_pos = int((stranger_best >= point.threshold).sum())
    return OpenSetPoint(total, extra, total * samples_per_person, 1, round(point.threshold, 4), fpir, false_pos / len(strangers),
                        len(strangers), false_pos, float((right & (mated_best >= point.threshold)).mean()), float(right.mean()), len(mated))

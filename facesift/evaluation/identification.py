"""Open-set identification, all against all: each image in turn is the probe, every other image the gallery."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facesift.evaluation import metrics
from facesift.evaluation.datasets import IdentityDataset, read_attributes
from facesift.evaluation.degradations import CropDegradation
from facesift.evaluation.pairs import ProgressCallback, _embed_sides, far_key, run_label
from facesift.pipeline import DEFAULT_FACE_POLICY
from facesift.results import Serialisable, unserialised

RANKS = (1, 5, 10)
FPIR_TARGETS = (1e-1, 1e-2, 1e-3)


@dataclass(frozen=True)
class IdentificationSlice(Serialisable):
    """Rank-1 rate of the known probes whose image has this attribute value."""

    attribute: str
    value: str
    known_probes: int
    rank1: float


@dataclass(frozen=True)
class IdentificationReport(Serialisable):
    """Closed-set CMC over known probes, open-set DIR at false-positive identification rates."""

    dataset: str
    model: str
    detector: str
    degradation: str
    images: int
    people: int
    failed_images: int
    gallery_images: int
    known_probes: int
    unknown_probes: int
    unknown_people: int
    cmc: dict[int, float]
    dir: dict[str, dict[int, float] | None]
    dir_thresholds: dict[str, float | None]
    notes: tuple[str, ...]
    slices: tuple[IdentificationSlice, ...]
    failures: dict[str, str]
    seconds: float
    known_top: np.ndarray = unserialised(compare=False)
    unknown_top: np.ndarray = unserialised(compare=False)
    #: which face of a photo with several was used (pipeline.FACE_POLICIES)
    policy: str = DEFAULT_FACE_POLICY

    @property
    def label(self) -> str:
        return run_label(self.model, self.detector, self.degradation, self.policy)


def unknown_people(count: int, fraction: float) -> np.ndarray:
    """Which of ``count`` people (in sorted order) to hold out of the gallery: ``fraction`` of them, evenly spread."""
    if not 0 <= fraction < 1:
        raise ValueError(f"The unknown fraction must be in [0, 1), got {fraction}")
    index = np.arange(count)
    return np.floor((index + 1) * fraction) > np.floor(index * fraction)


def best_per_person(
    probes: np.ndarray, gallery: np.ndarray, gallery_person: np.ndarray, people: int, exclude: np.ndarray, *, block: int = 1024
) -> np.ndarray:
    """(probes, people) best cosine per person; ``exclude[i]`` is the gallery row of probe i itself (or -1)."""
    order = np.argsort(gallery_person, kind="stable")
    gallery, gallery_person = gallery[order], gallery_person[order]
    position = np.full(len(order) + 1, -1)  # sorted column of each gallery row; the extra slot maps -1 to -1
    position[order] = np.arange(len(order))
    starts = np.searchsorted(gallery_person, np.arange(people))
    present = np.isin(np.arange(people), gallery_person)
    out = np.full((len(probes), people), -np.inf, dtype=np.float32)
    for start in range(0, len(probes), block):
        rows = np.arange(start, min(start + block, len(probes)))
        scores = probes[rows] @ gallery.T
        own = position[exclude[rows]]
        scores[(own >= 0).nonzero()[0], own[own >= 0]] = -np.inf
        if gallery.shape[0]:
            out[rows[:, None], np.flatnonzero(present)[None, :]] = np.maximum.reduceat(scores, starts[present], axis=1)
    return out


def evaluate_identification(
    dataset: IdentityDataset,
    *,
    model: str = "sface",
    detector: str = "yunet",
    degradation: CropDegradation | str | None = None,
    unknown_fraction: float = 0.0,
    attributes: str | Path | None = None,
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
    policy: str = DEFAULT_FACE_POLICY,
) -> IdentificationReport:
    """All-against-all open-set identification on an identity-folder set.

    Each image is a probe against all other images (its own excluded). A probe is *known* when another
    image of its person is in the gallery, else *unknown* (an impostor): people with a single image, and
    the ``unknown_fraction`` of people held out of the gallery. With ``degradation`` the probes are degraded,
    the gallery stays clean. An image with no face is left out of the gallery; as a probe it is a miss when
    known and never a false alarm when unknown.
    """
    started = time.perf_counter()
    if isinstance(degradation, str):
        degradation = CropDegradation.parse(degradation)
    images = list(dataset.images)
    clean, damaged = _embed_sides(images, images, model, detector, degradation, cache_dir, progress, policy)
    gallery_vectors, in_gallery = clean.matrix(images)
    probe_vectors, usable = damaged.matrix(images)
    labels = np.array(dataset.labels)
    held_out = unknown_people(len(dataset.people), unknown_fraction)
    in_gallery &= ~held_out[labels]
    gallery_rows = np.flatnonzero(in_gallery)
    row_in_gallery = np.full(len(images), -1)
    row_in_gallery[gallery_rows] = np.arange(gallery_rows.size)
    best = best_per_person(
        probe_vectors, gallery_vectors[gallery_rows], labels[gallery_rows], len(dataset.people), row_in_gallery
    )
    # known: the person has a gallery image other than the probe itself
    gallery_count = np.bincount(labels[gallery_rows], minlength=len(dataset.people))
    others = gallery_count[labels] - in_gallery.astype(int)
    true_person = np.where(others > 0, labels, -1)
    rates = metrics.identification_rates(best, true_person, usable, ranks=RANKS, false_positive_rates=FPIR_TARGETS)
    known = true_person >= 0
    failures = {str(k): v for k, v in {**clean.failures, **damaged.failures}.items()}
    notes = [
        "CMC rank-k: fraction of known probes whose person is among the k best-scoring gallery people (closed set)",
        "DIR at FPIR f, rank k: fraction of known probes found at rank <= k above the threshold that lets through "
        "a fraction f of the unknown probes",
    ]
    unmeasured = [f"{rate:g}" for rate, value in rates.dir.items() if value is None]
    if unmeasured:
        notes.append(
            f"DIR at FPIR {', '.join(unmeasured)} not measurable: {int((~known).sum())} unknown probes "
            "(needs at least 1/FPIR; hold people out of the gallery with --unknown-fraction)"
        )
    top = np.where(usable, best.max(axis=1, initial=-np.inf), -np.inf)
    true_scores = best[np.flatnonzero(known), true_person[known]]
    return IdentificationReport(
        dataset=str(dataset.root), model=clean.model, detector=detector, degradation=degradation.name if degradation else "clean",
        images=len(images), people=len(dataset.people), failed_images=len(failures), gallery_images=int(gallery_rows.size),
        known_probes=int(known.sum()), unknown_probes=int((~known).sum()), unknown_people=int(held_out.sum()),
        cmc=rates.cmc, dir={far_key(r): v for r, v in rates.dir.items()},
        dir_thresholds={far_key(r): v for r, v in rates.thresholds.items()}, notes=tuple(notes),
        slices=_slices(dataset, attributes, best, true_person, usable) if attributes else (),
        failures=failures, seconds=time.perf_counter() - started,
        known_top=true_scores[np.isfinite(true_scores)], unknown_top=top[~known & np.isfinite(top)], policy=policy,
    )


def _slices(dataset, attributes, best, true_person, usable) -> tuple[IdentificationSlice, ...]:
    results = []
    for attribute, values in read_attributes(attributes, dataset.root, dataset.images).items():
        groups: dict[str, list[int]] = {}
        for row, image in enumerate(dataset.images):
            if true_person[row] >= 0 and image in values:
                groups.setdefault(values[image], []).append(row)
        for value, rows in sorted(groups.items()):
            rows = np.array(rows)
            rates = metrics.identification_rates(best[rows], true_person[rows], usable[rows], ranks=(1,), false_positive_rates=())
            results.append(IdentificationSlice(attribute, value, rows.size, rates.cmc[1]))
    return tuple(results)

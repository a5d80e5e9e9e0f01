"""Thresholds for target false-match rates, measured on every different-person pair of a dataset, written
into the embedder's model card so ``verify`` and search use measured operating points, never guesses."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from facesift.evaluation import metrics
from facesift.evaluation.datasets import IdentityDataset
from facesift.evaluation.embeddings import embed_images
from facesift.evaluation.verification import ProgressCallback, _progress, all_pair_scores
from facesift.pipeline import DEFAULT_FACE_POLICY
from facesift.recognition.base import _PACKAGED_CARDS, ModelCard, load_card, save_card
from facesift.results import _ToDict

DEFAULT_RATES = (1e-1, 1e-2, 1e-3, 1e-4)
#: a rate is calibrated only when at least this many impostor pairs lie above its threshold
MIN_FALSE_MATCHES = 100


@dataclass(frozen=True)
class Calibration(_ToDict):
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
    policy: str = DEFAULT_FACE_POLICY,
) -> Calibration:
    """For each false-match rate, the lowest cosine threshold that accepts at most that fraction of all
    different-person pairs (rounded to 4 decimals). Images with no face are left out (they would add pairs no threshold can match).
    A rate with fewer than ``MIN_FALSE_MATCHES`` impostor pairs above its threshold is refused, not guessed.
    """
    started = time.perf_counter()
    images = list(dataset.images)
    embeddings = embed_images(images, model=model, detector=detector, cache_dir=cache_dir, policy=policy,
                              progress=_progress(progress, f"Embedding ({model}, {detector})"))
    vectors, usable = embeddings.matrix(images)
    labels = np.array(dataset.labels)
    genuine, impostor, _ = all_pair_scores(vectors[usable], vectors[usable], np.ones(usable.sum(), bool), labels[usable])
    thresholds, matches, refused = {}, {}, {}
    for rate in sorted(rates, reverse=True):
        key = f"{rate:g}"
        if impostor.size * rate < MIN_FALSE_MATCHES:
            refused[key] = f"needs {MIN_FALSE_MATCHES / rate:,.0f} different-person pairs, the data has {impostor.size:,}"
            continue
        point = metrics.tar_at_far(genuine, impostor, rate)
        thresholds[key] = round(point.threshold, 4)  # the 5e-5 rounding moves FMR far less than its noise
        matches[key] = point.tar
    return Calibration(
        dataset=str(dataset.root), model=model, detector=detector, images=len(images),
        images_with_face=int(usable.sum()), people=len(set(labels[usable])), impostor_pairs=int(impostor.size),
        genuine_pairs=int(genuine.size), thresholds=thresholds, true_match_rates=matches, refused=refused,
        seconds=time.perf_counter() - started,
    )


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
    )
    return save_card(updated, _PACKAGED_CARDS if packaged else folder)

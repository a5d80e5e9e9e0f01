"""Open-set operating points: the threshold a 1:N decision uses for a gallery as it is now.

A search compares a stranger with every enrolled person, so a per-comparison false-match rate (FMR) that is
right for ``verify`` lets more strangers through as the gallery grows: with N people the false-positive
identification rate (FPIR, the share of strangers' searches that match anyone) is about 1 - (1 - q)^N, q being
the rate at which one person's aggregated score passes the threshold. :func:`operating_point` inverts that:
from a target FPIR and the gallery's size it finds q, turns q into a per-comparison FMR with the model card's
measured aggregation effect (a person with m samples is passed more often than one sample), and reads the
threshold from the card's impostor distribution (its calibrated table, and its tail model below the table).

Every 1:N path (search, check, strict enrolment, duplicates; Python, CLI, REST, page) calls
:func:`resolve_operating_point`, and every result carries the :class:`OperatingPoint` it used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from facesift.errors import InvalidArgumentError
from facesift.recognition.base import ModelCard
from facesift.results import Serialisable

#: Default FPIR: one search by a stranger in a hundred may return someone. Strict enough that a stranger is
#: rejected 99 times in 100 at any gallery size, loose enough that the right person is still found for most
#: enrolled people's photos at a few thousand people (docs/gallery.md, "Open-set operating points").
DEFAULT_FPIR = 1e-2
AGGREGATIONS = ("best", "mean_top")


@dataclass(frozen=True)
class OperatingPoint(Serialisable):
    """What a 1:N decision was taken at. ``source`` says which of fpir / false_match_rate / threshold the caller
    fixed (or "default"); the other two are what that choice implies for this gallery."""

    fpir: float
    false_match_rate: float
    threshold: float
    gallery_size: int
    samples: int
    aggregation: str
    source: str

    def describe(self) -> str:
        return (
            f"threshold {self.threshold:.3f} (FPIR {self.fpir:.2g} for {self.gallery_size:,} people, {self.samples:,} samples, "
            f"{self.aggregation} aggregation; per comparison FMR {self.false_match_rate:.2g}; set by {self.source})"
        )


def person_multiplier(card: ModelCard, aggregation: str, samples_per_person: float) -> float:
    """How many times more often a stranger passes one person's aggregated score than one sample, at the same
    threshold: m ** exponent for a person with m samples, the exponent measured per aggregation at calibration
    (``card.aggregation``). Without a measurement, ``best`` counts every sample (the union bound: safe) and the
    averaging aggregations count one."""
    m = max(float(samples_per_person), 1.0)
    measured = (card.aggregation or {}).get(aggregation)
    if measured is not None:
        exponent = float(measured["exponent"])
    else:
        exponent = 1.0 if aggregation == "best" else 0.0
    return m**exponent


def fpir_at(card: ModelCard, false_match_rate: float, gallery_size: int, samples: int | None = None, aggregation: str = "best") -> float:
    """The FPIR a per-comparison false-match rate gives in a gallery of ``gallery_size`` people."""
    people = max(int(gallery_size), 1)
    per_person = min(false_match_rate * person_multiplier(card, aggregation, (samples or people) / people), 1.0)
    return -math.expm1(people * math.log1p(-per_person)) if per_person < 1 else 1.0


def operating_point(
    card: ModelCard, gallery_size: int, fpir: float = DEFAULT_FPIR, aggregation: str = "best", samples: int | None = None
) -> OperatingPoint:
    """The threshold that keeps the FPIR of a gallery of ``gallery_size`` people (``samples`` samples in all,
    default one each) at ``fpir``, with people's samples aggregated by ``aggregation``."""
    if not 0 < fpir < 1:
        raise InvalidArgumentError(f"An FPIR must be between 0 and 1 (exclusive), got {fpir}")
    if aggregation not in AGGREGATIONS:
        raise InvalidArgumentError(f"Unknown aggregation {aggregation!r}; choose one of {', '.join(AGGREGATIONS)}")
    if gallery_size < 0 or (samples is not None and samples < 0):
        raise InvalidArgumentError("A gallery size must not be negative")
    people = max(int(gallery_size), 1)
    total = max(int(samples if samples is not None else people), people)
    per_person = -math.expm1(math.log1p(-fpir) / people)  # 1 - (1 - fpir) ** (1 / N), without cancellation
    fmr = per_person / person_multiplier(card, aggregation, total / people)
    stored = int(samples if samples is not None else gallery_size)
    if fmr < card.lowest_false_match_rate:  # a card without a tail model: its strictest point, and the FPIR that gives
        fmr = card.lowest_false_match_rate
        return OperatingPoint(
            fpir_at(card, fmr, people, total, aggregation),
            fmr,
            card.threshold_for(fmr),
            int(gallery_size),
            stored,
            aggregation,
            "fpir (card's strictest point)",
        )
    return OperatingPoint(fpir, fmr, card.threshold_for(fmr), int(gallery_size), stored, aggregation, "fpir")


def resolve_operating_point(
    card: ModelCard,
    gallery_size: int,
    samples: int,
    aggregation: str,
    *,
    fpir: float | None = None,
    false_match_rate: float | None = None,
    threshold: float | None = None,
) -> OperatingPoint:
    """The operating point of one 1:N call: at most one of ``fpir``, ``false_match_rate`` (per comparison) or a raw
    ``threshold``; none means :data:`DEFAULT_FPIR`. The result states all three for this gallery."""
    given = [
        name for name, value in (("fpir", fpir), ("false_match_rate", false_match_rate), ("threshold", threshold)) if value is not None
    ]
    if len(given) > 1:
        raise InvalidArgumentError(f"Pass at most one of fpir, false_match_rate and threshold (got {' and '.join(given)})")
    if threshold is not None:
        if not -1.0 <= threshold <= 1.0:
            raise InvalidArgumentError(f"A cosine threshold must be in [-1, 1], got {threshold}")
        fmr = card.false_match_rate_at(threshold)
        return OperatingPoint(
            fpir_at(card, fmr, gallery_size, samples, aggregation), fmr, float(threshold), gallery_size, samples, aggregation, "threshold"
        )
    if false_match_rate is not None:
        if not 0 < false_match_rate < 1:
            raise InvalidArgumentError(f"A false-match rate must be between 0 and 1 (exclusive), got {false_match_rate}")
        implied = fpir_at(card, false_match_rate, gallery_size, samples, aggregation)
        return OperatingPoint(
            implied, false_match_rate, card.threshold_for(false_match_rate), gallery_size, samples, aggregation, "false_match_rate"
        )
    point = operating_point(card, gallery_size, DEFAULT_FPIR if fpir is None else fpir, aggregation, samples)
    return point if fpir is not None else OperatingPoint(**{**point.__dict__, "source": "default"})

"""A protocol repeated over the levels of one degradation: how accuracy falls as the face gets worse."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from facesift.evaluation.datasets import IdentityDataset, Pair, load_identity_folders
from facesift.evaluation.degradations import CropDegradation, default_levels, level_meaning
from facesift.evaluation.identification import IdentificationReport, evaluate_identification
from facesift.evaluation.pairs import PairsReport, ProgressCallback, evaluate_all_pairs, evaluate_pairs
from facesift.pipeline import DEFAULT_FACE_POLICY
from facesift.results import Serialisable


@dataclass(frozen=True)
class SweepPoint(Serialisable):
    level: float
    report: PairsReport | IdentificationReport


@dataclass(frozen=True)
class SweepReport(Serialisable):
    """One report per level; ``headline`` gives the number plotted (10-fold accuracy, or rank-1 for identify)."""

    kind: str
    meaning: str
    protocol: str
    model: str
    detector: str
    points: tuple[SweepPoint, ...]
    restorer: str = ""

    @property
    def label(self) -> str:
        return f"{self.model}+{self.detector}" + (f", restored by {self.restorer}" if self.restorer else "")


def headline(report: PairsReport | IdentificationReport) -> float:
    return report.accuracy if isinstance(report, PairsReport) else report.cmc[1]


def sweep(
    data: str | Path | IdentityDataset,
    kind: str,
    *,
    pairs: str | Path | Sequence[Pair] | None = None,
    protocol: str = "pairs",
    levels: Sequence[float] | None = None,
    model: str = "sface",
    detector: str = "yunet",
    unknown_fraction: float = 0.0,
    restorer: str = "",
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
    policy: str = DEFAULT_FACE_POLICY,
) -> SweepReport:
    """Run ``protocol`` ("pairs": a pairs file, or all pairs of ``data`` when ``pairs`` is None; "identify")
    once per level of ``kind`` (default levels: ``degradations.KINDS``). ``restorer`` (resolution sweeps only)
    brings each shrunk face back with that restorer instead of bicubic interpolation."""
    levels = tuple(levels) if levels else default_levels(kind)
    points = []
    for level in levels:
        degradation = CropDegradation(kind, float(level), restorer)
        common = dict(model=model, detector=detector, degradation=degradation, cache_dir=cache_dir, progress=progress,
                      policy=policy)
        if protocol == "identify":
            report = evaluate_identification(_dataset(data), unknown_fraction=unknown_fraction, **common)
        elif protocol == "pairs" and pairs is not None:
            report = evaluate_pairs(data.root if isinstance(data, IdentityDataset) else data, pairs, **common)
        elif protocol == "pairs":
            report = evaluate_all_pairs(_dataset(data), **common)
        else:
            raise ValueError(f"Unknown protocol {protocol!r}; choose pairs or identify")
        points.append(SweepPoint(float(level), report))
    embedded_by = points[0].report.model if points else model  # names a cross-resolution model the pipeline routes to
    return SweepReport(kind, level_meaning(kind), protocol, embedded_by, detector, tuple(points), restorer)


def _dataset(data: str | Path | IdentityDataset) -> IdentityDataset:
    return data if isinstance(data, IdentityDataset) else load_identity_folders(data)

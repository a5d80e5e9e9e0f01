"""The kin-impostor protocol: how often relatives are taken for each other, beside strangers, at each operating point.

Data: ``<family>/<member>/<image>`` (as Families in the Wild) and a relationships CSV ``p1,p2[,type]`` naming
related members as ``<family>/<member>`` (``type``: sibling, parent-child, grandparent...; "related" when the
file has no such column). Same-person pairs are every two photos of a member; relative pairs every photo of
one member against every photo of a related one; stranger pairs every two photos from different families.

At each operating point (the model card's thresholds, and its relative-safe thresholds, calibrated on
relatives with :func:`calibrate_relatives`) the report gives the true-match rate, the false-match rate among
strangers and among relatives, overall and per relationship type.
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from facesift.errors import DatasetError
from facesift.evaluation import metrics
from facesift.evaluation.datasets import _image_files
from facesift.evaluation.embeddings import embed_images
from facesift.evaluation.pairs import FAILED_SCORE, ProgressCallback, _progress, all_pair_scores
from facesift.recognition.base import _PACKAGED_CARDS, load_card, save_card
from facesift.results import Serialisable, unserialised

UNTYPED = "related"
#: the relatives' false-match rates a relative-safe point is calibrated for
RELATIVE_RATES = (1e-1, 1e-2, 1e-3)


@dataclass(frozen=True)
class KinPoint(Serialisable):
    """One operating point: its threshold and what it gives on each kind of pair."""

    name: str
    threshold: float
    true_match_rate: float
    stranger_fmr: float
    relative_fmr: float
    #: relationship type -> false-match rate among relatives of that type
    by_type: dict[str, float]


@dataclass(frozen=True)
class KinReport(Serialisable):
    dataset: str
    relationships: str
    model: str
    detector: str
    families: int
    members: int
    images: int
    failed_images: int
    failure_policy: str
    genuine_pairs: int
    stranger_pairs: int
    relative_pairs: dict[str, int]
    operating_points: tuple[KinPoint, ...]
    notes: tuple[str, ...]
    seconds: float
    genuine: np.ndarray = unserialised(compare=False)
    strangers: np.ndarray = unserialised(compare=False)
    relatives: np.ndarray = unserialised(compare=False)
    relative_types: np.ndarray = unserialised(compare=False)

    @property
    def label(self) -> str:
        return f"{self.model}+{self.detector}"

    def tar_at_relative_fmr(self, rate: float) -> float | None:
        """True-match rate at the threshold where ``rate`` of the relative pairs match (None if unmeasurable)."""
        point = metrics.tar_at_far(self.genuine, self.relatives, rate)
        return None if point is None else point.tar


@dataclass(frozen=True)
class KinData:
    root: Path
    members: dict[str, list[Path]]  # "<family>/<member>" -> photos
    related: dict[tuple[str, str], str]  # sorted member pair -> relationship type

    def subset(self, families: Sequence[str]) -> "KinData":
        keep = set(families)
        members = {m: p for m, p in self.members.items() if family_of(m) in keep}
        related = {pair: kind for pair, kind in self.related.items() if pair[0] in members and pair[1] in members}
        return KinData(self.root, members, related)

    @property
    def families(self) -> list[str]:
        return sorted({family_of(m) for m in self.members})


def family_of(member: str) -> str:
    return member.split("/")[0]


def load_kin(data: str | Path, relationships: str | Path) -> KinData:
    """Read the member folders and the relationships file (members without photos are skipped, and said so)."""
    root, relationships = Path(data), Path(relationships)
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder; --data must be laid out as <family>/<member>/<image>")
    if not relationships.is_file():
        raise DatasetError(f"Relationships file {relationships} does not exist")
    members = {}
    for family in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))):
        for member in sorted(p for p in family.iterdir() if p.is_dir()):
            photos = _image_files(member)
            if photos:
                members[f"{family.name}/{member.name}"] = photos
    if not members:
        raise DatasetError(f"No <family>/<member>/<image> files under {root}")
    with open(relationships, newline="") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        if len(columns) < 2:
            raise DatasetError(f"{relationships}: expected a header p1,p2[,type] naming <family>/<member> pairs")
        kind_column = next((c for c in columns[2:] if c.lower() in ("type", "relationship", "relation", "kin")), None)
        related = {}
        for number, row in enumerate(reader, 2):
            a, b = (row[columns[0]] or "").strip(), (row[columns[1]] or "").strip()
            if not a or not b or a == b:
                raise DatasetError(f"{relationships}: row {number} needs two different members, got {a!r}, {b!r}")
            if a in members and b in members:
                related[tuple(sorted((a, b)))] = (row.get(kind_column) or UNTYPED).strip() if kind_column else UNTYPED
    if not related:
        raise DatasetError(f"{relationships} names no pair of members that both have photos under {root}")
    return KinData(root, members, related)


def split_families(kin: KinData) -> tuple[list[str], list[str]]:
    """Families alternately into a fitting half and a reporting half (sorted order), so no family is in both."""
    families = kin.families
    return families[0::2], families[1::2]


def kin_scores(kin: KinData, vectors: dict[Path, np.ndarray | None]) -> dict[str, np.ndarray]:
    """Scores of the same-person, stranger and relative pairs (relative types alongside)."""
    images = [p for photos in kin.members.values() for p in photos]
    owner = [m for m, photos in kin.members.items() for _ in photos]
    dims = next(len(v) for v in vectors.values() if v is not None)
    matrix = np.stack([vectors[p] if vectors[p] is not None else np.zeros(dims, np.float32) for p in images])
    usable = np.array([vectors[p] is not None for p in images])
    member_ids = {m: i for i, m in enumerate(kin.members)}
    person = np.array([member_ids[m] for m in owner])
    family_ids = {f: i for i, f in enumerate(kin.families)}
    family = np.array([family_ids[family_of(m)] for m in owner])
    genuine, _, _ = all_pair_scores(matrix, matrix, usable, person)
    _, strangers, _ = all_pair_scores(matrix, matrix, usable, family)
    rows = {m: np.flatnonzero(person == i) for m, i in member_ids.items()}
    relatives, types = [], []
    for (a, b), kind in kin.related.items():
        block = matrix[rows[a]] @ matrix[rows[b]].T
        block[~usable[rows[a]]] = FAILED_SCORE
        block[:, ~usable[rows[b]]] = FAILED_SCORE
        relatives.append(block.ravel())
        types += [kind] * block.size
    return dict(genuine=genuine, strangers=strangers, relatives=np.concatenate(relatives).astype(np.float32),
                relative_types=np.array(types))


def _embed(kin: KinData, model: str, detector: str, cache_dir: Path | None, progress: ProgressCallback | None):
    images = [p for photos in kin.members.values() for p in photos]
    return embed_images(images, model=model, detector=detector, cache_dir=cache_dir,
                        progress=_progress(progress, f"Embedding ({model}, {detector})"))


def evaluate_kin(
    data: str | Path,
    relationships: str | Path,
    *,
    model: str = "sface",
    detector: str = "yunet",
    families: Sequence[str] | None = None,
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
) -> KinReport:
    """False matches among relatives beside strangers at the card's operating points (``families``: a subset)."""
    started = time.perf_counter()
    kin = load_kin(data, relationships)
    if families is not None:
        kin = kin.subset(families)
    embeddings = _embed(kin, model, detector, cache_dir, progress)
    scores = kin_scores(kin, embeddings.vectors)
    card = load_card(model)
    named = [(f"FMR {float(k):g}", v) for k, v in sorted(card.thresholds.items(), key=lambda kv: -float(kv[0]))]
    named += [(f"relative-safe {float(k):g}", v)
              for k, v in sorted(card.relative_thresholds.items(), key=lambda kv: -float(kv[0]))]
    kinds = sorted(set(scores["relative_types"]))
    points = []
    for name, threshold in named:
        accepted = scores["relatives"] >= threshold
        points.append(KinPoint(
            name, float(threshold), float(np.mean(scores["genuine"] >= threshold)),
            float(np.mean(scores["strangers"] >= threshold)), float(np.mean(accepted)),
            {kind: float(np.mean(accepted[scores["relative_types"] == kind])) for kind in kinds},
        ))
    notes = [
        "same person: every two photos of a member; relatives: every photo of a member against every photo of a "
        "related member; strangers: every two photos from different families",
        "FMR x: the card's threshold for a false-match rate x among strangers (celeba300); relative-safe x: the "
        "threshold at which a share x of relative pairs matched on the families it was calibrated on",
    ]
    if kinds == [UNTYPED]:
        notes.append("the relationships file has no type column, so relatives are reported together")
    return KinReport(
        dataset=str(kin.root), relationships=str(relationships), model=embeddings.model, detector=detector,
        families=len(kin.families), members=len(kin.members), images=len(embeddings.vectors),
        failed_images=len(embeddings.failures), failure_policy="a photo without a face scores -1 (never a match)",
        genuine_pairs=int(scores["genuine"].size),
        stranger_pairs=int(scores["strangers"].size),
        relative_pairs={kind: int(np.sum(scores["relative_types"] == kind)) for kind in kinds},
        operating_points=tuple(points), notes=tuple(notes), seconds=time.perf_counter() - started, **scores,
    )


def calibrate_relatives(
    data: str | Path,
    relationships: str | Path,
    *,
    rates: Sequence[float] = RELATIVE_RATES,
    model: str = "sface",
    detector: str = "yunet",
    families: Sequence[str] | None = None,
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
) -> dict[str, float]:
    """Relative-safe thresholds: per rate, the lowest threshold at which at most that share of relative pairs match
    (rates the number of relative pairs cannot measure are left out)."""
    kin = load_kin(data, relationships)
    if families is not None:
        kin = kin.subset(families)
    scores = kin_scores(kin, _embed(kin, model, detector, cache_dir, progress).vectors)
    thresholds = {}
    for rate in rates:
        cut = metrics.strict_cut(scores["relatives"], rate)
        if cut is None:
            continue  # too few relative pairs to measure this rate
        thresholds[f"{rate:g}"] = round(math.floor(cut * 1e4) / 1e4 + 1e-4, 4)  # the next 4-decimal value above the cut
    if not thresholds:
        raise DatasetError(f"{scores['relatives'].size} relative pairs cannot measure a rate of {min(rates):g} or above")
    return thresholds


def write_relative_thresholds(model: str, thresholds: dict[str, float], command: str, *, packaged: bool = False) -> Path:
    """Put relative-safe thresholds into the model card (the user's cards folder, or with ``packaged`` the shipped one)."""
    card = load_card(model)
    updated = replace(card, relative_thresholds=dict(sorted(thresholds.items(), key=lambda kv: -float(kv[0]))),
                      relative_calibration=command)
    return save_card(updated, _PACKAGED_CARDS if packaged else None)

"""The age-gap protocol: the same person young and grown up, against other people, reported by age gap.

Two layouts. ``<person>/y/*`` (photos as a child or young person) beside ``<person>/*`` (as an adult), as in
LAG: every young photo against every adult photo of the same person. Or a CSV ``image,age[,person]`` (person
defaults to the image's folder): every two photos of a person whose ages differ, binned by the difference.
Each same-person pair gets one different-person pair: its younger photo against a photo of another person
of the same fold (fold = person index mod k, so the folds are identity-disjoint and no threshold is chosen on
the people it is tested on).

``enrol_photos`` turns it into the profile-photo question: each young photo against a person *enrolled*
with up to that many of their adult photos (scored as the gallery scores a person, the mean of the best
``MEAN_TOP`` samples, or with ``aggregation="best"`` the best one), the impostor against another person's enrolment.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from facesift.errors import DatasetError
from facesift.evaluation.datasets import _image_files
from facesift.evaluation.embeddings import embed_images
from facesift.evaluation.pairs import FAILED_SCORE, FAILURE_POLICY, PairsReport, ProgressCallback, SliceResult, _progress, _summary
from facesift.gallery.gallery import MEAN_TOP
from facesift.gallery.operating_point import AGGREGATIONS

YOUNG_FOLDER = "y"
#: age-gap bins (years) for a CSV with ages: [low, high)
GAP_BINS = ((0, 5), (5, 10), (10, 20), (20, 30), (30, 200))
LAYOUT_GAP = "young vs adult"


@dataclass(frozen=True)
class AgeGapUnit:
    """One decision: a probe photo against the reference photos of a claimed person."""

    probe: Path
    references: tuple[Path, ...]
    same: bool
    fold: int
    gap: str


def _gap_label(gap: float) -> str:
    for low, high in GAP_BINS:
        if low <= gap < high:
            return f"{low}-{high - 1} years" if high < 200 else f"{low}+ years"
    raise DatasetError(f"Negative age gap {gap}")


def read_layout(data: Path) -> dict[str, tuple[list[tuple[Path, float]], list[tuple[Path, float]]]]:
    """People of a ``<person>/y/`` + adult layout: (young photos, adult photos), each with a nominal age order."""
    people = {}
    for folder in sorted(p for p in data.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))):
        young_dir = folder / YOUNG_FOLDER
        young = _image_files(young_dir) if young_dir.is_dir() else []
        adult = _image_files(folder)
        if young and adult:
            people[folder.name] = ([(p, 0.0) for p in young], [(p, 1.0) for p in adult])
    if not people:
        raise DatasetError(f"No <person>/{YOUNG_FOLDER}/<image> beside <person>/<image> under {data}; "
                           "lay the set out so, or pass --ages image,age[,person]")
    return people


def read_ages(path: Path, data: Path) -> dict[str, list[tuple[Path, float]]]:
    """A CSV ``image,age[,person]``: each person's photos with their age (person defaults to the top folder of the image path)."""
    if not path.is_file():
        raise DatasetError(f"Ages file {path} does not exist")
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"image", "age"} - set(reader.fieldnames or ())
        if missing:
            raise DatasetError(f"{path} lacks the column(s) {', '.join(sorted(missing))}; expected image,age[,person]")
        rows = list(reader)
    people: dict[str, list[tuple[Path, float]]] = {}
    for number, row in enumerate(rows, 2):
        image = data / row["image"]
        if not image.is_file():
            raise DatasetError(f"{path}: row {number} names {image}, which does not exist")
        try:
            age = float(row["age"])
        except ValueError:
            raise DatasetError(f"{path}: row {number} has age={row['age']!r}; expected a number of years") from None
        person = (row.get("person") or "").strip() or Path(row["image"]).parts[0]
        people.setdefault(person, []).append((image, age))
    return people


def _people(data: Path, ages: str | Path | None) -> dict[str, tuple[list[tuple[Path, float]], list[tuple[Path, float]]]]:
    """Each person's (earlier photos, later photos) with ages (nominal 0 / 1 in the y/ layout)."""
    if ages is None:
        return read_layout(data)
    layout = {}
    for person, photos in read_ages(Path(ages), data).items():
        photos = sorted(photos, key=lambda item: item[1])
        if len({age for _, age in photos}) > 1:
            layout[person] = (photos, photos)
    return layout


def age_gap_people(data: str | Path, ages: str | Path | None = None) -> list[str]:
    """The people the protocol can use (photos at two ages), sorted."""
    return sorted(_people(Path(data), ages))


def split_people(names: Sequence[str]) -> tuple[list[str], list[str]]:
    """People alternately into a fitting half and a reporting half (sorted order)."""
    names = sorted(names)
    return names[0::2], names[1::2]


def age_gap_units(
    data: str | Path, ages: str | Path | None = None, *, folds: int = 10, enrol_photos: int = 0, seed: int = 0,
    people: Sequence[str] | None = None,
) -> list[AgeGapUnit]:
    """The protocol's decisions (see the module docstring); ``people`` restricts it to those people (a split)."""
    data = Path(data)
    layout = _people(data, ages)
    if people is not None:
        wanted = set(people)
        layout = {name: value for name, value in layout.items() if name in wanted}
    names = sorted(layout)
    folds = min(folds, len(names) // 2)
    if folds < 2:
        raise DatasetError(f"The age-gap protocol needs at least 4 people with photos at two ages; {data} has {len(names)}")
    rng = np.random.default_rng(seed)
    fold_of = {name: index % folds for index, name in enumerate(names)}
    members = {fold: [n for n in names if fold_of[n] == fold] for fold in range(folds)}
    units = []
    for name in names:
        young, adult = layout[name]
        fold = fold_of[name]
        others = [n for n in members[fold] if n != name]
        genuine = []
        if enrol_photos:
            references = tuple(p for p, _ in adult[:enrol_photos])
            for probe, age in young:
                if ages is None or age < adult[-1][1]:
                    older = [p for p, a in adult if a > age][:enrol_photos] if ages is not None else list(references)
                    gap = LAYOUT_GAP if ages is None else _gap_label(max(a for _, a in adult) - age)
                    genuine.append(AgeGapUnit(probe, tuple(older), True, fold, gap))
        else:
            for probe, age in young:
                for reference, later in adult:
                    if ages is None or later > age:
                        gap = LAYOUT_GAP if ages is None else _gap_label(later - age)
                        genuine.append(AgeGapUnit(probe, (reference,), True, fold, gap))
        units += genuine
        for unit in genuine:
            other = others[int(rng.integers(len(others)))]
            photos = [p for p, _ in layout[other][1]]
            if enrol_photos:
                chosen = tuple(photos[:enrol_photos])
            else:
                chosen = (photos[int(rng.integers(len(photos)))],)
            units.append(AgeGapUnit(unit.probe, chosen, False, fold, unit.gap))
    return units


def _score(probe: np.ndarray | None, references: list[np.ndarray | None], aggregation: str) -> float:
    usable = [r for r in references if r is not None]
    if probe is None or not usable:
        return FAILED_SCORE
    sims = np.sort(np.stack(usable) @ probe)[::-1]
    return float(sims[0] if aggregation == "best" else np.mean(sims[:MEAN_TOP]))


def evaluate_age_gap(
    data: str | Path,
    *,
    ages: str | Path | None = None,
    model: str = "sface",
    detector: str = "yunet",
    enrol_photos: int = 0,
    aggregation: str = "mean_top",
    people: Sequence[str] | None = None,
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
) -> PairsReport:
    """Verification across years: a PairsReport whose slices are the age gaps (accuracy and at the default threshold)."""
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"Unknown aggregation {aggregation!r}; choose one of {', '.join(AGGREGATIONS)}")
    started = time.perf_counter()
    data = Path(data)
    units = age_gap_units(data, ages, enrol_photos=enrol_photos, people=people)
    images = list(dict.fromkeys([u.probe for u in units] + [r for u in units for r in u.references]))
    embeddings = embed_images(images, model=model, detector=detector, cache_dir=cache_dir,
                              progress=_progress(progress, f"Embedding ({model}, {detector})"))
    vectors = embeddings.vectors
    scores = np.array([_score(vectors[u.probe], [vectors[r] for r in u.references], aggregation) for u in units])
    same = np.array([u.same for u in units])
    folds = np.array([u.fold for u in units])
    summary = _summary(scores[same], scores[~same], scores, same, folds, model)
    how = "the best one" if aggregation == "best" else f"mean of the best {MEAN_TOP}"
    enrolment = f", enrolled with up to {enrol_photos} adult photos (scored as the gallery does: {how})" if enrol_photos else ""
    summary["notes"] += (
        f"age gap{enrolment}: each same-person decision has one different-person decision with the same young photo, "
        "against another person of its fold",
    )
    slices = []
    threshold = summary.get("default_threshold")
    for gap in dict.fromkeys(u.gap for u in units):
        rows = np.array([u.gap == gap for u in units])
        at_default = None if threshold is None else float(np.mean((scores[rows] >= threshold) == same[rows]))
        tar = None if threshold is None else float(np.mean(scores[rows & same] >= threshold))
        slices.append(SliceResult("age gap", gap, int(rows.sum()), int((rows & same).sum()), int((rows & ~same).sum()),
                                  float(summary["correct"][rows].mean()), None, at_default, tar))
    failures = {str(k): v for k, v in embeddings.failures.items()}
    failed = int(np.sum(scores == FAILED_SCORE))
    layout = f"ages file {Path(ages).name}" if ages is not None else f"{YOUNG_FOLDER}/ + adult layout"
    return PairsReport(
        dataset=str(data), protocol=f"age gap ({layout}{', enrolled' if enrol_photos else ''})", model=embeddings.model,
        detector=detector, degradation="clean", pairs=len(units), genuine_pairs=int(same.sum()),
        impostor_pairs=int((~same).sum()), images=len(images), failed_images=len(failures), failed_pairs=failed,
        failure_policy=FAILURE_POLICY, slices=tuple(slices), failures=failures, cached_images=embeddings.cached,
        seconds=time.perf_counter() - started, genuine=scores[same], impostor=scores[~same],
        variant=f"enrolled with {enrol_photos} photos ({aggregation})" if enrol_photos else "", **summary,
    )


"""Years of profile-photo updates, simulated on an age-gap set: is the owner still recognised, with and without
template aging?

Every person of a ``<person>/y/`` + adult set (or of one half of it) is enrolled in a fresh SQLite gallery from
their young photos only. Then, person by person: a photo of someone else is offered as an update (it must never be
added), their adult photos but the last are offered as updates in name order (template aging adds the confident
ones), and the last adult photo is checked, before the updates and after. The last check's outcome, OWNER or not,
is the measurement; McNemar's exact test compares the two on the same people.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from facesift.errors import InvalidArgumentError
from facesift.evaluation import metrics
from facesift.evaluation.agegap import read_layout
from facesift.evaluation.pairs import ProgressCallback
from facesift.gallery import CheckOutcome, open_gallery
from facesift.gallery.template_aging import AgingPolicy, TemplateAging
from facesift.pipeline import get_pipeline
from facesift.results import Serialisable


@dataclass(frozen=True)
class AgingSimulation(Serialisable):
    dataset: str
    model: str
    policy: AgingPolicy
    people: int
    enrolled_photos: int
    updates_offered: int
    updates_added: int
    impostor_updates: int
    impostors_added: int
    owner_before: float  # share of last adult photos checked OWNER against the young enrolment
    owner_after: float  # ... after the updates
    mcnemar_p: float
    seconds: float


def simulate_template_aging(
    data: str | Path,
    *,
    people: Sequence[str] | None = None,
    policy: AgingPolicy = AgingPolicy(),
    model: str = "sface",
    detector: str = "yunet",
    aggregation: str = "best",
    fpir: float | None = None,
    progress: ProgressCallback | None = None,
) -> AgingSimulation:
    """The simulation of the module docstring on the people of ``data`` (``people``: a subset) with at least two adult photos;
    ``aggregation``: how the simulated gallery scores a person's samples (the gallery's default: best); ``fpir``: the
    operating point of the owner checks (default: the gallery's)."""
    started = time.perf_counter()
    layout = read_layout(Path(data))
    names = [n for n in sorted(layout) if (people is None or n in set(people)) and len(layout[n][1]) >= 2]
    if len(names) < 2:
        raise InvalidArgumentError(f"The simulation needs at least 2 people with young photos and 2 adult photos; {data} has {len(names)}")
    pipeline = get_pipeline(detector=detector, embedder=model)
    rng = np.random.default_rng(0)
    before, after = [], []
    offered = added = impostors_added = enrolled = 0
    with (
        tempfile.TemporaryDirectory() as folder,
        open_gallery(Path(folder) / "g.db", model=model, pipeline=pipeline, aggregation=aggregation) as gallery,
    ):
        aging = TemplateAging(gallery, Path(folder) / "aging.jsonl", policy)
        for name in names:
            enrolled += gallery.enroll(name, [p for p, _ in layout[name][0]]).added
        names = [n for n in names if gallery.get_person(n).sample_count]
        for done, name in enumerate(names):
            adult = [p for p, _ in layout[name][1]]
            *updates, today = adult
            before.append(gallery.check(name, today, fpir=fpir).outcome is CheckOutcome.OWNER)
            other = names[int(rng.integers(len(names) - 1))]
            other = other if other != name else names[-1]
            impostor_photo = [p for p, _ in layout[other][1]][0]
            impostors_added += aging.check(name, impostor_photo).change is not None
            for photo in updates:
                offered += 1
                added += aging.check(name, photo).change is not None
            after.append(gallery.check(name, today, fpir=fpir).outcome is CheckOutcome.OWNER)
            if progress is not None:
                progress("Simulating profile-photo updates", done + 1, len(names))
    test = metrics.mcnemar(np.array(after), np.array(before))
    return AgingSimulation(
        dataset=str(data), model=model, policy=policy, people=len(names), enrolled_photos=enrolled,
        updates_offered=offered, updates_added=added, impostor_updates=len(names), impostors_added=impostors_added,
        owner_before=float(np.mean(before)), owner_after=float(np.mean(after)), mcnemar_p=test.p_value,
        seconds=time.perf_counter() - started,
    )

"""Registered relatives: people who share a family or household id compare with each other first.

Relatives look alike (on Families in the Wild, SFace's threshold for a 1e-3 false-match rate among
strangers lets a relative through roughly ten times as often, docs/hard-cases.md). A person enrolled with
``metadata={"family": "<id>"}`` is therefore, in ``check`` and strict enrolment, scored exactly against every
enrolled relative (not only against whoever the index returns), and the owner decision uses the stricter of
the requested threshold and the model card's relative-safe threshold (calibrated on kin pairs,
``facesift evaluate kin --calibrate``). Every result says which relatives were compared and at which point.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from facesift.gallery.gallery import Gallery

#: the person-metadata key holding a family or household id
FAMILY_KEY = "family"
_PAGE = 1000


@dataclass(frozen=True)
class RelativesCheck:
    """What comparing with a person's registered relatives found."""

    family: str
    #: (person_id, similarity), best first
    scores: tuple[tuple[str, float], ...]
    #: the threshold the owner decision then uses (the stricter of the requested and the relative-safe one)
    threshold: float
    note: str


def family_of(gallery: "Gallery", person_id: str) -> str | None:
    value = gallery.get_person(person_id).metadata.get(FAMILY_KEY)
    return None if value in (None, "") else str(value)


def relatives_of(gallery: "Gallery", person_id: str, family: str) -> list[str]:
    """Everyone else enrolled with the same family id (a scan of the people: only people with a family pay it)."""
    found, offset = [], 0
    while True:
        page = gallery.list_persons(offset, _PAGE)
        found += [p.person_id for p in page if p.person_id != person_id and str(p.metadata.get(FAMILY_KEY, "")) == family]
        if len(page) < _PAGE:
            return found
        offset += _PAGE


def compare_relatives(gallery: "Gallery", person_id: str, vector: np.ndarray, limit: float) -> RelativesCheck | None:
    """Score ``vector`` against every registered relative of ``person_id``; None if they have no family id."""
    family = family_of(gallery, person_id)
    if family is None:
        return None
    people = relatives_of(gallery, person_id, family)
    scores = gallery._person_scores(vector, people) if people else {}
    ranked = tuple(sorted(((pid, s) for pid, (s, _) in scores.items()), key=lambda item: -item[1]))
    safe = gallery.card.relative_threshold_for()
    threshold = max(limit, safe) if safe is not None else limit
    point = (f"relative-safe threshold {threshold:.3f} (relatives' false-match rate "
             f"{gallery.card.default_relative_match_rate:g})" if threshold > limit else f"threshold {limit:.3f}")
    compared = ", ".join(f"{pid!r} {s:.3f}" for pid, s in ranked) or "none enrolled"
    return RelativesCheck(family, ranked, threshold, f"compared first with relatives in family {family!r} ({compared}); {point}")


def merge_relatives(candidates: list[tuple], kin: RelativesCheck) -> list[tuple]:
    """Index candidates (person_id, similarity, ...) with every relative's exact score in, best first."""
    relatives = {pid for pid, _ in kin.scores}
    merged = [*kin.scores, *((c[0], c[1]) for c in candidates if c[0] not in relatives)]
    return sorted(merged, key=lambda c: -c[1])

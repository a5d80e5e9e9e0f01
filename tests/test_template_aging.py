"""Template aging on real photos: a person enrolled young is followed into adulthood, never by an impostor."""

from __future__ import annotations

from pathlib import Path

import pytest

from facesift.errors import GalleryError
from facesift.gallery import CheckOutcome, open_gallery
from facesift.gallery.template_aging import AgingPolicy, TemplateAging

#: lag-dev people, scored by the mean of a person's top samples (with "best", one childhood photo already reaches
#: his last adult photo): macaulay_culkin's last adult photo does not match his childhood photos (0.33 < 0.38),
#: but his first two adult photos match them confidently (0.55, 0.66 >= 0.46); the others are impostors
PEOPLE = ("macaulay_culkin", "keira_knightley", "adele", "alan_rickman")


def young(faces: Path, person: str) -> list[Path]:
    return sorted((faces / "lag-dev" / person / "y").glob("*.jpg"))


def adult(faces: Path, person: str) -> list[Path]:
    return sorted((faces / "lag-dev" / person).glob("*.jpg"))


@pytest.fixture()
def aging(tmp_path, faces, pipeline):
    gallery = open_gallery(tmp_path / "g.db", pipeline=pipeline, aggregation="mean_top")
    for person in PEOPLE:
        assert gallery.enroll(person, young(faces, person)).added >= 1
    yield TemplateAging(gallery, tmp_path / "aging.jsonl")
    gallery.close()


def test_a_person_enrolled_young_is_recognised_after_updates_and_every_addition_undoes(aging, faces):
    gallery, person = aging.gallery, "macaulay_culkin"
    *updates, today = adult(faces, person)
    assert gallery.check(person, today).outcome is CheckOutcome.UNKNOWN  # childhood photos alone miss him
    before = gallery.get_person(person).sample_count
    results = [aging.check(person, photo) for photo in updates]
    assert [r.change is not None for r in results] == [True, True], [r.reason for r in results]
    assert gallery.get_person(person).sample_count == before + 2
    assert gallery.check(person, today).outcome is CheckOutcome.OWNER
    assert [c.sample_id for c in aging.history(person)] == [r.change.sample_id for r in results]
    for result in reversed(results):
        aging.undo(result.change.change_id)
    assert gallery.get_person(person).sample_count == before
    assert gallery.check(person, today).outcome is CheckOutcome.UNKNOWN
    assert all(c.undone for c in aging.history(person))
    with pytest.raises(GalleryError, match="already undone"):
        aging.undo(results[0].change.change_id)


def test_an_impostors_photo_is_never_added(aging, faces):
    for claimed in PEOPLE[:2]:  # him, and a woman whose own childhood photos match her weakly
        for other in PEOPLE:
            if other != claimed:
                for photo in adult(faces, other) + young(faces, other):
                    result = aging.check(claimed, photo)
                    assert result.change is None, (claimed, photo, result.reason)
    assert aging.history() == []


def test_the_bound_evicts_only_what_the_policy_added_and_undo_brings_it_back(aging, faces, tmp_path):
    person = "macaulay_culkin"
    bounded = TemplateAging(aging.gallery, tmp_path / "bounded.jsonl", AgingPolicy(max_added=1))
    enrolled = aging.gallery.get_person(person).sample_count
    first, second = (bounded.check(person, photo).change for photo in adult(faces, person)[:2])
    assert second.evicted == (first.sample_id,)
    assert aging.gallery.get_person(person).sample_count == enrolled + 1
    with pytest.raises(GalleryError, match="Undo change"):
        bounded.undo(first.change_id)  # its sample is gone; the eviction must be undone first
    bounded.undo(second.change_id)
    assert aging.gallery.get_person(person).sample_count == enrolled + 1  # the first one is back
    bounded.undo(first.change_id)
    assert aging.gallery.get_person(person).sample_count == enrolled


def test_bad_policies_and_unknown_changes_are_refused(aging):
    with pytest.raises(ValueError, match="max_added"):
        AgingPolicy(max_added=0)
    with pytest.raises(GalleryError, match="No template-aging change"):
        aging.undo("nope")


def test_the_simulation_follows_macaulay_culkin_and_adds_no_impostor(faces, tmp_path):
    from facesift.evaluation.aging import simulate_template_aging

    for person in PEOPLE:
        (tmp_path / person).symlink_to(faces / "lag-dev" / person)
    # three people: at the default FPIR (1e-2) a gallery this small accepts looser matches than verify does, and his
    # childhood photos already pass; at FPIR 1e-3 they do not, until the updates are in
    result = simulate_template_aging(tmp_path, aggregation="mean_top", fpir=1e-3)
    assert result.people == result.impostor_updates == 3 and result.impostors_added == 0  # alan_rickman: one adult photo
    assert result.updates_added >= 2  # his first two adult photos, at least
    assert result.owner_after >= result.owner_before + 0.25  # he is now recognised; nobody is lost

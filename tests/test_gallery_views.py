"""What a gallery view reads: people found by part of their id, a person's samples; one rule for person ids."""

from __future__ import annotations

import pytest
from test_gallery import fresh  # noqa: F401  (fixture: an empty gallery on each backend)

from facesift.errors import InvalidPersonIdError
from facesift.gallery import PERSON_ID_RULE


def test_people_are_found_by_part_of_their_id_and_their_samples_listed(fresh, faces):  # noqa: F811
    wild = faces / "wild"
    fresh.enroll("Barack Obama", [wild / "barack_obama" / "obama.jpg", wild / "barack_obama" / "obama1.jpg"])
    fresh.enroll("joe_biden", [wild / "joe_biden" / "biden.jpg"])
    fresh.add_person("nobody yet")
    assert [p.person_id for p in fresh.list_persons(contains="OBA")] == ["Barack Obama"]
    assert [p.person_id for p in fresh.list_persons(contains="o", limit=2)] == ["Barack Obama", "joe_biden"]
    assert [p.person_id for p in fresh.list_persons(contains="o", offset=2)] == ["nobody yet"]
    assert fresh.list_persons(contains="zz") == [] and len(fresh.list_persons()) == 3
    samples = fresh.samples_of("Barack Obama")
    assert len(samples) == 2 and samples[0].created_at <= samples[1].created_at
    assert all(0 < s.quality <= 1 and not s.has_image and s.person_id == "Barack Obama" for s in samples)
    fresh.remove_sample(samples[0].sample_id)
    assert [s.sample_id for s in fresh.samples_of("Barack Obama")] == [samples[1].sample_id]
    assert fresh.samples_of("nobody yet") == []


def test_one_rule_for_person_ids_everywhere(fresh, obama):  # noqa: F811
    for bad in ("team/alice", "back\\slash", "", "   ", "x" * 257, "line\nbreak"):
        for call in (lambda: fresh.add_person(bad), lambda: fresh.enroll(bad, [obama]), lambda: fresh.get_person(bad),
                     lambda: fresh.samples_of(bad), lambda: fresh.remove(bad)):
            with pytest.raises(InvalidPersonIdError, match="no / or") as caught:
                call()
            assert PERSON_ID_RULE in str(caught.value)
    assert fresh.add_person("x" * 256).person_id == "x" * 256  # the limit itself is allowed

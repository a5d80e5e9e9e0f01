"""Registered relatives on real Families-in-the-Wild photos: check and strict enrolment compare with them first."""

from __future__ import annotations

import pytest

from facesift.gallery import CheckOutcome, EnrollOutcome, open_gallery
from facesift.recognition import load_card

#: two related members of one fiw-dev family; the probe (of MID6) scores 0.44 against MID5's first two photos,
#: above the default threshold (0.38) but below the relative-safe one, and 0.72 against MID6's own
FAMILY, RELATIVE, OWNER, PROBE = "F0376", "F0376/MID5", "F0376/MID6", "P10625_face2.jpg"


def photos(faces, member):
    return sorted((faces / "fiw-dev" / member).glob("*.jpg"))


@pytest.fixture()
def gallery(tmp_path, pipeline):
    with open_gallery(tmp_path / "g.db", pipeline=pipeline) as g:
        yield g


def test_without_a_family_id_a_relative_passes_as_the_owner(gallery, faces):
    gallery.enroll("relative", photos(faces, RELATIVE)[:2])
    result = gallery.check("relative", faces / "fiw-dev" / OWNER / PROBE)
    assert result.outcome is CheckOutcome.OWNER  # the failure this feature exists for
    assert not any("relatives" in reason for reason in result.reasons)


def test_with_a_family_id_check_compares_relatives_first_at_the_relative_safe_point(gallery, faces):
    safe = load_card("sface").relative_threshold_for()
    assert safe is not None and safe > load_card("sface").threshold_for()
    probe = faces / "fiw-dev" / OWNER / PROBE
    gallery.enroll("relative", photos(faces, RELATIVE)[:2], metadata={"family": FAMILY})
    gallery.enroll("owner", [p for p in photos(faces, OWNER) if p.name != PROBE][:2], metadata={"family": FAMILY})
    result = gallery.check("relative", probe)
    assert result.outcome is CheckOutcome.OTHER_PERSON and result.other_person == "owner"
    assert result.threshold == pytest.approx(safe)
    assert any(f"relatives in family {FAMILY!r}" in reason and "'owner'" in reason for reason in result.reasons)
    own = gallery.check("owner", probe)
    assert own.outcome is CheckOutcome.OWNER and "compared first with relatives" in own.reasons[-1]
    refused = gallery.enroll("relative", [probe], strict=True).results[0]
    assert refused.outcome is EnrollOutcome.CONFLICT and refused.other_person == "owner"
    assert "relatives in family" in refused.reason


def test_cli_enrols_a_family_folder_with_its_id(tmp_path, faces):
    from typer.testing import CliRunner

    from facesift.cli import app

    folder = tmp_path / "family"
    folder.mkdir()
    for member in (RELATIVE, OWNER):
        (folder / member.split("/")[1]).mkdir()
        (folder / member.split("/")[1] / "a.jpg").symlink_to(photos(faces, member)[0])
    result = CliRunner().invoke(app, ["gallery", "enroll", str(tmp_path / "g.db"), str(folder), "--family", FAMILY])
    assert result.exit_code == 0, result.output
    with open_gallery(tmp_path / "g.db") as g:
        assert {p.person_id: p.metadata for p in g.list_persons()} == {"MID5": {"family": FAMILY}, "MID6": {"family": FAMILY}}

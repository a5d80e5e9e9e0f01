"""The age-gap and kin-impostor protocols end to end on small real subsets of lag-dev and fiw-dev."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from facesift.cli import app
from facesift.errors import DatasetError
from facesift.evaluation.agegap import age_gap_units, evaluate_age_gap
from facesift.evaluation.kinship import calibrate_relatives, evaluate_kin, load_kin, split_families

runner = CliRunner()
LAG_PEOPLE = ("50_cent", "adele", "alan_rickman", "keira_knightley", "macaulay_culkin", "adam_levine", "aaron_paul", "adriana_lima")
FAMILIES = ("F0016", "F0031", "F0041")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("embedding-cache")


@pytest.fixture(scope="module")
def lag(faces, tmp_path_factory):
    root = tmp_path_factory.mktemp("lag")
    for person in LAG_PEOPLE:
        (root / person).symlink_to(faces / "lag-dev" / person)
    return root


@pytest.fixture(scope="module")
def fiw(faces, tmp_path_factory):
    root = tmp_path_factory.mktemp("fiw")
    for family in FAMILIES:
        (root / family).symlink_to(faces / "fiw-dev" / family)
    rows = [r for r in csv.reader(open(faces / "fiw-dev-relationships.csv"))][1:]
    kept = [r for r in rows if r[0].split("/")[0] in FAMILIES]
    with open(root / "rel.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["p1", "p2", "type"])
        for k, (a, b) in enumerate(kept):  # labels for the test only: FIW's file here has no types
            writer.writerow([a, b, "sibling" if k % 2 else "parent-child"])
    return root


def test_age_gap_layout_pairs_every_young_photo_with_every_adult_photo(lag):
    units = age_gap_units(lag)
    genuine = [u for u in units if u.same]
    expected = sum(len(list((lag / p / "y").glob("*.jpg"))) * len(list((lag / p).glob("*.jpg")))
                   for p in LAG_PEOPLE if list((lag / p).glob("*.jpg")))
    assert len(genuine) == expected and len(units) == 2 * expected
    person = {u.probe: u.probe.parent.parent.name for u in units}
    for unit in units:
        assert unit.probe.parent.name == "y"
        owner = unit.references[0].parent.name
        assert (owner == person[unit.probe]) == unit.same
    folds = {}
    for unit in units:  # identity-disjoint folds: each person (probe and reference) in one fold only
        for who in (person[unit.probe], unit.references[0].parent.name):
            assert folds.setdefault(who, unit.fold) == unit.fold


def test_cli_age_gap_reports_by_gap_with_plots(lag, cache, tmp_path):
    result = runner.invoke(app, ["evaluate", "age-gap", "--data", str(lag), "--enrol-photos", "3", "--out",
                                 str(tmp_path / "out"), "--cache-dir", str(cache)])
    assert result.exit_code == 0, result.output
    report = (tmp_path / "out" / "report.md").read_text()
    assert "young vs adult" in report and "enrolled with 3 photos" in report
    assert (tmp_path / "out" / "roc.png").stat().st_size > 1000
    results = json.loads((tmp_path / "out" / "results.json").read_text())["results"]
    plain = results[0]
    assert plain["slices"][0]["attribute"] == "age gap"
    assert 0.5 < plain["auc"] <= 1.0  # real photos: the same person young scores above strangers


def test_age_gap_from_an_ages_csv_bins_by_gap(lag, cache, tmp_path):
    ages = tmp_path / "ages.csv"
    rows = ["image,age"]
    for person in LAG_PEOPLE:
        rows += [f"{person}/y/{p.name},8" for p in sorted((lag / person / "y").glob("*.jpg"))]
        rows += [f"{person}/{p.name},{30 + k}" for k, p in enumerate(sorted((lag / person).glob("*.jpg")))]
    ages.write_text("\n".join(rows) + "\n")
    report = evaluate_age_gap(lag, ages=ages, cache_dir=cache)
    gaps = {s.value: s for s in report.slices}
    assert {"20-29 years", "0-4 years"} <= set(gaps)  # 8 -> 30s, and adult photos 1-4 years apart
    assert all(s.genuine == s.impostor for s in gaps.values())
    assert gaps["0-4 years"].tar_at_default > gaps["20-29 years"].tar_at_default  # years apart are harder


def test_age_gap_refuses_bad_layouts_and_files(tmp_path, lag):
    (tmp_path / "flat" / "someone").mkdir(parents=True)
    with pytest.raises(DatasetError, match="y/<image>"):
        age_gap_units(tmp_path / "flat")
    bad = tmp_path / "bad.csv"
    bad.write_text("image,years\n")
    with pytest.raises(DatasetError, match="lacks the column"):
        age_gap_units(lag, bad)
    bad.write_text(f"image,age\nadele/{sorted((lag / 'adele').glob('*.jpg'))[0].name},old\n")
    with pytest.raises(DatasetError, match="age='old'"):
        age_gap_units(lag, bad)


def test_kin_protocol_counts_and_per_type_rates(fiw, cache):
    kin = load_kin(fiw, fiw / "rel.csv")
    report = evaluate_kin(fiw, fiw / "rel.csv", cache_dir=cache)
    sizes = {m: len(p) for m, p in kin.members.items()}
    assert sum(report.relative_pairs.values()) == sum(sizes[a] * sizes[b] for a, b in kin.related)
    assert set(report.relative_pairs) == {"sibling", "parent-child"}
    by_family = {}
    for member, count in sizes.items():
        by_family[member.split("/")[0]] = by_family.get(member.split("/")[0], 0) + count
    total = sum(by_family.values())
    assert report.stranger_pairs == (total**2 - sum(c * c for c in by_family.values())) // 2
    for point in report.operating_points:
        assert point.relative_fmr >= point.stranger_fmr  # relatives look more alike than strangers
        assert set(point.by_type) == {"sibling", "parent-child"}


def test_relative_safe_thresholds_hold_on_the_data_they_were_calibrated_on(fiw, cache):
    thresholds = calibrate_relatives(fiw, fiw / "rel.csv", rates=(1e-1,), cache_dir=cache)
    report = evaluate_kin(fiw, fiw / "rel.csv", cache_dir=cache)
    assert np.mean(report.relatives >= thresholds["0.1"]) <= 0.1
    fit, held_out = split_families(load_kin(fiw, fiw / "rel.csv"))
    assert fit == ["F0016", "F0041"] and held_out == ["F0031"]
    with pytest.raises(DatasetError, match="cannot measure"):
        calibrate_relatives(fiw, fiw / "rel.csv", rates=(1e-6,), cache_dir=cache)


def test_cli_kin_calibrates_then_reports_the_relative_safe_point(fiw, cache, tmp_path, monkeypatch):
    monkeypatch.setenv("FACESIFT_CARDS_DIR", str(tmp_path / "cards"))  # the calibrated card stays in this test
    result = runner.invoke(app, ["evaluate", "kin", "--data", str(fiw), "--relationships", str(fiw / "rel.csv"),
                                 "--calibrate", "--out", str(tmp_path / "out"), "--cache-dir", str(cache)])
    assert result.exit_code == 0, result.output
    report = (tmp_path / "out" / "report.md").read_text()
    assert "relative-safe 0.01" in report and "sibling FMR" in report
    assert (tmp_path / "out" / "kin_scores.png").is_file()
    card = json.loads((tmp_path / "cards" / "sface.json").read_text())
    assert set(card["relative_thresholds"]) == {"0.1", "0.01"}  # 479 relative pairs cannot measure 1e-3
    bad = runner.invoke(app, ["evaluate", "kin", "--data", str(fiw), "--relationships", str(tmp_path / "none.csv")])
    assert bad.exit_code != 0 and "does not exist" in bad.output

"""Open-set operating points: the threshold follows the gallery's size, every 1:N result states it, and on real
photos the FPIR it promises is the FPIR strangers meet, at two gallery sizes; every face of a group photo."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from facesift.evaluation import embed_images, load_identity_roots
from facesift.gallery import DEFAULT_FPIR, Sample, open_gallery, operating_point, resolve_operating_point
from facesift.recognition import load_card


@pytest.fixture(scope="module")
def card():
    return load_card("sface")


def test_threshold_rises_with_the_gallery_and_keeps_fpir(card):
    points = [operating_point(card, size, 1e-2, "best") for size in (1, 10, 1_000, 100_000, 1_000_000)]
    thresholds = [p.threshold for p in points]
    assert thresholds == sorted(thresholds) and len(set(thresholds)) == len(thresholds)
    for point in points:  # per comparison: 1 - (1 - fpir) ** (1 / N), one sample a person
        assert point.false_match_rate == pytest.approx(-math.expm1(math.log1p(-1e-2) / max(point.gallery_size, 1)))
        assert point.fpir == 1e-2 and point.source == "fpir"
    assert points[-1].false_match_rate < 1e-7 < points[-1].threshold < 1  # a million people: the tail model answers
    # back from the threshold: the FPIR it implies is the one asked for
    again = resolve_operating_point(card, 1_000, 1_000, "best", threshold=points[2].threshold)
    assert again.fpir == pytest.approx(1e-2, rel=1e-3) and again.source == "threshold"


def test_several_samples_a_person_raise_the_best_sample_threshold(card):
    one = operating_point(card, 500, 1e-2, "best", samples=500)
    five = operating_point(card, 500, 1e-2, "best", samples=2_500)
    assert five.threshold > one.threshold and five.samples == 2_500


def test_operating_point_arguments_are_checked(card):
    with pytest.raises(ValueError, match="at most one"):
        resolve_operating_point(card, 10, 10, "best", fpir=1e-2, threshold=0.5)
    with pytest.raises(ValueError, match="between 0 and 1"):
        operating_point(card, 10, 0.0)
    with pytest.raises(ValueError, match="aggregation"):
        operating_point(card, 10, 1e-2, "median")
    default = resolve_operating_point(card, 10, 10, "best")
    assert (default.fpir, default.source) == (DEFAULT_FPIR, "default")
    fixed = resolve_operating_point(card, 100, 100, "best", false_match_rate=1e-3)
    assert fixed.threshold == pytest.approx(card.threshold_for(1e-3)) and 0.08 < fixed.fpir < 0.1  # 1 - 0.999 ** 100


# --- on real photos ---------------------------------------------------------------------------------
SMALL_SETS = ("orl", "yale", "johns")


@pytest.fixture(scope="module")
def real(faces: Path, pipeline):
    """Embeddings of the small real sets: orl, yale and johns (619 photos of 60 people)."""
    dataset = load_identity_roots([faces / name for name in SMALL_SETS])
    embeddings = embed_images(dataset.images, pipeline=pipeline)
    vectors, usable = embeddings.matrix(list(dataset.images))
    return vectors[usable], np.array(dataset.labels)[usable]


@pytest.mark.parametrize("gallery_people", [10, 30])
def test_strangers_meet_the_promised_fpir_at_two_gallery_sizes(real, tmp_path, gallery_people):
    """Half the people are enrolled (one photo each) through the gallery, in disjoint galleries of ``gallery_people``;
    every photo of the other half searches each gallery, at FPIR 0.1 (so some 300 strangers' photos can measure it).
    The threshold comes from the model card (celeba300), never from these photos; measured FPIR must be within a
    factor of 2 of the target."""
    vectors, labels = real
    counts = np.bincount(labels)
    people = np.random.default_rng(0).permutation(np.flatnonzero(counts >= 2))
    half = len(people) // 2
    stranger_vectors = vectors[np.isin(labels, people[half:])]
    target, searches, false_positives = 0.1, 0, 0
    for draw in range(half // gallery_people):
        chosen = people[draw * gallery_people : (draw + 1) * gallery_people]
        with open_gallery(tmp_path / f"g{draw}.db") as gallery:
            gallery.add_samples(
                Sample(f"{p}", f"person-{p}", vectors[np.flatnonzero(labels == p)[0]], "sface", 1.0, f"h{p}", 0.0) for p in chosen
            )
            point = gallery.operating_point(fpir=target)
            assert point.gallery_size == gallery_people and point.threshold == pytest.approx(
                operating_point(gallery.card, gallery_people, target).threshold
            )
            best = np.array([row[0].similarity for row in gallery.search_embeddings(stranger_vectors, k=1)])
        false_positives += int((best >= point.threshold).sum())
        searches += len(best)
    measured = false_positives / searches
    assert searches >= 300
    assert target / 2 <= measured <= target * 2, (
        f"FPIR {measured:.4f} ({false_positives}/{searches}) against {target} at {gallery_people} people"
    )


def test_the_open_set_protocol_makes_one_person_of_an_id_filed_in_two_sources(faces: Path, pipeline, tmp_path):
    """Pooled sets share people; a stranger who is an enrolled person's second id is that person, not a false
    positive. Two sources built from orl's real photos, one person's photos split between them under two names:
    the protocol names the pair, makes it one person, and gives FPIR per source and by the strangers' apparent age;
    a single source keeps its labels."""
    from facesift.evaluation.openset import evaluate_open_set

    roots = [tmp_path / "first", tmp_path / "second"]
    for index, person in enumerate(sorted((faces / "orl").iterdir())[:16]):
        photos = sorted(person.iterdir())
        if index == 0:  # s1: half its photos in each source, under two names
            for root, name, part in ((roots[0], "s1", photos[:5]), (roots[1], "same-as-s1", photos[5:])):
                (root / name).mkdir(parents=True)
                for photo in part:
                    (root / name / photo.name).symlink_to(photo)
            continue
        (roots[index % 2] / person.name).parent.mkdir(parents=True, exist_ok=True)
        (roots[index % 2] / person.name).symlink_to(person)
    embed_images(load_identity_roots(roots).images, pipeline=pipeline, cache_dir=tmp_path / "cache")
    pooled = evaluate_open_set(load_identity_roots(roots), roots=roots, ladder=(5,), cache_dir=tmp_path / "cache")
    assert pooled.same_humans == ("first/s1 = second/same-as-s1",)
    assert len(load_identity_roots(roots).people) == 17 and pooled.people == 16  # one person under two ids
    assert set(pooled.fpir_by_source) == {"first", "second"}
    assert sum(searches for _, searches in pooled.fpir_by_source.values()) == pooled.stranger_probes
    assert sum(searches for _, searches in pooled.fpir_by_apparent_age.values()) == pooled.stranger_probes  # orl: adults
    assert "13 and over" in pooled.fpir_by_apparent_age
    assert any("one person" in note for note in pooled.notes) and any("by the strangers' source" in note for note in pooled.notes)
    single = evaluate_open_set(load_identity_roots(roots[:1]), roots=roots[:1], ladder=(5,), cache_dir=tmp_path / "cache")
    assert single.same_humans == () and single.fpir_by_source is None


def test_every_face_of_a_group_photo_is_named(faces: Path, pipeline, tmp_path):
    with open_gallery(tmp_path / "g.db", pipeline=pipeline) as gallery:
        gallery.enroll("obama", [faces / "wild/barack_obama/obama.jpg", faces / "wild/barack_obama/obama1.jpg"])
        gallery.enroll("biden", [faces / "wild/joe_biden/biden.jpg"])
        gallery.enroll("kit", [faces / "wild/kit_harington/john1.jpeg"])
        result = gallery.search_faces(faces / "wild/_multi_face/obama_and_biden.jpg", k=2)
        assert len(result.faces) >= 2
        names = [face.person_id for face in result.faces]
        assert {"obama", "biden"} <= set(names) and "kit" not in names
        assert all(face.operating_point == result.operating_point for face in result.faces)
        assert result.operating_point.gallery_size == 3 and all(face.face is not None for face in result.faces)
        areas = [face.face.area for face in result.faces]
        assert areas == sorted(areas, reverse=True)
        json.dumps(result.to_dict())
        empty = gallery.search_faces(np.full((200, 200, 3), 128, np.uint8))
        assert empty.faces == () and empty.operating_point.gallery_size == 3


# --- the check a user runs first (slow: about 4,000 photos through the whole pipeline) --------------
DEV_SETS = tuple(os.environ.get("FACESIFT_USER_CHECK_SETS", "celeba300,pins90,lag-dev,fiw-dev,orl,yale,johns").split(","))


@pytest.mark.slow
def test_user_check_one_photo_each_and_500_strangers(faces: Path, pipeline, tmp_path):
    """Every development person but 500 enrolled from one real photo each (the largest LFW-style gallery this data
    forms), through the gallery's own defaults; the 500 strangers probe with one photo each, the enrolled people with
    up to 2 other photos each. Targets of issue 12: at least 95 % of strangers rejected, at least 92 % of the enrolled
    people's other photos accepted as the right person; the share of enrolment photos refused is reported.
    ``FACESIFT_USER_CHECK_SETS`` (comma-separated) runs it on other sets of ``faces``."""
    dataset = load_identity_roots([faces / name for name in DEV_SETS])
    labels = np.array(dataset.labels)
    rng = np.random.default_rng(12)
    order = rng.permutation(len(dataset.people))
    strangers, enrolled = order[:500], order[500:]
    photos = {p: [dataset.images[i] for i in np.flatnonzero(labels == p)] for p in range(len(dataset.people))}
    ids = [name.replace("/", ":") for name in dataset.people]  # a person id has no "/": "fiw-dev:F0811:MID7"
    with open_gallery(tmp_path / "users.db", pipeline=pipeline) as gallery:
        refused = 0
        for person in enrolled:
            report = gallery.enroll(ids[person], photos[person][:1])
            refused += report.added == 0
        accepted = {ids[p] for p in enrolled if (found := gallery.get_person(ids[p])) is not None and found.sample_count}
        mated = [(ids[p], path) for p in enrolled if ids[p] in accepted for path in photos[p][1:3]]
        stranger_results = [gallery.search(photos[p][0]) for p in strangers]
        mated_results = [(person, gallery.search(path)) for person, path in mated]
    searched = [r for r in stranger_results if r.decision != "no_face"]
    rejected = sum(r.decision == "unknown" for r in searched) / len(searched)
    found = [r for _, r in mated_results if r.decision != "no_face"]
    right = sum(r.decision == "match" and r.person_id == person for person, r in mated_results if r.decision != "no_face") / len(found)
    point = searched[0].operating_point
    print(f"\nuser check: {len(enrolled)} people enrolled from one photo each, {refused} refused ({refused / len(enrolled):.1%}); "
          f"{len(searched)} strangers: {rejected:.1%} rejected; {len(found)} photos of enrolled people: {right:.1%} accepted as the right "
          f"person; {point.describe()}")
    assert rejected >= 0.95
    assert right >= 0.92

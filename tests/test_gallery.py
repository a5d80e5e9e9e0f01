"""The gallery on real photos, the same suite on every backend: SQLite + usearch, and Milvus via milvus-lite."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from facesift.errors import GalleryError, PersonExistsError, PersonNotFoundError, SampleNotFoundError, UnknownBackendError
from facesift.gallery import CheckOutcome, EnrollOutcome, open_gallery
from facesift.image import load_image

KNOWN, UNKNOWN, ENROLLED_PER_PERSON = 8, 6, 4
BACKENDS = ["sqlite", "milvus-lite"]


def gallery_uri(backend: str, folder: Path) -> str:
    if backend == "milvus-lite":
        pytest.importorskip("milvus_lite", reason="pip install 'facesift[milvus]' to test the Milvus backend")
        return f"milvus-lite:///{folder}/gallery.db"
    return f"sqlite:///{folder}/gallery.db"


@pytest.fixture(scope="session")
def celeba_people(faces: Path, pipeline) -> dict[str, list[Path]]:
    """Up to 8 photos per person, for the first 14 celeba300 people, whose face passes the quality check."""
    people = {}
    for folder in sorted((faces / "celeba300").iterdir())[: KNOWN + UNKNOWN]:
        paths = sorted(folder.iterdir())[:12]
        results = pipeline.represent_batch(paths)
        people[folder.name] = [p for p, r in zip(paths, results, strict=True) if r.faces and r.faces[0].quality.acceptable][:8]
    return people


@pytest.fixture(scope="session")
def known(celeba_people) -> dict[str, list[Path]]:
    return dict(list(celeba_people.items())[:KNOWN])


@pytest.fixture(scope="session")
def unknown(celeba_people) -> dict[str, list[Path]]:
    return dict(list(celeba_people.items())[KNOWN:])


@pytest.fixture(scope="module", params=BACKENDS)
def enrolled(request, tmp_path_factory, known, pipeline):
    """A gallery holding the known people, each enrolled from their first photos."""
    uri = gallery_uri(request.param, tmp_path_factory.mktemp(request.param))
    gallery = open_gallery(uri, pipeline=pipeline)
    for person, paths in known.items():
        report = gallery.enroll(person, paths[:ENROLLED_PER_PERSON], metadata={"name": f"person {person}"})
        assert report.added >= ENROLLED_PER_PERSON - 1, report
    yield gallery
    gallery.close()


@pytest.fixture(params=BACKENDS)
def fresh(request, tmp_path, pipeline):
    gallery = open_gallery(gallery_uri(request.param, tmp_path), pipeline=pipeline)
    yield gallery
    gallery.close()


def blurred(path: Path) -> np.ndarray:
    return cv2.GaussianBlur(load_image(path), (0, 0), 4)


def test_held_out_photos_find_the_right_person_first(enrolled, known):
    probes = [(person, path) for person, paths in known.items() for path in paths[ENROLLED_PER_PERSON:]]
    results = [enrolled.search(path, k=3) for _, path in probes]
    rank1 = [r.candidates[0].person_id == person for (person, _), r in zip(probes, results, strict=True)]
    assert len(probes) >= 20 and sum(rank1) >= 0.85 * len(probes), f"{sum(rank1)}/{len(probes)}"
    assert sum(r.decision == "match" for r in results) >= 0.75 * len(probes)
    first = results[0]
    assert [c.rank for c in first.candidates] == [1, 2, 3]
    assert len({c.person_id for c in first.candidates}) == 3  # one candidate per person
    assert first.candidates[0].metadata == {"name": f"person {first.candidates[0].person_id}"}
    point = first.operating_point  # the default: FPIR 1e-2 for the gallery as it is (8 people, their samples)
    assert (point.source, point.fpir, point.gallery_size, point.aggregation) == ("default", 1e-2, KNOWN, enrolled.aggregation)
    assert first.threshold == pytest.approx(enrolled.operating_point().threshold) == point.threshold
    assert first.false_match_rate == pytest.approx(point.false_match_rate)
    json.dumps(first.to_dict())


def test_people_never_enrolled_come_back_unknown(enrolled, unknown):
    results = [enrolled.search(path) for paths in unknown.values() for path in paths[:4]]
    unknown_count = sum(r.decision == "unknown" for r in results)
    assert unknown_count >= 0.8 * len(results), f"{unknown_count}/{len(results)} unknown"
    strict = [enrolled.search(path, false_match_rate=1e-4) for paths in unknown.values() for path in paths[:4]]
    assert sum(r.decision == "unknown" for r in strict) >= unknown_count  # a stricter point never finds more


def test_search_no_face_and_precomputed_vectors(enrolled, known, pipeline):
    assert enrolled.search(np.full((200, 200, 3), 128, np.uint8)).decision == "no_face"
    person, paths = next(iter(known.items()))
    vector = pipeline.represent(paths[-1], policy="largest")[0].embedding
    rows = enrolled.search_embeddings(np.stack([vector, vector]), k=2)
    assert len(rows) == 2 and rows[0][0].person_id == person and rows[0] == rows[1]
    with pytest.raises(ValueError, match="128"):
        enrolled.search_embeddings(np.ones((1, 5)))
    with pytest.raises(ValueError, match="non-zero"):
        enrolled.search_embeddings(np.zeros((1, 128)))


def test_check_gives_each_outcome_on_real_photos(enrolled, known, unknown, faces):
    (owner, owner_paths), (other, _) = list(known.items())[:2]
    result = enrolled.check(owner, owner_paths[-1])
    assert result.outcome is CheckOutcome.OWNER and result.owner_similarity >= result.threshold, result.reasons
    result = enrolled.check(other, owner_paths[-1])
    assert result.outcome is CheckOutcome.OTHER_PERSON and result.other_person == owner, result.reasons
    assert result.other_similarity > (result.owner_similarity or -1)
    strangers = [enrolled.check(owner, paths[0]) for paths in unknown.values()]
    assert sum(r.outcome is CheckOutcome.UNKNOWN for r in strangers) >= len(strangers) - 1
    assert enrolled.check(owner, np.full((240, 240, 3), 200, np.uint8)).outcome is CheckOutcome.NO_FACE
    result = enrolled.check(owner, faces / "wild" / "_multi_face" / "obama_and_biden.jpg")
    assert result.outcome is CheckOutcome.MULTIPLE_FACES and "could each be the photo's subject" in result.reasons[0]
    result = enrolled.check(owner, blurred(owner_paths[-1]))
    assert result.outcome is CheckOutcome.LOW_QUALITY and any("blurred" in r for r in result.reasons)
    with pytest.raises(PersonNotFoundError):
        enrolled.check("nobody", owner_paths[-1])
    assert json.loads(json.dumps(result.to_dict()))["outcome"] == "low_quality"


def test_enrol_judges_each_image_and_keeps_the_good_ones(fresh, known, faces):
    person, paths = next(iter(known.items()))
    jpeg = paths[0].read_bytes()
    smaller = cv2.resize(load_image(paths[0]), None, fx=0.8, fy=0.8)  # other bytes, same photo
    images = [paths[0], np.full((200, 200, 3), 90, np.uint8), faces / "wild" / "_multi_face" / "two_people.jpg",
              blurred(paths[1]), jpeg, smaller, b"not an image", paths[1]]
    report = fresh.enroll(person, images)
    outcomes = [r.outcome for r in report.results]
    assert outcomes == [EnrollOutcome.ADDED, EnrollOutcome.NO_FACE, EnrollOutcome.MULTIPLE_FACES, EnrollOutcome.LOW_QUALITY,
                        EnrollOutcome.DUPLICATE, EnrollOutcome.DUPLICATE, EnrollOutcome.INVALID_IMAGE, EnrollOutcome.ADDED]
    assert report.added == 2 and fresh.get_person(person).sample_count == 2
    assert report.results[4].sample_id == report.results[0].sample_id  # points at the sample it duplicates
    assert report.results[3].quality is not None and not report.results[3].quality.acceptable
    # the same photo under another account is a conflict, not a new sample
    conflict = fresh.enroll("someone-else", [paths[0]]).results[0]
    assert conflict.outcome is EnrollOutcome.CONFLICT and conflict.other_person == person
    with pytest.raises(PersonNotFoundError):
        fresh.enroll("ghost", [paths[2]], create=False)
    with pytest.raises(PersonExistsError):
        fresh.add_person(person)
    assert report.to_dict()["added"] == 2


def test_strict_mode_refuses_a_sample_closer_to_someone_else(fresh, known):
    (alice, alice_paths), (bob, bob_paths) = list(known.items())[:2]
    fresh.enroll(alice, alice_paths[:3])
    fresh.enroll(bob, bob_paths[:3])
    refused = fresh.enroll(alice, [bob_paths[4]], strict=True).results[0]
    assert refused.outcome is EnrollOutcome.CONFLICT and refused.other_person == bob and "closer to" in refused.reason
    assert fresh.get_person(alice).sample_count == 3
    accepted = fresh.enroll(alice, [alice_paths[4]], strict=True).results[0]
    assert accepted.outcome is EnrollOutcome.ADDED
    lax = fresh.enroll(alice, [bob_paths[3]]).results[0]  # without strict the caller is trusted
    assert lax.outcome is EnrollOutcome.ADDED


def test_remove_really_removes_the_vectors(fresh, known, pipeline):
    (alice, alice_paths), (bob, bob_paths) = list(known.items())[:2]
    added = fresh.enroll(alice, alice_paths[:3]).results
    fresh.enroll(bob, bob_paths[:3])
    stored = pipeline.represent(alice_paths[0], policy="largest")[0].embedding
    assert fresh.search_embeddings(stored, k=1)[0][0].sample_id == added[0].sample_id
    fresh.remove_sample(added[0].sample_id)
    hits = fresh.search_embeddings(stored, k=5)[0]
    assert all(c.sample_id != added[0].sample_id for c in hits)
    with pytest.raises(SampleNotFoundError):
        fresh.remove_sample(added[0].sample_id)
    assert fresh.remove(alice) == 2
    assert all(c.person_id != alice for c in fresh.search(alice_paths[5], k=5).candidates)
    assert fresh.stats().samples == 3 and fresh.stats().persons == 1
    with pytest.raises(PersonNotFoundError):
        fresh.remove(alice)
    # enrolling the same photos again works: nothing of the old samples is left to collide with
    assert fresh.enroll(alice, alice_paths[:1]).added == 1


def test_duplicates_finds_one_human_under_two_accounts(fresh, known):
    (alice, alice_paths), (bob, bob_paths) = list(known.items())[:2]
    fresh.enroll(alice, alice_paths[:3])
    fresh.enroll("alice-second-account", alice_paths[3:6])
    fresh.enroll(bob, bob_paths[:3])
    pairs = fresh.duplicates()
    assert [(p.person_a, p.person_b) for p in pairs] == [tuple(sorted((alice, "alice-second-account")))]
    assert pairs[0].similarity >= pairs[0].operating_point.threshold and pairs[0].operating_point.gallery_size == 2


def test_export_import_round_trip(enrolled, known, tmp_path):
    path = tmp_path / "gallery.jsonl.gz"
    written = enrolled.export(path)
    stats = enrolled.stats()
    assert written == stats.samples
    with open_gallery(tmp_path / "copy.db", pipeline=enrolled.pipeline) as copy:
        report = copy.import_file(path)
        assert (report.persons_added, report.samples_added) == (stats.persons, stats.samples)
        assert copy.import_file(path).samples_skipped == stats.samples  # idempotent
        person, paths = next(iter(known.items()))
        assert copy.get_person(person).metadata == enrolled.get_person(person).metadata
        assert copy.search(paths[-1]).candidates[0].person_id == enrolled.search(paths[-1]).candidates[0].person_id
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"format": "facesift-gallery", "version": 99}\n')
    with pytest.raises(GalleryError, match="version 99"):
        enrolled.import_file(bad)
    bad.write_text("hello\n")
    with pytest.raises(GalleryError, match="not a facesift gallery export"):
        enrolled.import_file(bad)


def test_listing_and_errors(enrolled, known):
    people = enrolled.list_persons(limit=100)
    assert [p.person_id for p in people] == list(known)
    assert all(p.sample_count >= ENROLLED_PER_PERSON - 1 for p in people)
    assert [p.person_id for p in enrolled.list_persons(offset=2, limit=3)] == list(known)[2:5]
    with pytest.raises(PersonNotFoundError):
        enrolled.get_person("nobody")
    with pytest.raises(ValueError):
        enrolled.add_person("")
    with pytest.raises(TypeError):
        enrolled.add_person("x", {"not json": object()})


def test_keep_images_only_when_asked(fresh, known):
    person, paths = next(iter(known.items()))
    if not fresh.supports_images:
        with pytest.raises(GalleryError, match="keep_images"):
            fresh.enroll(person, paths[:1], keep_images=True)
        return
    kept = fresh.enroll(person, paths[:1], keep_images=True).results[0].sample_id
    plain = fresh.enroll(person, paths[1:2]).results[0].sample_id
    assert fresh.sample_image(kept) == paths[0].read_bytes()
    assert fresh.sample_image(plain) is None


def test_searches_from_threads_while_writing(fresh, known, pipeline):
    (alice, alice_paths), (bob, bob_paths) = list(known.items())[:2]
    fresh.enroll(alice, alice_paths[:3])
    probe = pipeline.represent(alice_paths[4], policy="largest")[0].embedding
    failures: list[BaseException] = []

    def search_many() -> None:
        try:
            for _ in range(20):
                assert fresh.search_embeddings(probe, k=2)[0][0].person_id == alice
        except BaseException as exc:  # noqa: BLE001  (reported below)
            failures.append(exc)

    threads = [threading.Thread(target=search_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    fresh.enroll(bob, bob_paths[:3])
    for thread in threads:
        thread.join()
    assert not failures, failures


def test_uris(tmp_path, pipeline):
    with pytest.raises(UnknownBackendError, match="postgres"):
        open_gallery("postgres://host/db")
    with pytest.raises(GalleryError, match="does not exist"):
        open_gallery(tmp_path / "missing" / "g.db")
    (tmp_path / "junk.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(GalleryError, match="not a usable SQLite gallery"):
        open_gallery(tmp_path / "junk.db")
    with open_gallery(f"sqlite:///{tmp_path}/g.db", pipeline=pipeline) as gallery:
        assert gallery.stats().backend == "sqlite" and gallery.stats().dims == 128


def test_the_accurate_fusion_searches_through_the_vector_index(tmp_path, known, unknown):
    """The fused 256-d vectors (SFace + dlib) go through the HNSW graph itself, not only exact search."""
    with open_gallery(tmp_path / "accurate.db", model="accurate", exact_below=0) as gallery:
        people = list(known.items())[:3]
        for person, paths in people:
            assert gallery.enroll(person, paths[:3]).added == 3
        stats = gallery.stats()
        assert (stats.model, stats.dims, stats.index["search"]) == ("accurate", 256, "approximate")
        probes = [(person, path) for person, paths in people for path in paths[3:]]
        results = [gallery.search(path, k=2) for _, path in probes]
        rank1 = sum(r.candidates[0].person_id == person for (person, _), r in zip(probes, results, strict=True))
        assert len(probes) >= 10 and rank1 >= 0.9 * len(probes), f"{rank1}/{len(probes)}"
        assert sum(r.decision == "match" for r in results) >= 0.7 * len(probes)
        assert results[0].threshold == pytest.approx(gallery.operating_point().threshold)
        strangers = [gallery.search(paths[0]) for paths in unknown.values()]
        assert sum(r.decision == "unknown" for r in strangers) >= len(strangers) - 1

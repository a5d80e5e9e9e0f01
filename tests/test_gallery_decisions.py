"""The gallery's decisions on a store double: ranking, open-set operating points, check, strict enrolment, duplicates
and enrolment outcomes, with vectors chosen so every expected answer is known exactly.

``MemoryStore`` is a real :class:`~facesift.gallery.store.GalleryStore` (dicts and a numpy brute-force search), and
``ScriptedPipeline`` stands in for the models only: each image (a few bytes) "embeds" to the faces a test gives it
(one test runs the real pipeline, for the input numbering enrolment relies on).
Everything that decides is the real :class:`~facesift.gallery.Gallery`; the real-photo suites (test_gallery*.py)
test the same decisions on real models and backends.
"""

from __future__ import annotations

import dataclasses
import inspect
import time
import uuid
from types import SimpleNamespace

import numpy as np
import pytest

from facesift.errors import PersonExistsError, PersonNotFoundError, SampleNotFoundError
from facesift.gallery import CheckOutcome, EnrollOutcome, Gallery, Sample, operating_point
from facesift.gallery.results import Person, SampleInfo
from facesift.gallery.sqlite import SQLiteStore
from facesift.gallery.store import CONTRACT, GalleryStore
from facesift.recognition import load_card
from facesift.results import Face, FaceEmbedding, FaceQuality, ImageFaces

DIMS = 128
CARD = load_card("sface")


class MemoryStore:
    """People and samples in dicts, nearest samples by brute force: the storage contract and nothing more."""

    backend = "memory"
    supports_images = True

    def __init__(self, model: str = "sface", dims: int = DIMS) -> None:
        self.uri, self.model, self.dims = "memory://test", model, dims
        self.persons: dict[str, Person] = {}  # in enrolment order
        self.samples: dict[str, Sample] = {}
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def add_persons(self, rows):
        taken = [pid for pid, _, _ in rows if pid in self.persons]
        if taken:
            raise PersonExistsError(f"A person {taken[0]!r} already exists")
        for pid, meta, created in rows:
            self.persons[pid] = Person(pid, dict(meta), 0, created)
        return [Person(pid, meta, 0, created) for pid, meta, created in rows]

    def existing(self, person_ids):
        return {pid for pid in person_ids if pid in self.persons}

    def get_person(self, person_id):
        person = self.persons.get(person_id)
        count = sum(s.person_id == person_id for s in self.samples.values())
        return None if person is None else dataclasses.replace(person, sample_count=count)

    def list_persons(self, offset, limit, contains):
        ids = [pid for pid in self.persons if contains.lower() in pid.lower()]
        return [self.get_person(pid) for pid in ids[offset : offset + limit]]

    def samples_of(self, person_id):
        return [SampleInfo(s.sample_id, person_id, s.quality, s.created_at, s.image is not None) for s in self.samples.values()
                if s.person_id == person_id]

    def metadata(self, person_ids):
        return {pid: self.persons[pid].metadata for pid in person_ids if pid in self.persons}

    def remove_person(self, person_id):
        gone = [sid for sid, s in self.samples.items() if s.person_id == person_id]
        for sid in gone:
            del self.samples[sid]
        del self.persons[person_id]
        return len(gone)

    def remove_sample(self, sample_id):
        if self.samples.pop(sample_id, None) is None:
            raise SampleNotFoundError(f"No sample {sample_id!r} in the gallery")

    def sample_image(self, sample_id):
        if sample_id not in self.samples:
            raise SampleNotFoundError(f"No sample {sample_id!r} in the gallery")
        return self.samples[sample_id].image

    def has_sample(self, sample_id):
        return sample_id in self.samples

    def add_samples(self, samples):
        missing = [s.person_id for s in samples if s.person_id not in self.persons]
        if missing:
            raise PersonNotFoundError(f"No person {missing[0]!r} in the gallery")
        self.samples.update((s.sample_id, s) for s in samples)

    def find_by_hash(self, content_sha256):
        return next(((s.sample_id, s.person_id) for s in self.samples.values() if s.content_sha256 == content_sha256), None)

    def nearest(self, vectors, count):
        stored = list(self.samples.values())
        if not stored:
            return [[] for _ in vectors]
        sims = np.asarray(vectors, np.float32) @ np.stack([s.embedding for s in stored]).T
        return [[(stored[i].sample_id, stored[i].person_id, float(row[i])) for i in np.argsort(-row, kind="stable")[:count]]
                for row in sims]

    def person_vectors(self, person_ids):
        found = {}
        for pid in person_ids:
            mine = [s for s in self.samples.values() if s.person_id == pid]
            if mine:
                found[pid] = ([s.sample_id for s in mine], np.stack([s.embedding for s in mine]).astype(np.float32))
        return found

    def iter_samples(self, batch):
        stored = list(self.samples.values())
        for start in range(0, len(stored), batch):
            yield stored[start : start + batch]

    def counts(self):
        return len(self.persons), len(self.samples)

    def index_info(self):
        return {"kind": "numpy brute force"}


def axis(i: int) -> np.ndarray:
    vector = np.zeros(DIMS, np.float32)
    vector[i] = 1.0
    return vector


def toward(i: int, cosine: float, away: int) -> np.ndarray:
    """A unit vector whose cosine with axis ``i`` is ``cosine``, the rest along axis ``away``."""
    return (cosine * axis(i) + np.sqrt(1 - cosine**2) * axis(away)).astype(np.float32)


def face(vector: np.ndarray, box=(220.0, 140.0, 420.0, 340.0), acceptable: bool = True) -> FaceEmbedding:
    x0, y0, x1, y1 = box
    cx, cy, w = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0
    landmarks = ((cx - w / 4, cy - w / 6), (cx + w / 4, cy - w / 6), (cx, cy), (cx - w / 5, cy + w / 4), (cx + w / 5, cy + w / 4))
    quality = FaceQuality(w, w / 2, 0.95, 120.0, 0.0, 0.0, 0.0, 0.5, 0.2, 0.9 if acceptable else 0.2, acceptable,
                          () if acceptable else ("too blurred",))
    unit = np.asarray(vector, np.float32) / np.linalg.norm(vector)
    return FaceEmbedding(Face(box, landmarks, 0.95, "scripted"), quality, unit, "sface")


class ScriptedPipeline:
    """The models' place in the gallery: ``image`` -> the faces scripted for it (an unscripted image is unreadable)."""

    model = "sface"
    workers = 1
    embedder = SimpleNamespace(card=CARD)

    def __init__(self) -> None:
        self.faces: dict[bytes, tuple[FaceEmbedding, ...]] = {}

    def script(self, name: str, *faces: FaceEmbedding) -> bytes:
        self.faces[name.encode()] = faces
        return name.encode()

    def represent_batch(self, images, *, policy="auto", on_error="record", progress=None, start=0):
        results = []
        for index, image in enumerate(images, start):
            if image not in self.faces:
                if on_error == "raise":
                    raise ValueError("not an image")
                results.append(ImageFaces(index, f"<input {index}>", (), None, "not an image", "ImageError"))
            else:
                results.append(ImageFaces(index, f"<input {index}>", self.faces[image], (640, 480)))
        return results

    def represent(self, image, *, policy="auto"):
        return list(self.faces[image][:1])


def sample(person_id: str, vector: np.ndarray) -> Sample:
    return Sample(uuid.uuid4().hex, person_id, np.asarray(vector, np.float32), "sface", 0.9, uuid.uuid4().hex, time.time())


@pytest.fixture
def scripted() -> ScriptedPipeline:
    return ScriptedPipeline()


def gallery_of(people: dict[str, list[np.ndarray]], pipeline=None, aggregation: str = "best", store=None) -> Gallery:
    gallery = Gallery(store or MemoryStore(), pipeline=pipeline or ScriptedPipeline(), aggregation=aggregation)
    gallery.add_samples([sample(pid, v) for pid, vectors in people.items() for v in vectors])
    return gallery


def test_the_store_double_and_the_real_stores_implement_the_same_contract():
    methods = [name for name in CONTRACT if callable(getattr(GalleryStore, name, None))]
    assert {"add_samples", "nearest", "person_vectors", "metadata", "remove_person"} <= set(methods)
    stores = [MemoryStore, SQLiteStore]
    try:
        from facesift.gallery.milvus import MilvusStore

        stores.append(MilvusStore)
    except ImportError:  # pymilvus is an extra
        pass
    for store in stores:
        for name in methods:
            wanted = list(inspect.signature(getattr(GalleryStore, name)).parameters)
            assert list(inspect.signature(getattr(store, name)).parameters) == wanted, f"{store.__name__}.{name}"


def test_people_are_ranked_by_their_aggregated_samples():
    people = {
        "alice": [toward(0, 0.9, 10), toward(0, 0.1, 11), toward(0, 0.1, 12)],  # one close sample, two far
        "bob": [toward(0, 0.7, 20), toward(0, 0.7, 21), toward(0, 0.7, 22)],  # three fairly close
        "carol": [toward(0, 0.3, 30)],
    }
    store = MemoryStore()
    best = gallery_of(people, store=store)
    store.persons["bob"] = dataclasses.replace(store.persons["bob"], metadata={"team": "b"})
    ranked = best.search_embeddings(axis(0), k=3)[0]
    assert [(c.rank, c.person_id) for c in ranked] == [(1, "alice"), (2, "bob"), (3, "carol")]
    assert [c.similarity for c in ranked] == pytest.approx([0.9, 0.7, 0.3], abs=1e-6)
    alice_best = next(s.sample_id for s in store.samples.values() if s.person_id == "alice" and s.embedding[0] > 0.5)
    assert ranked[0].sample_id == alice_best and ranked[1].metadata == {"team": "b"}
    assert [c.person_id for c in best.search_embeddings(axis(0), k=2)[0]] == ["alice", "bob"]  # one candidate per person, k of them
    mean_top = Gallery(store, pipeline=ScriptedPipeline(), aggregation="mean_top")
    ranked = mean_top.search_embeddings(axis(0), k=3)[0]
    assert [c.person_id for c in ranked] == ["bob", "alice", "carol"]  # alice's mean of her 3 best: (0.9 + 0.1 + 0.1) / 3
    assert [c.similarity for c in ranked] == pytest.approx([0.7, 1.1 / 3, 0.3], abs=1e-6)


def test_the_open_set_threshold_grows_with_the_gallery():
    gallery = gallery_of({f"p{i}": [axis(i)] for i in range(10)})
    probe = toward(0, 0.44, 127)
    small = gallery.search_embedding(probe)
    assert (small.operating_point.source, small.operating_point.fpir, small.operating_point.gallery_size) == ("default", 1e-2, 10)
    assert small.threshold == pytest.approx(operating_point(CARD, 10, 1e-2, "best", 10).threshold) and small.threshold < 0.44
    assert small.decision == "match" and small.person_id == "p0"
    rng = np.random.default_rng(7)
    strangers = rng.standard_normal((990, DIMS)).astype(np.float32)
    strangers[:, [0, 127]] = 0  # nobody else is near the probe
    gallery.add_samples([sample(f"q{i}", v / np.linalg.norm(v)) for i, v in enumerate(strangers)])
    large = gallery.search_embedding(probe)
    assert large.operating_point.gallery_size == 1000 and large.threshold > 0.44
    assert large.threshold == pytest.approx(operating_point(CARD, 1000, 1e-2, "best", 1000).threshold)
    assert large.candidates[0].person_id == "p0" and large.decision == "unknown" and large.person_id is None
    loose = gallery.search_embedding(probe, fpir=0.5)
    assert loose.decision == "match" and loose.operating_point.source == "fpir" and loose.threshold < large.threshold
    fixed = gallery.search_embedding(probe, threshold=0.43)
    assert fixed.decision == "match" and fixed.operating_point.source == "threshold" and fixed.operating_point.fpir > 1e-2


def test_check_says_owner_other_person_unknown_or_why_not(scripted):
    gallery = gallery_of({"alice": [axis(0), toward(0, 0.9, 1)], "bob": [axis(2)]}, pipeline=scripted)
    images = {
        "alice-new": face(toward(0, 0.8, 3)),
        "bob-photo": face(toward(2, 0.8, 3)),
        "stranger": face(axis(50)),
        "both-but-bob-more": face(0.6 * axis(0) + 0.7 * axis(2) + np.sqrt(1 - 0.85) * axis(4)),
        "blurred": face(toward(0, 0.8, 3), acceptable=False),
    }
    image = {name: scripted.script(name, f) for name, f in images.items()}
    owner = gallery.check("alice", image["alice-new"])
    assert owner.outcome is CheckOutcome.OWNER and owner.owner_similarity == pytest.approx(0.8, abs=1e-6)
    assert owner.threshold == pytest.approx(gallery.operating_point().threshold) and owner.operating_point.gallery_size == 2
    assert owner.face is not None and owner.quality.acceptable
    other = gallery.check("alice", image["bob-photo"])
    assert other.outcome is CheckOutcome.OTHER_PERSON and other.other_person == "bob"
    assert other.other_similarity == pytest.approx(0.8, abs=1e-6)
    both = gallery.check("alice", image["both-but-bob-more"])
    assert both.outcome is CheckOutcome.OTHER_PERSON and both.owner_similarity > both.threshold  # above, but bob is closer
    assert gallery.check("bob", image["both-but-bob-more"]).outcome is CheckOutcome.OWNER
    unknown = gallery.check("alice", image["stranger"])
    assert unknown.outcome is CheckOutcome.UNKNOWN and "matches nobody" in unknown.reasons[0]
    low = gallery.check("alice", image["blurred"])
    assert low.outcome is CheckOutcome.LOW_QUALITY and low.reasons == ("too blurred",) and low.owner_similarity is None
    assert gallery.check("alice", scripted.script("empty")).outcome is CheckOutcome.NO_FACE
    pair = scripted.script("pair", face(axis(0), (60, 140, 260, 340)), face(axis(2), (380, 140, 580, 340)))
    assert gallery.check("alice", pair).outcome is CheckOutcome.MULTIPLE_FACES
    subject = scripted.script("subject", face(toward(0, 0.8, 3)), face(axis(2), (0, 0, 40, 40)))  # a small face in a corner
    assert gallery.check("alice", subject).outcome is CheckOutcome.OWNER
    with pytest.raises(PersonNotFoundError):
        gallery.check("nobody", image["alice-new"])


def test_registered_relatives_are_compared_at_the_relative_safe_threshold(scripted):
    gallery = gallery_of({"alice": [axis(0)], "sister": [axis(1)]}, pipeline=scripted)
    photo = scripted.script("alice-ish", face(0.5 * axis(0) + 0.3 * axis(1) + np.sqrt(1 - 0.34) * axis(5)))
    assert gallery.check("alice", photo).outcome is CheckOutcome.OWNER  # 0.5 passes the gallery's threshold
    gallery.store.persons["alice"] = dataclasses.replace(gallery.store.persons["alice"], metadata={"family": "f1"})
    gallery.store.persons["sister"] = dataclasses.replace(gallery.store.persons["sister"], metadata={"family": "f1"})
    kin = gallery.check("alice", photo)
    assert CARD.relative_threshold_for() > 0.5
    assert kin.outcome is CheckOutcome.UNKNOWN and "relatives in family 'f1'" in kin.reasons[-1] and "'sister' 0.300" in kin.reasons[-1]


def test_enrolment_judges_each_image(scripted):
    gallery = gallery_of({"bob": [axis(2)]}, pipeline=scripted)
    good = scripted.script("alice-1", face(axis(0)))
    resized = scripted.script("alice-1-resized", face(toward(0, 0.97, 5)))
    second = scripted.script("alice-2", face(toward(0, 0.8, 6)))
    bobs = scripted.script("bob-resized", face(toward(2, 0.96, 7)))
    empty, blurred = scripted.script("empty"), scripted.script("blurred", face(axis(8), acceptable=False))
    pair = scripted.script("pair", face(axis(0), (60, 140, 260, 340)), face(axis(9), (380, 140, 580, 340)))
    heard = []
    report = gallery.enroll("alice", [good, good, resized, second, bobs, empty, blurred, pair, b"not an image"], on_result=heard.append)
    outcomes = [r.outcome for r in report.results]
    assert outcomes == [EnrollOutcome.ADDED, EnrollOutcome.DUPLICATE, EnrollOutcome.DUPLICATE, EnrollOutcome.ADDED,
                        EnrollOutcome.CONFLICT, EnrollOutcome.NO_FACE, EnrollOutcome.LOW_QUALITY, EnrollOutcome.MULTIPLE_FACES,
                        EnrollOutcome.INVALID_IMAGE]
    assert heard == list(report.results) and report.added == 2 and [r.index for r in report.results] == list(range(9))
    first = report.results[0].sample_id
    assert report.results[1].sample_id == first and "the same image is already sample" in report.results[1].reason
    assert report.results[2].sample_id == first and report.results[2].similarity == pytest.approx(0.97, abs=1e-6)
    assert report.results[4].other_person == "bob" and report.results[4].sample_id is None
    assert report.results[6].reason == "too blurred" and report.results[8].reason == "ImageError: not an image"
    assert gallery.get_person("alice").sample_count == 2
    same_file = gallery.enroll("carol", [good]).results[0]
    assert (same_file.outcome, same_file.other_person, same_file.similarity) == (EnrollOutcome.CONFLICT, "alice", 1.0)
    with pytest.raises(PersonNotFoundError):
        gallery.enroll("dave", [second], create=False)


def test_strict_enrolment_refuses_a_face_closer_to_someone_else(scripted):
    gallery = gallery_of({"alice": [axis(0)], "bob": [axis(2)]}, pipeline=scripted)
    closer_to_bob = scripted.script("closer-to-bob", face(0.5 * axis(0) + 0.7 * axis(2) + np.sqrt(1 - 0.74) * axis(3)))
    refused = gallery.enroll("alice", [closer_to_bob], strict=True).results[0]
    assert refused.outcome is EnrollOutcome.CONFLICT and refused.other_person == "bob" and "closer to 'bob'" in refused.reason
    assert gallery.enroll("alice", [closer_to_bob]).results[0].outcome is EnrollOutcome.ADDED  # not strict: added
    like_bob = scripted.script("like-bob", face(toward(2, 0.8, 4)))
    newcomer = gallery.enroll("carol", [like_bob], strict=True).results[0]
    assert newcomer.outcome is EnrollOutcome.CONFLICT and "this person has no samples yet" in newcomer.reason
    unlike = scripted.script("unlike-anyone", face(toward(2, 0.2, 4)))  # below the threshold: nobody to be confused with
    assert gallery.enroll("carol", [unlike], strict=True).results[0].outcome is EnrollOutcome.ADDED


def test_duplicates_pairs_people_whose_samples_match():
    gallery = gallery_of({"alice": [axis(0)], "alice-again": [toward(0, 0.9, 1)], "bob": [axis(2)], "carol": [toward(2, 0.2, 3)]})
    pairs = gallery.duplicates()
    assert [(p.person_a, p.person_b) for p in pairs] == [("alice", "alice-again")] and pairs[0].similarity == pytest.approx(0.9)
    assert pairs[0].operating_point.gallery_size == 3  # each person is searched against everyone else
    loose = gallery.duplicates(threshold=0.1)
    assert [(p.person_a, p.person_b) for p in loose] == [("alice", "alice-again"), ("bob", "carol")]


def test_export_and_import_move_a_gallery_between_stores(tmp_path):
    source = gallery_of({"alice": [axis(0), axis(1)], "bob": [axis(2)]})
    source.add_person("carol", {"note": "no samples yet"})
    assert source.export(tmp_path / "g.jsonl.gz") == 3
    target = Gallery(MemoryStore(), pipeline=ScriptedPipeline())
    report = target.import_file(tmp_path / "g.jsonl.gz")
    assert (report.persons_added, report.samples_added, report.samples_skipped) == (3, 3, 0)
    assert [(p.person_id, p.sample_count, p.metadata) for p in target.list_persons()] == [
        ("alice", 2, {}), ("bob", 1, {}), ("carol", 0, {"note": "no samples yet"})]
    assert target.search_embeddings(axis(1), k=1)[0][0].person_id == "alice"
    again = target.import_file(tmp_path / "g.jsonl.gz")
    assert (again.persons_added, again.samples_added, again.samples_skipped) == (0, 0, 3)


def test_inputs_are_named_once_across_enrolment_chunks(scripted):
    gallery = gallery_of({}, pipeline=scripted)  # one worker: enrolment embeds 4 images at a time
    images = [scripted.script(f"alice-{i}", face(toward(0, 0.5, 10 + i))) for i in range(9)]
    report = gallery.enroll("alice", images)
    assert [(r.index, r.source) for r in report.results] == [(i, f"<input {i}>") for i in range(9)]
    named = gallery.enroll("bob", images[:5], sources=[f"b{i}.jpg" for i in range(5)])
    assert [r.source for r in named.results] == [f"b{i}.jpg" for i in range(5)]


def test_the_pipeline_names_inputs_from_where_a_chunk_starts(pipeline, obama):
    """The real pipeline: the numbering the enrolment above relies on (a path keeps its own name)."""
    results = pipeline.represent_batch([obama.read_bytes(), obama], start=5)
    assert [(r.index, r.source, len(r.faces)) for r in results] == [(5, "<input 5>", 1), (6, str(obama), 1)]

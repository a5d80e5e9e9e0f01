"""The gallery's decisions: what enrolment accepts, how people are ranked, checked and found to be doubles.

:class:`Gallery` holds every policy (what enrolment accepts, how a person's samples are aggregated, which
threshold decides) once; a backend only stores people and samples and finds nearest samples.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from facesift.errors import GalleryError, ImageError, InvalidArgumentError, InvalidPersonIdError, PersonNotFoundError
from facesift.gallery.export import read_export, write_export
from facesift.gallery.operating_point import AGGREGATIONS, OperatingPoint, resolve_operating_point
from facesift.gallery.relatives import compare_relatives, merge_relatives
from facesift.gallery.results import (
    Candidate,
    CheckOutcome,
    CheckResult,
    DuplicatePair,
    EnrollOutcome,
    EnrollReport,
    EnrollResult,
    GalleryStats,
    ImportReport,
    Person,
    PhotoSearchResult,
    Sample,
    SampleInfo,
    SearchDecision,
    SearchResult,
)
from facesift.gallery.store import CONTRACT, GalleryStore
from facesift.image import ImageInput, image_sha256, load_image
from facesift.pipeline import DEFAULT_FACE_POLICY, Pipeline, choice_scores, get_pipeline
from facesift.recognition.base import ModelCard
from facesift.results import FaceEmbedding, ImageFaces

#: The one rule for person ids, in the library, the API and the page (which says it in these words).
PERSON_ID_MAX = 256
PERSON_ID_RULE = (
    f"A person id has 1 to {PERSON_ID_MAX} characters: letters, digits, spaces and punctuation, "
    "but no / or \\ and no control characters."
)

#: A sample this similar to a stored one is the same photo (re-encoded, resized, lightly cropped).
DUPLICATE_SIMILARITY = 0.95
#: A second face whose face-choice score (pipeline.choice_scores: size, centrality, detector score) is at least this
#: fraction of the best face's makes a photo ambiguous: refused (measured in docs/face-choice.md).
AMBIGUOUS_CHOICE_RATIO = 0.7
#: How many of a person's best-matching samples the ``mean_top`` aggregation averages.
MEAN_TOP = 3


def model_card(model: str, pipeline: Pipeline | None, aggregation: str) -> ModelCard:
    """The card a gallery of ``model`` embeddings decides with (the pipeline's, if one is given), once the options
    are known to be valid: checked before a backend creates anything."""
    if aggregation not in AGGREGATIONS:
        raise InvalidArgumentError(f"Unknown aggregation {aggregation!r}; choose one of {', '.join(AGGREGATIONS)}")
    from facesift.recognition import load_card

    card = pipeline.embedder.card if pipeline is not None else load_card(model)
    if pipeline is not None and pipeline.model != model:
        raise GalleryError(f"The pipeline embeds with {pipeline.model!r} but the gallery was opened for {model!r}")
    return card


class _FromStore:
    """A gallery attribute that is its store's (where it is, its model and dims, its backend)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, gallery: Any, owner: type | None = None) -> Any:
        return self if gallery is None else getattr(gallery.store, self.name)


# --- the gallery -------------------------------------------------------------------------------------
class Gallery:
    """People and their face samples, searchable by face. Thread-safe: one lock guards every call.

    Every decision lives here, so every backend decides the same way; ``store`` (a :class:`GalleryStore`) only
    keeps people and samples and finds nearest samples. What a backend offers beyond that contract (SQLite's
    ``save_index()``, ``rebuild_index()``, ``expansion_search``) is reached on the gallery as on its store.
    """

    def __init__(
        self, store: GalleryStore, *, detector: str = "yunet", pipeline: Pipeline | None = None, aggregation: str = "best"
    ) -> None:
        self.store = store
        self.card = model_card(store.model, pipeline, aggregation)
        if self.card.dims != store.dims:
            raise GalleryError(f"The {store.model!r} model makes {self.card.dims}-d embeddings; this store holds {store.dims}-d ones")
        self.detector = detector
        self.aggregation = aggregation
        self._pipeline = pipeline
        self._lock = threading.RLock()

    uri = _FromStore()
    model = _FromStore()
    dims = _FromStore()
    backend = _FromStore()
    #: whether ``enroll(keep_images=True)`` can store the source images
    supports_images = _FromStore()

    def __getattr__(self, name: str) -> Any:
        """A backend's own extras, read through from the store (never the storage contract: that goes through
        the gallery's verbs, under its lock)."""
        store = self.__dict__.get("store")
        if store is None or name.startswith("_") or name in CONTRACT or not hasattr(store, name):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return getattr(store, name)

    def __setattr__(self, name: str, value: Any) -> None:
        """A backend's own settings (``gallery.expansion_search = 64``) are set on the store."""
        store = self.__dict__.get("store")
        if store is not None and not name.startswith("_") and name not in CONTRACT and name not in self.__dict__ \
                and not hasattr(type(self), name) and hasattr(store, name):
            setattr(store, name, value)
        else:
            object.__setattr__(self, name, value)

    def close(self) -> None:
        with self._lock:
            self.store.close()

    @property
    def pipeline(self) -> Pipeline:
        """Loaded on first use, so opening a gallery to list or remove people loads no model."""
        if self._pipeline is None:
            self._pipeline = get_pipeline(detector=self.detector, embedder=self.model)
        return self._pipeline

    def __enter__(self) -> "Gallery":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Gallery({self.uri!r}, model={self.model!r}, backend={self.backend!r})"

    # --- people --------------------------------------------------------------------------------------
    def add_person(self, person_id: str, metadata: dict | None = None) -> Person:
        """Register a person (no samples yet). Raises PersonExistsError if the id is taken."""
        validate_person_id(person_id)
        metadata = dict(metadata or {})
        json.dumps(metadata)  # refuse what cannot be stored, before storing anything
        with self._lock:
            return self.store.add_persons([(person_id, metadata, time.time())])[0]

    def get_person(self, person_id: str) -> Person:
        validate_person_id(person_id)
        with self._lock:
            person = self.store.get_person(person_id)
        if person is None:
            raise PersonNotFoundError(f"No person {person_id!r} in the gallery; enrol them first")
        return person

    def list_persons(self, offset: int = 0, limit: int = 100, *, contains: str = "") -> list[Person]:
        """People in enrolment order, a page at a time; ``contains`` keeps those whose id has it (any case)."""
        if offset < 0 or limit < 0:
            raise InvalidArgumentError("offset and limit must not be negative")
        with self._lock:
            return self.store.list_persons(offset, limit, contains)

    def samples_of(self, person_id: str) -> list[SampleInfo]:
        """A person's samples, oldest first: ids, qualities, dates, and whether the photo is kept."""
        self.get_person(person_id)
        with self._lock:
            return self.store.samples_of(person_id)

    def remove(self, person_id: str) -> int:
        """Delete a person and every sample (vectors and kept images). Returns how many samples went."""
        with self._lock:
            self.get_person(person_id)
            return self.store.remove_person(person_id)

    def remove_sample(self, sample_id: str) -> None:
        with self._lock:
            self.store.remove_sample(sample_id)

    def has_sample(self, sample_id: str) -> bool:
        with self._lock:
            return self.store.has_sample(sample_id)

    def samples(self) -> list[Sample]:
        """Every stored sample (clustering a gallery's faces reads them all)."""
        with self._lock:
            return [sample for chunk in self.store.iter_samples(1024) for sample in chunk]

    def sample_image(self, sample_id: str) -> bytes | None:
        """The source image bytes of a sample enrolled with ``keep_images=True``, else None."""
        with self._lock:
            return self.store.sample_image(sample_id)

    # --- enrolment -----------------------------------------------------------------------------------
    def enroll(
        self,
        person_id: str,
        images: Sequence[ImageInput],
        *,
        strict: bool = False,
        keep_images: bool = False,
        create: bool = True,
        sources: Sequence[str] | None = None,
        metadata: dict | None = None,
        on_result: Callable[[EnrollResult], None] | None = None,
        require_live: bool = False,
    ) -> EnrollReport:
        """Add face samples of one person, judging each image on its own (partial success).

        Each accepted sample is committed before the next image is judged, so ``on_result`` (called per
        image) only ever reports samples that survive a crash. ``strict`` also refuses a sample that is
        closer to another person than to this one; ``require_live`` refuses a face the liveness check calls a
        presentation attack (outcome ``spoof``, with the score and operating point in the reason).
        """
        # a file object can be read once: read it here so the detector and the content hash see the same bytes
        images = [image.read() if hasattr(image, "read") else image for image in images]
        if keep_images and not self.supports_images:
            raise GalleryError(f"The {self.backend} backend cannot keep images; enrol with keep_images=False")
        if sources is not None and len(sources) != len(images):
            raise ValueError(f"{len(sources)} sources given for {len(images)} images")
        validate_person_id(person_id)
        with self._lock:
            if self.store.get_person(person_id) is None:
                if not create:
                    raise PersonNotFoundError(f"No person {person_id!r} in the gallery; pass create=True to add them")
                self.add_person(person_id, metadata)
        results: list[EnrollResult] = []
        chunk = 4 * self.pipeline.workers
        for start in range(0, len(images), chunk):
            batch = images[start : start + chunk]
            analysed = self.pipeline.represent_batch(batch, policy="all", on_error="record", start=start)
            for image, item in zip(batch, analysed, strict=True):
                source = sources[item.index] if sources is not None else item.source
                result = self._enroll_one(person_id, item.index, source, image, item, strict, keep_images, require_live)
                results.append(result)
                if on_result is not None:
                    on_result(result)
        return EnrollReport(person_id, tuple(results))

    def _enroll_one(
        self, person_id: str, index: int, source: str, image: ImageInput, item: ImageFaces, strict: bool, keep_images: bool,
        require_live: bool = False,
    ) -> EnrollResult:
        def result(outcome: EnrollOutcome, reason: str, sample_id=None, other=None, similarity=None, quality=None) -> EnrollResult:
            return EnrollResult(index, source, outcome, sample_id, reason, other, similarity, quality)

        if item.error is not None:
            return result(EnrollOutcome.INVALID_IMAGE, f"{item.error_type}: {item.error}")
        chosen, problem = pick_face(item.faces, item.image_size)
        if chosen is None:
            outcome = EnrollOutcome.NO_FACE if not item.faces else EnrollOutcome.MULTIPLE_FACES
            return result(outcome, problem)
        quality = chosen.quality
        if not quality.acceptable:
            return result(EnrollOutcome.LOW_QUALITY, "; ".join(quality.reasons), quality=quality)
        if require_live and (spoof := self._spoof(image, chosen)):
            return result(EnrollOutcome.SPOOF, spoof, quality=quality)
        try:
            digest = image_sha256(image)
            image_bytes = _image_bytes(image) if keep_images else None
        except (ImageError, OSError) as exc:
            return result(EnrollOutcome.INVALID_IMAGE, str(exc))
        with self._lock:
            same_file = self.store.find_by_hash(digest)
            if same_file is not None:
                sample_id, owner = same_file
                if owner == person_id:
                    return result(EnrollOutcome.DUPLICATE, f"the same image is already sample {sample_id}", sample_id, quality=quality)
                return result(EnrollOutcome.CONFLICT, f"the same image is enrolled for {owner!r}", None, owner, 1.0, quality)
            vector = chosen.embedding[None, :]
            nearest = self.store.nearest(vector, 1)[0]
            if nearest and nearest[0][2] >= DUPLICATE_SIMILARITY:
                sample_id, owner, similarity = nearest[0]
                if owner == person_id:
                    reason = f"near-identical to sample {sample_id} (similarity {similarity:.3f})"
                    return result(EnrollOutcome.DUPLICATE, reason, sample_id, None, similarity, quality)
                reason = f"near-identical to a sample of {owner!r} (similarity {similarity:.3f})"
                return result(EnrollOutcome.CONFLICT, reason, None, owner, similarity, quality)
            if strict:
                refusal = self._strict_refusal(person_id, chosen.embedding, self.operating_point().threshold)
                if refusal is not None:
                    other, similarity, reason = refusal
                    return result(EnrollOutcome.CONFLICT, reason, None, other, similarity, quality)
            vector = chosen.embedding.astype(np.float32)
            sample = Sample(uuid.uuid4().hex, person_id, vector, self.model, quality.score, digest, time.time(), image_bytes)
            self.store.add_samples([sample])
        return result(EnrollOutcome.ADDED, "added", sample.sample_id, quality=quality)

    def _strict_refusal(self, person_id: str, vector: np.ndarray, threshold: float) -> tuple[str, float, str] | None:
        """Strict mode: the other person this sample is closer to than to its own, if any (``threshold``: the
        gallery's default operating point, for a person with no samples yet)."""
        candidates = self._rank(vector[None, :], 5)[0]
        kin = compare_relatives(self, person_id, vector[None, :], threshold)
        if kin is not None:
            candidates = merge_relatives(candidates, kin)
        other = next((c for c in candidates if c[0] != person_id), None)
        if other is None:
            return None
        own = self._person_scores(vector[None, :], [person_id]).get(person_id)
        if own is None:
            if other[1] >= threshold:
                reason = f"matches {other[0]!r} (similarity {other[1]:.3f} >= threshold {threshold:.3f}) and this person has no samples yet"
                return other[0], other[1], reason
            return None
        if other[1] > own[0]:
            reason = f"closer to {other[0]!r} (similarity {other[1]:.3f}) than to {person_id!r} ({own[0]:.3f})"
            return other[0], other[1], reason + (f"; {kin.note}" if kin is not None else "")
        return None

    def add_samples(self, samples: Iterable[Sample], *, create: bool = True) -> int:
        """Bulk-add precomputed samples with no checks (migration, import, benchmarks). Returns the count.

        Missing people are created when ``create``; every embedding must come from this gallery's model.
        """
        batch = list(samples)
        for sample in batch:
            if sample.model != self.model or np.asarray(sample.embedding).shape != (self.dims,):
                raise GalleryError(
                    f"Sample {sample.sample_id} is a {np.asarray(sample.embedding).shape} {sample.model!r} embedding; "
                    f"this gallery holds {self.dims}-d {self.model!r} embeddings"
                )
        with self._lock:
            wanted = list(dict.fromkeys(s.person_id for s in batch))
            existing = self.store.existing(wanted)
            missing = [pid for pid in wanted if pid not in existing]
            if missing and not create:
                raise PersonNotFoundError(f"No person {missing[0]!r} in the gallery")
            self.store.add_persons([(pid, {}, time.time()) for pid in missing])
            self.store.add_samples(batch)
        return len(batch)

    # --- search --------------------------------------------------------------------------------------
    def operating_point(
        self, *, fpir: float | None = None, false_match_rate: float | None = None, threshold: float | None = None, people: int | None = None
    ) -> OperatingPoint:
        """The operating point a 1:N decision takes now: the threshold for ``fpir`` (default
        :data:`~facesift.gallery.operating_point.DEFAULT_FPIR`) with this many people and samples and this
        aggregation, or the FPIR a given per-comparison ``false_match_rate`` or raw ``threshold`` implies."""
        with self._lock:
            persons, samples = self.store.counts()
        if people is not None:  # a search over fewer people than are stored (duplicates: everyone but oneself)
            samples, persons = round(samples * people / max(persons, 1)), people
        return resolve_operating_point(
            self.card, persons, samples, self.aggregation, fpir=fpir, false_match_rate=false_match_rate, threshold=threshold
        )

    def search(
        self,
        image: ImageInput,
        *,
        k: int = 5,
        fpir: float | None = None,
        threshold: float | None = None,
        false_match_rate: float | None = None,
    ) -> SearchResult:
        """Who is the face in ``image`` (the ``auto`` face choice)? Up to ``k`` people, best first, and a decision.

        ``decision`` is "match" when the best person's similarity reaches the threshold of the gallery's
        operating point (:meth:`operating_point`: by default an FPIR of 1e-2 for the gallery as it is now), else
        "unknown". The result's ``operating_point`` says which FPIR, gallery size and threshold were used.
        """
        point = self.operating_point(fpir=fpir, threshold=threshold, false_match_rate=false_match_rate)
        faces = self.pipeline.represent(image, policy=DEFAULT_FACE_POLICY)
        if not faces:
            return SearchResult(SearchDecision.NO_FACE, (), point.threshold, point.false_match_rate, None, None, point)
        return self._decide(faces[0], k, point)

    def search_faces(
        self,
        image: ImageInput,
        *,
        k: int = 5,
        fpir: float | None = None,
        threshold: float | None = None,
        false_match_rate: float | None = None,
    ) -> PhotoSearchResult:
        """Identify every face of a photo (a group photo, for tagging): one decision per face, with its box.

        Each face is its own search, so each is decided at the same per-search FPIR as :meth:`search`.
        """
        point = self.operating_point(fpir=fpir, threshold=threshold, false_match_rate=false_match_rate)
        faces = sorted(self.pipeline.represent(image, policy="all"), key=lambda f: -f.face.area)
        return PhotoSearchResult(tuple(self._decide(face, k, point) for face in faces), point)

    def search_embedding(
        self,
        vector: np.ndarray,
        *,
        k: int = 5,
        fpir: float | None = None,
        threshold: float | None = None,
        false_match_rate: float | None = None,
    ) -> SearchResult:
        """``search`` for a face that is already embedded (a video track's aggregate, say): the same
        candidates and the same decision at the same operating point; ``face`` and ``quality`` are None."""
        point = self.operating_point(fpir=fpir, threshold=threshold, false_match_rate=false_match_rate)
        return self._decide_vector(vector, k, point)

    def _decide(self, face: FaceEmbedding, k: int, point: OperatingPoint) -> SearchResult:
        return dataclasses.replace(self._decide_vector(face.embedding, k, point), face=face.face, quality=face.quality)

    def _decide_vector(self, vector: np.ndarray, k: int, point: OperatingPoint) -> SearchResult:
        candidates = tuple(self.search_embeddings(np.asarray(vector, dtype=np.float32).reshape(1, -1), k=k)[0])
        matched = bool(candidates) and candidates[0].similarity >= point.threshold
        decision = SearchDecision.MATCH if matched else SearchDecision.UNKNOWN
        return SearchResult(decision, candidates, point.threshold, point.false_match_rate, None, None, point)

    def search_embeddings(self, vectors: np.ndarray, *, k: int = 5) -> list[list[Candidate]]:
        """Nearest people (one candidate each, best first) for each row of ``vectors``."""
        vectors = self._as_queries(vectors)
        if k < 1:
            raise InvalidArgumentError(f"k must be at least 1, got {k}")
        with self._lock:
            ranked = self._rank(vectors, k)
            people = {pid for row in ranked for pid, *_ in row}
            metadata = self.store.metadata(people) if people else {}
        return [
            [Candidate(rank, pid, sim, sample_id, metadata.get(pid, {})) for rank, (pid, sim, sample_id) in enumerate(row, 1)]
            for row in ranked
        ]

    def nearest_samples(self, vectors: np.ndarray, count: int = 1) -> list[list[tuple[str, str, float]]]:
        """The nearest individual samples, not people: per row, (sample_id, person_id, similarity), best first."""
        vectors = self._as_queries(vectors)
        with self._lock:
            return self.store.nearest(vectors, count)

    def _rank(self, vectors: np.ndarray, k: int) -> list[list[tuple[str, float, str]]]:
        """Per query: up to ``k`` (person_id, aggregated similarity, best sample id), best first.

        The index gives the nearest samples; people are ordered by their best one, and the best
        max(2k, 10) of those people are then scored exactly (float32, all their samples) and re-ordered.
        """
        nearest = self.store.nearest(vectors, max(8 * k, 32))
        ranked = []
        for vector, hits in zip(vectors, nearest, strict=True):
            best: dict[str, tuple[float, str]] = {}
            for sample_id, pid, sim in hits:
                if pid not in best or sim > best[pid][0]:
                    best[pid] = (sim, sample_id)
            order = sorted(best.items(), key=lambda kv: -kv[1][0])
            if order:
                scores = self._person_scores(vector[None, :], [pid for pid, _ in order[: max(2 * k, 10)]])
                order = sorted(scores.items(), key=lambda kv: -kv[1][0])
            ranked.append([(pid, float(sim), sample_id) for pid, (sim, sample_id) in order[:k]])
        return ranked

    def _person_scores(self, vector: np.ndarray, people: Sequence[str]) -> dict[str, tuple[float, str]]:
        """Exact aggregated similarity of one query to each named person: (score, best sample id)."""
        scores = {}
        for pid, (sample_ids, matrix) in self.store.person_vectors(people).items():
            if not len(sample_ids):
                continue
            sims = matrix @ vector[0]
            best = int(np.argmax(sims))
            if self.aggregation == "best":
                score = float(sims[best])
            else:
                score = float(np.mean(np.sort(sims)[::-1][:MEAN_TOP]))
            scores[pid] = (score, sample_ids[best])
        return scores

    # --- the profile-photo check ---------------------------------------------------------------------
    def check(
        self,
        person_id: str,
        image: ImageInput,
        *,
        fpir: float | None = None,
        threshold: float | None = None,
        false_match_rate: float | None = None,
        require_live: bool = False,
    ) -> CheckResult:
        """Is ``image`` a usable photo of ``person_id``, of someone else enrolled, or of nobody we know?

        Decided at the gallery's operating point (:meth:`operating_point`), since the photo is compared with everyone.
        ``require_live``: a face the liveness check calls a presentation attack is ``spoof``, never a match.
        """
        image = image.read() if require_live and hasattr(image, "read") else image
        point = self.operating_point(fpir=fpir, threshold=threshold, false_match_rate=false_match_rate)
        limit = point.threshold
        self.get_person(person_id)
        found = self.pipeline.represent_batch([image], policy="all", on_error="raise")[0]
        analysed = found.faces
        kin = None  # what comparing with registered relatives found, once compared

        def outcome(kind, reasons, face=None, owner=None, other=None, other_sim=None) -> CheckResult:
            reasons = tuple(reasons) + ((kin.note,) if kin is not None else ())
            return CheckResult(
                kind, person_id, owner, other, other_sim, limit, reasons, face.face if face else None, face.quality if face else None, point
            )

        chosen, problem = pick_face(analysed, found.image_size)
        if chosen is None:
            return outcome(CheckOutcome.NO_FACE if not analysed else CheckOutcome.MULTIPLE_FACES, [problem])
        if not chosen.quality.acceptable:
            return outcome(CheckOutcome.LOW_QUALITY, chosen.quality.reasons, chosen)
        if require_live and (spoof := self._spoof(image, chosen)):
            return outcome(CheckOutcome.SPOOF, [spoof], chosen)
        vector = chosen.embedding[None, :]
        with self._lock:
            own = self._person_scores(vector, [person_id]).get(person_id)
            others = [c for c in self._rank(vector, 3)[0] if c[0] != person_id]
            kin = compare_relatives(self, person_id, vector, limit)
        if kin is not None:  # registered relatives: all compared, and the relative-safe point decides
            others, limit = merge_relatives(others, kin), kin.threshold
        owner_sim = own[0] if own else None
        other, other_sim = (others[0][0], others[0][1]) if others else (None, None)
        if owner_sim is not None and owner_sim >= limit and (other_sim is None or owner_sim >= other_sim):
            reason = f"matches {person_id!r} (similarity {owner_sim:.3f} >= {limit:.3f})"
            if other_sim is not None and other_sim >= limit:
                reason += f"; also above the threshold for {other!r} ({other_sim:.3f}), but less"
            return outcome(CheckOutcome.OWNER, [reason], chosen, owner_sim, other, other_sim)
        if other_sim is not None and other_sim >= limit:
            own_text = "no samples" if owner_sim is None else f"{owner_sim:.3f}"
            reason = f"matches {other!r} better (similarity {other_sim:.3f} >= {limit:.3f}; {person_id!r}: {own_text})"
            return outcome(CheckOutcome.OTHER_PERSON, [reason], chosen, owner_sim, other, other_sim)
        if owner_sim is None:
            reason = f"{person_id!r} has no samples to compare with, and nobody else matches"
        else:
            reason = f"matches nobody: best similarity to {person_id!r} is {owner_sim:.3f} < {limit:.3f}"
        return outcome(CheckOutcome.UNKNOWN, [reason], chosen, owner_sim, other, other_sim)

    def _spoof(self, image: ImageInput, face: FaceEmbedding) -> str | None:
        """Why ``face`` of ``image`` is refused as a presentation attack, or None when it passes as live."""
        from facesift.analysis import check_liveness

        check = check_liveness(load_image(image, max_pixels=self.pipeline.max_pixels), face)
        return None if check.live else check.decision

    # --- duplicates across the gallery ---------------------------------------------------------------
    def duplicates(
        self, *, fpir: float | None = None, threshold: float | None = None, false_match_rate: float | None = None
    ) -> list[DuplicatePair]:
        """Pairs of people who are probably the same human: their closest samples match, best first.

        Each person is searched against everyone else, so the operating point is the search's for a gallery of
        one person fewer: by default at most 1 % of people who have no double are reported with one.
        """
        with self._lock:
            persons, _ = self.store.counts()
        point = self.operating_point(fpir=fpir, threshold=threshold, false_match_rate=false_match_rate, people=max(persons - 1, 1))
        limit = point.threshold
        pairs: dict[tuple[str, str], float] = {}
        with self._lock:
            for samples in self.store.iter_samples(1024):
                matrix = np.stack([s.embedding for s in samples]).astype(np.float32)
                for sample, hits in zip(samples, self.store.nearest(matrix, 16), strict=True):
                    for _, pid, sim in hits:
                        if pid != sample.person_id and sim >= limit:
                            key = tuple(sorted((sample.person_id, pid)))
                            pairs[key] = max(pairs.get(key, -1.0), float(sim))
        return [DuplicatePair(a, b, s, point) for (a, b), s in sorted(pairs.items(), key=lambda kv: -kv[1])]

    # --- stats, export, import -----------------------------------------------------------------------
    def stats(self) -> GalleryStats:
        with self._lock:
            persons, samples = self.store.counts()
            return GalleryStats(self.backend, self.uri, self.model, self.dims, persons, samples, self.store.index_info())

    def export(self, path: str | Path) -> int:
        """Write every person and sample to a portable JSON-lines file (gzip if it ends in .gz): the format of
        :mod:`facesift.gallery.export`. Returns the number of samples written."""
        with self._lock:
            return write_export(Path(path), self.model, self.dims, self.store.counts(), self._every_person(), self.store.iter_samples(1024))

    def _every_person(self) -> Iterator[Person]:
        offset = 0
        while page := self.store.list_persons(offset, 1000, ""):
            yield from page
            offset += len(page)

    def import_file(self, path: str | Path) -> ImportReport:
        """Add the people and samples of an exported file; samples already here (same id) are skipped."""
        persons_added = samples_added = skipped = 0
        for item in read_export(Path(path), self.model, self.dims):
            with self._lock:
                if isinstance(item, Person):
                    if self.store.get_person(item.person_id) is None:
                        self.store.add_persons([(item.person_id, item.metadata, item.created_at)])
                        persons_added += 1
                    continue
                fresh = [s for s in item if not self.store.has_sample(s.sample_id)]
                skipped += len(item) - len(fresh)
                self.store.add_samples(fresh)
                samples_added += len(fresh)
        return ImportReport(persons_added, samples_added, skipped)

    def _as_queries(self, vectors: np.ndarray) -> np.ndarray:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim == 1:
            vectors = vectors[None, :]
        if vectors.ndim != 2 or vectors.shape[1] != self.dims:
            raise ValueError(f"Expected (n, {self.dims}) embeddings from {self.model!r}, got shape {vectors.shape}")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        if not np.all(np.isfinite(vectors)) or np.any(norms == 0):
            raise ValueError("Embeddings must be finite and non-zero")
        return vectors / norms


def pick_face(faces: Sequence[FaceEmbedding], image_size: tuple[int, int]) -> tuple[FaceEmbedding | None, str]:
    """The face a one-person photo is about, or None and why not.

    Policy: the face the ``auto`` choice scores best (size, centrality, detector score), unless another face
    scores at least 70 % as well (two people side by side: we cannot tell whose photo it is, so it is refused);
    a bystander beside the subject of a press photo, or small faces in the background, are ignored.
    """
    if not faces:
        return None, "no face found"
    scores = choice_scores([f.face for f in faces], image_size)
    order = np.argsort(-scores, kind="stable")
    best = scores[order[0]]
    if len(faces) > 1 and scores[order[1]] >= AMBIGUOUS_CHOICE_RATIO * best:
        similar = int(np.sum(scores >= AMBIGUOUS_CHOICE_RATIO * best))
        return None, f"{similar} faces that could each be the photo's subject (similar size and place): use a photo with one person"
    return faces[int(order[0])], ""


def validate_person_id(person_id: str) -> str:
    """``person_id`` when it follows :data:`PERSON_ID_RULE` (the library, the API and the page apply the same rule:
    a ``/`` could not travel in a URL path, and control characters would not print)."""
    if (not isinstance(person_id, str) or not person_id.strip() or len(person_id) > PERSON_ID_MAX
            or any(c in "/\\" or not c.isprintable() for c in person_id)):
        long = isinstance(person_id, str) and len(person_id) > 40
        shown = f"of {len(person_id)} characters" if long else repr(person_id)
        raise InvalidPersonIdError(f"The person id {shown} is not allowed. {PERSON_ID_RULE}")
    return person_id


def _image_bytes(image: ImageInput) -> bytes:
    """The bytes to keep for a sample image: the file as given, or a PNG of pixels."""
    import io

    from PIL import Image

    if isinstance(image, (bytes, bytearray, memoryview)):
        return bytes(image)
    if isinstance(image, (str, Path)) or hasattr(image, "__fspath__"):
        return Path(image).read_bytes()
    from facesift.image import load_image

    buffer = io.BytesIO()
    Image.fromarray(load_image(image)).save(buffer, format="PNG")
    return buffer.getvalue()

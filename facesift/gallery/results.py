"""What a gallery stores and what its verbs return: people, samples, and the typed outcome of every decision.

Every outcome is a str-valued Enum (``EnrollOutcome``, ``CheckOutcome``, ``SearchDecision``; 1:1 verification's
``VerificationDecision`` likewise), so JSON carries the bare value ("added", "owner", "match"); the sentences a
person reads are separate fields (``reason``, ``reasons``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

from facesift.gallery.operating_point import OperatingPoint
from facesift.results import Face, FaceQuality, Serialisable, on_request, unserialised


class EnrollOutcome(str, Enum):
    ADDED = "added"
    NO_FACE = "no_face"
    MULTIPLE_FACES = "multiple_faces"
    LOW_QUALITY = "low_quality"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    INVALID_IMAGE = "invalid_image"
    SPOOF = "spoof"


class SearchDecision(str, Enum):
    """Who a searched face is: someone (``match``: the best person reaches the threshold), ``unknown``, or ``no_face``."""

    MATCH = "match"
    UNKNOWN = "unknown"
    NO_FACE = "no_face"


class CheckOutcome(str, Enum):
    OWNER = "owner"
    OTHER_PERSON = "other_person"
    UNKNOWN = "unknown"
    NO_FACE = "no_face"
    LOW_QUALITY = "low_quality"
    MULTIPLE_FACES = "multiple_faces"
    SPOOF = "spoof"


@dataclass(frozen=True)
class Person(Serialisable):
    person_id: str
    metadata: dict[str, Any]
    sample_count: int
    created_at: float


@dataclass(frozen=True)
class Sample(Serialisable):
    """One stored face: what a backend writes and reads. ``image`` only when enrolled with keep_images."""

    sample_id: str
    person_id: str
    embedding: np.ndarray = on_request()
    model: str
    quality: float
    content_sha256: str
    created_at: float
    image: bytes | None = unserialised(default=None)


@dataclass(frozen=True)
class SampleInfo(Serialisable):
    """What a gallery view shows of one sample (no vector, no image bytes)."""

    sample_id: str
    person_id: str
    quality: float
    created_at: float
    has_image: bool


@dataclass(frozen=True)
class EnrollResult(Serialisable):
    index: int
    source: str
    outcome: EnrollOutcome
    sample_id: str | None
    reason: str
    other_person: str | None = None
    similarity: float | None = None
    quality: FaceQuality | None = None


@dataclass(frozen=True)
class EnrollReport(Serialisable):
    person_id: str
    results: tuple[EnrollResult, ...]

    @property
    def added(self) -> int:
        return sum(r.outcome is EnrollOutcome.ADDED for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        return super().to_dict() | {"added": self.added}


@dataclass(frozen=True)
class Candidate(Serialisable):
    rank: int
    person_id: str
    similarity: float
    sample_id: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class SearchResult(Serialisable):
    """One face's answer: who it is (or "unknown"), at the operating point stated in ``operating_point``."""

    decision: SearchDecision
    candidates: tuple[Candidate, ...]
    threshold: float
    false_match_rate: float | None
    face: Face | None
    quality: FaceQuality | None
    operating_point: OperatingPoint | None = None

    @property
    def person_id(self) -> str | None:
        """The matched person, or None when the decision is not a match."""
        return self.candidates[0].person_id if self.decision is SearchDecision.MATCH else None


@dataclass(frozen=True)
class PhotoSearchResult(Serialisable):
    """Every face of one photo identified (the photo-tagging case): one :class:`SearchResult` per face, with its
    box, largest face first; all taken at the same operating point."""

    faces: tuple[SearchResult, ...]
    operating_point: OperatingPoint


@dataclass(frozen=True)
class CheckResult(Serialisable):
    outcome: CheckOutcome
    person_id: str
    owner_similarity: float | None
    other_person: str | None
    other_similarity: float | None
    threshold: float
    reasons: tuple[str, ...]
    face: Face | None
    quality: FaceQuality | None
    operating_point: OperatingPoint | None = None


@dataclass(frozen=True)
class DuplicatePair(Serialisable):
    person_a: str
    person_b: str
    similarity: float
    operating_point: OperatingPoint | None = None


@dataclass(frozen=True)
class GalleryStats(Serialisable):
    backend: str
    uri: str
    model: str
    dims: int
    persons: int
    samples: int
    index: dict[str, Any]


@dataclass(frozen=True)
class ImportReport(Serialisable):
    persons_added: int
    samples_added: int
    samples_skipped: int

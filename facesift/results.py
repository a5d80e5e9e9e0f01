"""The typed results every step returns: faces, their quality, embeddings and decisions.

Each has ``to_dict()`` giving plain JSON-ready values, so the CLI, the service and scripts print the same thing.
What it writes is declared on the fields, not guessed from how they print: every field, nested dataclasses
included, except those made with :func:`unserialised` (never written: bulky arrays, raw bytes, per-item detail)
or :func:`on_request` (written only when named, after the others: ``face.to_dict(include=("embedding",))``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

Point = tuple[float, float]
Box = tuple[float, float, float, float]

#: The field-metadata key :func:`to_plain` reads: ``"never"`` or ``"on_request"`` (absent: always written).
SERIALISE = "facesift.serialise"


def unserialised(**options: Any) -> Any:
    """A dataclass field that ``to_dict()`` never writes and ``repr`` does not show (``options`` as ``field()``'s)."""
    return dataclasses.field(repr=False, metadata={SERIALISE: "never"}, **options)


def on_request(**options: Any) -> Any:
    """A dataclass field that ``to_dict()`` writes only when named in ``include`` (after the other fields), e.g. an
    embedding, which most answers leave out; ``repr`` does not show it."""
    return dataclasses.field(repr=False, metadata={SERIALISE: "on_request"}, **options)


def to_plain(value: Any, include: Collection[str] = ()) -> Any:
    """``value`` as JSON-ready values: arrays as lists, numpy scalars as Python ones, dataclasses as dicts of their
    fields (by the rule above; ``include`` names the on-request fields to write, at any depth)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if isinstance(value, dict):
        return {key: to_plain(item, include) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(item, include) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        written = [f for f in fields if SERIALISE not in f.metadata]
        written += [f for f in fields if f.metadata.get(SERIALISE) == "on_request" and f.name in include]
        return {f.name: to_plain(getattr(value, f.name), include) for f in written}
    return value


class Serialisable:
    """The ``to_dict()`` of every result dataclass (see :func:`to_plain` for what it writes)."""

    def to_dict(self, *, include: Collection[str] = ()) -> dict[str, Any]:
        return to_plain(self, include)


@dataclass(frozen=True)
class Face(Serialisable):
    """One detected face in source-image pixel coordinates.

    ``landmarks`` are five (x, y) points in the usual order: right eye, left eye, nose tip, right mouth
    corner, left mouth corner (the subject's right eye is on the left of the picture).
    """

    box: Box
    landmarks: tuple[Point, Point, Point, Point, Point]
    score: float
    detector: str

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    @property
    def center(self) -> Point:
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)

    @property
    def eye_distance(self) -> float:
        (rx, ry), (lx, ly) = self.landmarks[0], self.landmarks[1]
        return float(np.hypot(lx - rx, ly - ry))

    def landmarks_array(self) -> np.ndarray:
        return np.asarray(self.landmarks, dtype=np.float32)

    def scaled(self, factor: float) -> Face:
        """The same face in an image ``factor`` times as large (an image decoded reduced, mapped back)."""
        box = tuple(float(v * factor) for v in self.box)
        points = tuple((float(x * factor), float(y * factor)) for x, y in self.landmarks)
        return Face(box, points, self.score, self.detector)


@dataclass(frozen=True)
class QualityMeasures(Serialisable):
    """What ``quality.measure`` reads off a face, before any limit is applied (what the evaluation cache keeps)."""

    face_size: float
    eye_distance: float
    detector_score: float
    sharpness: float
    yaw: float
    pitch: float
    roll: float
    brightness: float
    contrast: float


@dataclass(frozen=True)
class FaceQuality(QualityMeasures):
    """How usable a face is for recognition: the measurements, the score and the reasons it fails the limits."""

    score: float
    acceptable: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class FaceEmbedding(Serialisable):
    """A face, its quality, and its L2-normalised embedding in ``model``'s space.

    ``embedded_by`` names the cross-resolution model that computed it for a small face (None: ``model`` itself).
    ``to_dict()`` leaves the embedding out unless asked: ``to_dict(include=("embedding",))``.
    """

    face: Face
    quality: FaceQuality
    embedding: np.ndarray = on_request()
    model: str
    embedded_by: str | None = None


@dataclass(frozen=True)
class ImageFaces(Serialisable):
    """Everything found in one input of a batch; ``error`` is set (and ``faces`` empty) when the input failed."""

    index: int
    source: str
    faces: tuple[FaceEmbedding, ...]
    image_size: tuple[int, int] | None = None
    error: str | None = None
    error_type: str | None = None


class VerificationDecision(str, Enum):
    SAME_PERSON = "same_person"
    DIFFERENT_PEOPLE = "different_people"


@dataclass(frozen=True)
class Verification(Serialisable):
    """A 1:1 decision: are the faces in two images the same person, at which operating point (``explanation``
    says it in a sentence)."""

    verified: bool
    similarity: float
    threshold: float
    false_match_rate: float | None
    model: str
    face_a: Face
    face_b: Face
    quality_a: FaceQuality
    quality_b: FaceQuality
    decision: VerificationDecision
    explanation: str


@dataclass(frozen=True)
class DetectedFace(Serialisable):
    """A detected face with its quality assessment (what ``facesift.detect`` returns)."""

    face: Face
    quality: FaceQuality

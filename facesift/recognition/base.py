"""The contract every embedder meets, the base class of single-model backends, their model card and registry.

Finding an embedder by name (backends, presets, models trained here) is :mod:`facesift.recognition.lookup`."""

from __future__ import annotations

import json
import math
from abc import abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol, Self, Sequence, runtime_checkable

import cv2
import numpy as np

from facesift.alignment import align_face
from facesift.errors import ClosedError, InvalidArgumentError
from facesift.models import trained_dir
from facesift.registry import Registry, user_dir
from facesift.results import Face

_PACKAGED_CARDS = Path(__file__).with_name("cards")


@dataclass(frozen=True)
class ModelCard:
    """What a user needs to trust an embedder: what it is, its licence, and calibrated operating points.

    ``thresholds`` maps a false-match rate (the fraction of different-person pairs accepted) to the cosine
    similarity threshold that gives it on the calibration data named in ``calibration``.
    """

    name: str
    dims: int
    licence: str
    source: str
    input_spec: str
    metric: str = "cosine"
    default_false_match_rate: float = 1e-3
    thresholds: dict[str, float] = field(default_factory=dict)
    calibration: str = ""
    notes: str = ""
    #: a cross-resolution model distilled from this embedder: its vectors compare with that embedder's
    compatible_with: str = ""
    #: the pipeline uses this model instead of ``compatible_with`` for faces whose eyes are closer than this (px)
    eye_distance_below: float = 0.0
    #: embed each crop and its mirror image and add the two (test-time augmentation), where it measured better
    flip: bool = False
    #: what a model we trained learned from (its people, photos and their terms)
    training_data: str = ""
    #: generalised Pareto model of the impostor scores above ``threshold`` (where the rate is ``rate``), for rates
    #: below the calibrated table: FMR(t) = rate * (1 + shape * (t - threshold) / scale) ** (-1 / shape)
    impostor_tail: dict = field(default_factory=dict)
    #: per aggregation, how a person's m samples raise a stranger's chance to pass them: ``{"exponent": a}``, m ** a
    aggregation: dict = field(default_factory=dict)
    #: relative-safe points: a relatives' false-match rate -> the threshold giving it on kin pairs
    #: (``facesift evaluate kin --calibrate``); used when a person has registered relatives
    relative_thresholds: dict[str, float] = field(default_factory=dict)
    default_relative_match_rate: float = 1e-2
    relative_calibration: str = ""

    def relative_threshold_for(self, rate: float | None = None) -> float | None:
        """The relative-safe threshold for a relatives' false-match rate (None where none is calibrated)."""
        rate = self.default_relative_match_rate if rate is None else rate
        return next((v for k, v in self.relative_thresholds.items() if math.isclose(float(k), rate)), None)

    def threshold_for(self, false_match_rate: float | None = None) -> float:
        """Cosine threshold for a false-match rate: interpolated in log-FMR between calibrated points, and read
        from the tail model (``impostor_tail``) for rates below where it starts."""
        fmr = self.default_false_match_rate if false_match_rate is None else false_match_rate
        points = sorted((float(k), v) for k, v in self.thresholds.items())
        if not points:
            raise InvalidArgumentError(f"Model card {self.name!r} has no calibrated thresholds; pass a threshold")
        tail = self.impostor_tail
        if tail and 0 < fmr < tail["rate"]:
            return _tail_threshold(tail, fmr)
        if not points[0][0] <= fmr <= points[-1][0]:
            raise InvalidArgumentError(
                f"False-match rate {fmr:g} is outside the calibrated range of {self.name!r} "
                f"({points[0][0]:g} to {points[-1][0]:g}); pass an explicit threshold instead"
            )
        for (low_fmr, low_t), (high_fmr, high_t) in zip(points, points[1:], strict=False):
            if low_fmr <= fmr <= high_fmr:
                if high_fmr == low_fmr:
                    return low_t
                weight = (math.log(fmr) - math.log(low_fmr)) / (math.log(high_fmr) - math.log(low_fmr))
                return low_t + weight * (high_t - low_t)
        return points[0][1]

    @property
    def lowest_false_match_rate(self) -> float:
        """The smallest per-comparison rate this card gives a threshold for (0 with a tail model)."""
        return 0.0 if self.impostor_tail else min(float(k) for k in self.thresholds)

    def false_match_rate_at(self, threshold: float) -> float:
        """The per-comparison false-match rate a cosine threshold stands for (the inverse of :meth:`threshold_for`);
        clipped to the calibrated range's ends where the card knows nothing further."""
        points = sorted((v, float(k)) for k, v in self.thresholds.items())
        if not points:
            raise InvalidArgumentError(f"Model card {self.name!r} has no calibrated thresholds")
        tail = self.impostor_tail
        if tail and threshold >= tail["threshold"]:
            return _tail_rate(tail, threshold)
        if threshold <= points[0][0]:
            return points[0][1]
        if threshold >= points[-1][0]:
            return points[-1][1]
        for (low_t, low_fmr), (high_t, high_fmr) in zip(points, points[1:], strict=False):
            if low_t <= threshold <= high_t:
                weight = (threshold - low_t) / (high_t - low_t) if high_t > low_t else 0.0
                return math.exp(math.log(low_fmr) + weight * (math.log(high_fmr) - math.log(low_fmr)))
        return points[-1][1]

    def to_dict(self) -> dict:
        return asdict(self)


def _tail_rate(tail: dict, threshold: float) -> float:
    """FMR above the tail's start from its generalised Pareto fit (0 past a bounded tail's end)."""
    excess = (threshold - tail["threshold"]) / tail["scale"]
    shape = tail["shape"]
    if abs(shape) < 1e-9:
        return tail["rate"] * math.exp(-excess)
    base = 1.0 + shape * excess
    return tail["rate"] * base ** (-1.0 / shape) if base > 0 else 0.0


def _tail_threshold(tail: dict, fmr: float) -> float:
    """Inverse of :func:`_tail_rate`, capped at cosine 1 (a bounded tail ends before rates that small)."""
    ratio, shape = fmr / tail["rate"], tail["shape"]
    if abs(shape) < 1e-9:
        excess = -math.log(ratio)
    else:
        excess = (ratio ** (-shape) - 1.0) / shape
    return min(tail["threshold"] + tail["scale"] * excess, 1.0)


def user_cards_dir() -> Path:
    """Where calibrated cards written by ``facesift evaluate calibrate`` live (``FACESIFT_CARDS_DIR``)."""
    return user_dir("FACESIFT_CARDS_DIR", "XDG_CONFIG_HOME", ".config", "facesift", "cards")


def load_card(name: str) -> ModelCard:
    """The card for ``name``: a user-calibrated one if present, else the one shipped with facesift."""
    name = PRESETS.get(name, name)
    for folder in (user_cards_dir(), trained_dir(), _PACKAGED_CARDS):
        path = folder / f"{name}.json"
        if path.is_file():
            return ModelCard(**json.loads(path.read_text()))
    raise FileNotFoundError(f"No model card for {name!r}")


def save_card(card: ModelCard, folder: Path | None = None) -> Path:
    """Write a card (by default into the user's cards folder, which then takes precedence)."""
    folder = folder or user_cards_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{card.name}.json"
    path.write_text(json.dumps(card.to_dict(), indent=2) + "\n")
    return path


@runtime_checkable
class Embedder(Protocol):
    """What the pipeline needs from an embedder: a name and model card (its thresholds), the crop it takes, and
    L2-normalised vectors for a batch of those crops. One network (:class:`ModelEmbedder`) or a composite of
    several (the fusion) implement it; both close what they hold, and are context managers."""

    name: str
    #: the side of the square crop the pipeline hands over (the fusion's strip is this high)
    input_size: int
    #: the largest batch sent to the network in one call: on a 2-core CPU batch 8 is as fast per face as
    #: batch 32 and needs a quarter of the activation memory (peak RSS 311 MB instead of 627 MB)
    max_batch: int = 8
    card: ModelCard

    @property
    def dims(self) -> int:
        return self.card.dims

    def align(self, image: np.ndarray, face: Face) -> np.ndarray:
        """The crop this model expects for ``face`` in an RGB image."""
        ...

    def quality_crop(self, crop: np.ndarray) -> np.ndarray:
        """The part of an aligned crop that quality is judged on."""
        ...

    def embed(self, crops: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """L2-normalised embeddings (N, dims) for aligned RGB crops."""
        ...

    def close(self) -> None:
        """Release the model (sessions, threads); embedding afterwards raises :class:`ClosedError`."""
        ...

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class ModelEmbedder(Embedder):
    """One network mapping aligned face crops to L2-normalised vectors. Subclasses implement ``_forward`` and
    name the attributes that hold the loaded model in ``_resources`` (released by :meth:`close`)."""

    name: str = ""
    input_size: int = 112
    _resources: tuple[str, ...] = ("_session",)
    _closed: bool = False

    def __init__(self, *, flip: bool = False) -> None:
        self.flip = flip
        self.card = load_card(self.name)

    def align(self, image: np.ndarray, face: Face) -> np.ndarray:
        """The crop this model expects for ``face`` (ArcFace-template alignment unless overridden)."""
        return align_face(image, face.landmarks_array(), self.input_size)

    def quality_crop(self, crop: np.ndarray) -> np.ndarray:
        """The part of an aligned crop that quality is judged on (the whole crop unless overridden)."""
        return crop

    @abstractmethod
    def _forward(self, crops: np.ndarray) -> np.ndarray:
        """Raw embeddings for a (N, H, W, 3) uint8 RGB batch of aligned crops."""

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Drop the loaded model (its memory goes once no batch still runs on it)."""
        self._closed = True
        for attribute in self._resources:
            setattr(self, attribute, None)

    def embed(self, crops: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """L2-normalised embeddings (N, dims) for aligned RGB crops, computed in batches."""
        if self._closed:
            raise ClosedError(f"The {self.name!r} embedder was closed; create a new one")
        batch = np.asarray(crops, dtype=np.uint8)
        if batch.ndim == 3:
            batch = batch[None]
        if len(batch) == 0:
            return np.zeros((0, self.dims), dtype=np.float32)
        if batch.shape[1:] != (self.input_size, self.input_size, 3):
            batch = np.stack([cv2.resize(c, (self.input_size, self.input_size)) for c in batch])
        chunks = [self._embed_chunk(batch[i : i + self.max_batch]) for i in range(0, len(batch), self.max_batch)]
        return np.concatenate(chunks).astype(np.float32)

    def _embed_chunk(self, crops: np.ndarray) -> np.ndarray:
        vectors = self._forward(crops)
        if self.flip:
            vectors = _normalize(vectors) + _normalize(self._forward(crops[:, :, ::-1]))
        return _normalize(vectors)


def _normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


EMBEDDERS: Registry[Embedder] = Registry("embedder")
register_embedder = EMBEDDERS.register
#: names users pick by intent; ``accurate`` is a backend of its own (the fusion, recognition/fusion.py)
PRESETS = {"fast": "sface"}


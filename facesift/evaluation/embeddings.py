"""Embeddings of every image of an evaluation, computed once (batched, threaded) and cached on disk.

The cache key is the image's content (sha256 of the file bytes), the embedder (with the cross-resolution
models the pipeline routes small faces to, when installed, each with a fingerprint of its file and card),
the detector and the degradation, so renaming or copying files costs nothing and a second run of any protocol is instant.
The cache keeps every face of an image (box, landmarks, score, quality measures, vector) and the image's size,
so any face policy (``auto``, ``largest``, ``central``) and any quality limits are applied when it is read.
An image with no face (or that cannot be read) is cached as such, with the reason.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from facesift.evaluation.degradations import CropDegradation
from facesift.models import cache_dir as models_cache_dir
from facesift.pipeline import DEFAULT_FACE_POLICY, Pipeline, check_face_policy, get_pipeline, select_faces
from facesift.quality import QualityMeasures
from facesift.recognition.trained import installed_low_resolution
from facesift.results import Face, ImageFaces

_MEASURES = tuple(f.name for f in dataclasses.fields(QualityMeasures))
#: images embedded between two writes of the cache
SAVE_EVERY = 1000


def default_cache_dir() -> Path:
    """``$FACESIFT_CACHE_DIR/evaluation`` (else ``~/.cache/facesift/evaluation``)."""
    return models_cache_dir() / "evaluation"


@dataclass
class Embeddings:
    """One vector per image (``None`` where no face was found), the face ``policy`` chose and its quality
    measures, how many faces each image has, and why each failure failed."""

    model: str
    detector: str
    degradation: str
    vectors: dict[Path, np.ndarray | None]
    failures: dict[Path, str] = field(default_factory=dict)
    computed: int = 0
    cached: int = 0
    policy: str = DEFAULT_FACE_POLICY
    faces: dict[Path, Face] = field(default_factory=dict)
    measures: dict[Path, QualityMeasures] = field(default_factory=dict)
    face_counts: dict[Path, int] = field(default_factory=dict)

    def matrix(self, images: Sequence[Path]) -> tuple[np.ndarray, np.ndarray]:
        """(N, dims) vectors for ``images`` (zeros where missing) and a mask of those that have a face."""
        dims = next((len(v) for v in self.vectors.values() if v is not None), 1)
        out = np.zeros((len(images), dims), dtype=np.float32)
        ok = np.zeros(len(images), dtype=bool)
        for row, image in enumerate(images):
            vector = self.vectors.get(image)
            if vector is not None:
                out[row], ok[row] = vector, True
        return out, ok


def _pipeline_model(model: str, pipeline: Pipeline | None) -> tuple[str, str]:
    """What embeds (``model``, plus the cross-resolution models small faces are routed to), and the cache's name
    for it, which adds each trained file's fingerprint: a retrained model never meets its predecessor's vectors."""
    routed = pipeline.routed_models if pipeline is not None else installed_low_resolution(model)  # as get_pipeline()
    shown = "+".join([model, *(name for name, _ in routed)])
    return shown, "+".join([model, *(f"{name}-{fingerprint}" for name, fingerprint in routed)])


@dataclass(frozen=True)
class CachedImage:
    """Every face of one image as cached: boxes (n, 4), landmarks (n, 10), scores (n,), quality measures (n, m),
    vectors (n, dims), the image's (width, height), and the reason when it has no face."""

    size: tuple[int, int]
    boxes: np.ndarray
    landmarks: np.ndarray
    scores: np.ndarray
    measures: np.ndarray
    vectors: np.ndarray
    reason: str = ""

    @classmethod
    def of(cls, result: ImageFaces) -> "CachedImage":
        faces = result.faces
        if result.error:
            reason = f"{result.error_type}: {result.error}"
        else:
            reason = "" if faces else "no face found"
        return cls(
            tuple(result.image_size or (0, 0)),
            np.array([f.face.box for f in faces], np.float32).reshape(-1, 4),
            np.array([np.ravel(f.face.landmarks) for f in faces], np.float32).reshape(-1, 10),
            np.array([f.face.score for f in faces], np.float32),
            np.array([[getattr(f.quality, name) for name in _MEASURES] for f in faces], np.float32).reshape(-1, len(_MEASURES)),
            np.array([f.embedding for f in faces], np.float32) if faces else np.zeros((0, 0), np.float32),
            reason,
        )

    def face_list(self, detector: str) -> list[Face]:
        """The image's faces, as the detector found them."""
        return [
            Face(tuple(map(float, box)), tuple(zip(*[iter(map(float, marks))] * 2, strict=True)), float(score), detector)
            for box, marks, score in zip(self.boxes, self.landmarks, self.scores, strict=True)
        ]

    def measures_of(self, row: int) -> QualityMeasures:
        return QualityMeasures(*map(float, self.measures[row]))


class _Store:
    """One ``.npz`` per (model, detector, degradation): content hashes, every face of each image, failure reasons."""

    def __init__(self, folder: Path, model: str, detector: str, degradation: str) -> None:
        self.path = folder / f"{model}--{detector}--{degradation.replace(':', '-')}--faces.npz"
        self.entries = self._read()

    def _read(self) -> dict[str, CachedImage]:
        if not self.path.is_file():
            return {}
        with np.load(self.path, allow_pickle=False) as data:
            bounds = np.concatenate([[0], np.cumsum(data["counts"])])
            arrays = {name: data[name] for name in ("boxes", "landmarks", "scores", "measures", "vectors")}
            return {
                str(key): CachedImage((int(w), int(h)), *(arrays[name][a:b] for name in arrays), str(reason))
                for key, (w, h), reason, a, b in zip(data["keys"], data["sizes"], data["reasons"], bounds[:-1], bounds[1:], strict=True)
            }

    def save(self, fresh: dict[str, CachedImage]) -> None:
        """Add ``fresh`` to what is on disk now (another run may have added entries meanwhile)."""
        self.entries = {**self._read(), **self.entries, **fresh}
        if not self.entries:
            return
        entries = list(self.entries.values())
        dims = next((e.vectors.shape[1] for e in entries if len(e.vectors)), 1)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f".{self.path.stem}.{os.getpid()}.npz")
        np.savez(
            partial,
            keys=np.array(list(self.entries), dtype="U64"),
            sizes=np.array([e.size for e in entries], np.int32).reshape(-1, 2),
            reasons=np.array([e.reason for e in entries], dtype=str),
            counts=np.array([len(e.scores) for e in entries], np.int32),
            boxes=np.concatenate([e.boxes for e in entries]),
            landmarks=np.concatenate([e.landmarks for e in entries]),
            scores=np.concatenate([e.scores for e in entries]),
            measures=np.concatenate([e.measures for e in entries]),
            vectors=np.concatenate([e.vectors.reshape(-1, dims) for e in entries]),
        )
        os.replace(partial, self.path)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def cached_faces(
    images: Sequence[Path],
    *,
    model: str = "sface",
    detector: str = "yunet",
    degradation: CropDegradation | None = None,
    cache_dir: Path | None = None,
    pipeline: Pipeline | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[dict[Path, CachedImage], str, int]:
    """Every face of each image, from the cache where it is there: (per image, what embedded them, how many
    images were computed now). ``progress(done, total)`` is called as images are embedded."""
    images = list(dict.fromkeys(Path(p) for p in images))
    if degradation is not None:
        pipeline = pipeline or get_pipeline(detector=detector, embedder=model)
        if degradation.is_noop(pipeline.embedder.input_size):
            degradation = None  # the clean embeddings are these, cached or not
    stored = degradation.name if degradation else "clean"
    embedded_by, cached_as = _pipeline_model(model, pipeline)
    store = _Store(cache_dir or default_cache_dir(), cached_as, detector, stored)
    hashes = {image: file_sha256(image) for image in images}
    known = store.entries
    todo = [image for image in images if hashes[image] not in known]
    fresh: dict[str, CachedImage] = {}
    if todo:
        pipe = pipeline or get_pipeline(detector=detector, embedder=model)
        done = 0

        def advance(count: int) -> None:
            nonlocal done
            done += count
            if progress is not None:
                progress(done, len(todo))

        for start in range(0, len(todo), SAVE_EVERY):  # saved as it goes: an interrupted run keeps what it did
            chunk = todo[start : start + SAVE_EVERY]
            results = pipe.represent_batch(chunk, policy="all", progress=advance, crop_transform=degradation)
            for image, result in zip(chunk, results, strict=True):
                fresh[hashes[image]] = CachedImage.of(result)
            store.save(fresh)
    entries = {**known, **fresh}
    return {image: entries[hashes[image]] for image in images}, embedded_by, len(todo)


def embed_images(
    images: Sequence[Path],
    *,
    model: str = "sface",
    detector: str = "yunet",
    degradation: CropDegradation | None = None,
    cache_dir: Path | None = None,
    pipeline: Pipeline | None = None,
    progress: Callable[[int, int], None] | None = None,
    policy: str = DEFAULT_FACE_POLICY,
) -> Embeddings:
    """The embedding of the face ``policy`` picks in each image (``auto``, ``largest`` or ``central``), from the
    cache where it is there.

    ``progress(done, total)`` is called as images are embedded (only those not in the cache).
    """
    check_face_policy(policy)
    if policy == "all":
        raise ValueError("embed_images needs a policy that picks one face per image: auto, largest or central")
    entries, embedded_by, computed = cached_faces(images, model=model, detector=detector, degradation=degradation,
                                                  cache_dir=cache_dir, pipeline=pipeline, progress=progress)
    name = degradation.name if degradation else "clean"
    out = Embeddings(embedded_by, detector, name, {}, computed=computed, cached=len(entries) - computed, policy=policy)
    for image, entry in entries.items():
        out.face_counts[image] = len(entry.scores)
        if entry.reason:
            out.vectors[image] = None
            out.failures[image] = entry.reason
            continue
        faces = entry.face_list(detector)
        chosen = faces.index(select_faces(faces, policy, entry.size)[0])
        out.vectors[image] = entry.vectors[chosen]
        out.faces[image] = faces[chosen]
        out.measures[image] = entry.measures_of(chosen)
    return out

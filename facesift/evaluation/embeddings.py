"""Embeddings of every image of an evaluation, computed once (batched, threaded) and cached on disk.

The cache key is the image's content (sha256 of the file bytes), the embedder (with the cross-resolution
models the pipeline routes small faces to, when installed, each with a fingerprint of its file and card), the detector and the degradation, so renaming or copying files costs nothing and a second run of any protocol is instant.
An image with no face (or that cannot be read) is cached as such, with the reason.
"""

from __future__ import annotations

import copy
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from facesift.evaluation.degradations import Degradation
from facesift.models import cache_dir as models_cache_dir
from facesift.pipeline import Pipeline, get_pipeline
from facesift.recognition.trained import installed_low_resolution


def default_cache_dir() -> Path:
    """``$FACESIFT_CACHE_DIR/evaluation`` (else ``~/.cache/facesift/evaluation``)."""
    return models_cache_dir() / "evaluation"


@dataclass
class Embeddings:
    """One vector per image (``None`` where no face was found) and why each failure failed."""

    model: str
    detector: str
    degradation: str
    vectors: dict[Path, np.ndarray | None]
    failures: dict[Path, str] = field(default_factory=dict)
    computed: int = 0
    cached: int = 0

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


class _DegradingEmbedder:
    """The pipeline's embedder with a degradation applied to each aligned crop before it is embedded."""

    def __init__(self, inner, degradation: Degradation) -> None:
        self._inner, self._degradation = inner, degradation

    def align(self, image: np.ndarray, face) -> np.ndarray:
        return self._degradation(self._inner.align(image, face))

    def __getattr__(self, name: str):
        return getattr(self._inner, name)


def _degraded(pipeline: Pipeline, degradation: Degradation | None) -> Pipeline:
    if degradation is None:
        return pipeline
    clone = copy.copy(pipeline)  # shares the loaded models and the thread pool
    clone.embedder = _DegradingEmbedder(pipeline.embedder, degradation)
    return clone


def _pipeline_model(model: str, pipeline: Pipeline | None) -> tuple[str, str]:
    """What embeds (``model``, plus the cross-resolution models small faces are routed to), and the cache's name
    for it, which adds each trained file's fingerprint: a retrained model never meets its predecessor's vectors."""
    routed = pipeline.routed_models if pipeline is not None else installed_low_resolution(model)  # as get_pipeline()
    shown = "+".join([model, *(name for name, _ in routed)])
    return shown, "+".join([model, *(f"{name}-{fingerprint}" for name, fingerprint in routed)])


class _Store:
    """One ``.npz`` per (model, detector, degradation): content hashes, vectors, failure reasons."""

    def __init__(self, folder: Path, model: str, detector: str, degradation: str) -> None:
        self.path = folder / f"{model}--{detector}--{degradation.replace(':', '-')}.npz"
        self.entries = self._read()

    def _read(self) -> dict[str, tuple[np.ndarray | None, str]]:
        if not self.path.is_file():
            return {}
        with np.load(self.path, allow_pickle=False) as data:
            return {str(k): (None if r else v, str(r)) for k, v, r in zip(data["keys"], data["vectors"], data["reasons"])}

    def save(self, fresh: dict[str, tuple[np.ndarray | None, str]]) -> None:
        """Add ``fresh`` to what is on disk now (another run may have added entries meanwhile)."""
        self.entries = {**self._read(), **self.entries, **fresh}
        if not self.entries:
            return
        dims = next((len(v) for v, _ in self.entries.values() if v is not None), 1)
        keys = np.array(list(self.entries), dtype="U64")
        vectors = np.stack([v if v is not None else np.zeros(dims, np.float32) for v, _ in self.entries.values()])
        reasons = np.array([r for _, r in self.entries.values()], dtype=str)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f".{self.path.stem}.{os.getpid()}.npz")
        np.savez(partial, keys=keys, vectors=vectors.astype(np.float32), reasons=reasons)
        os.replace(partial, self.path)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def embed_images(
    images: Sequence[Path],
    *,
    model: str = "sface",
    detector: str = "yunet",
    degradation: Degradation | None = None,
    cache_dir: Path | None = None,
    pipeline: Pipeline | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Embeddings:
    """The embedding of the largest face of each image, from the cache where it is there.

    ``progress(done, total)`` is called as images are embedded (only those not in the cache).
    """
    images = list(dict.fromkeys(Path(p) for p in images))
    name = degradation.name if degradation else "clean"
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
    fresh: dict[str, tuple[np.ndarray | None, str]] = {}
    if todo:
        pipe = _degraded(pipeline or get_pipeline(detector=detector, embedder=model), degradation)
        done = 0

        def advance(count: int) -> None:
            nonlocal done
            done += count
            if progress is not None:
                progress(done, len(todo))

        for image, result in zip(todo, pipe.represent_batch(todo, policy="largest", progress=advance)):
            if result.error:
                fresh[hashes[image]] = (None, f"{result.error_type}: {result.error}")
            elif not result.faces:
                fresh[hashes[image]] = (None, "no face found")
            else:
                fresh[hashes[image]] = (np.asarray(result.faces[0].embedding, dtype=np.float32), "")
        store.save(fresh)
    entries = {**known, **fresh}
    out = Embeddings(embedded_by, detector, name, {}, computed=len(todo), cached=len(images) - len(todo))
    for image in images:
        vector, reason = entries[hashes[image]]
        out.vectors[image] = vector
        if reason:
            out.failures[image] = reason
    return out

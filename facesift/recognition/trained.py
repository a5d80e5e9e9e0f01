"""Embedders trained on this machine by ``facesift train``: ``<cache>/trained/<name>.onnx`` with its card
``<name>.json`` beside it. Loaded by name like any backend; nothing is downloaded.

Input convention is SFace's (112x112 aligned RGB, 0-255, NCHW), since every model here starts from SFace.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import numpy as np

from facesift.models import trained_dir, trained_model_path
from facesift.recognition.base import PRESETS, Embedder, ModelCard
from facesift.runtime import open_session


def trained_embedders() -> list[str]:
    """Names of trained models that have both their ONNX file and their card."""
    folder = trained_dir()
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.onnx") if p.with_suffix(".json").is_file())


def install_trained(onnx_file: Path, card: ModelCard) -> Path:
    """Copy a trained ONNX file and its card into the trained-models folder under ``card.name``."""
    folder = trained_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{card.name}.onnx"
    tmp = target.with_suffix(".onnx.tmp")
    tmp.write_bytes(Path(onnx_file).read_bytes())
    tmp.replace(target)
    (folder / f"{card.name}.json").write_text(json.dumps(card.to_dict(), indent=2) + "\n")
    return target


def trained_fingerprint(name: str) -> str:
    """12 hex digits that change with a trained model's ONNX file or its card (which faces it takes, say)."""
    path = trained_model_path(name)
    stat = path.stat()
    weights = _file_sha256(str(path), stat.st_size, stat.st_mtime_ns)
    card = path.with_suffix(".json").read_bytes()
    return hashlib.sha256(weights.encode() + card).hexdigest()[:12]


@functools.lru_cache(maxsize=16)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:  # size and mtime key the cache: a new file, a new hash
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def low_resolution_models(embedder: str) -> list[str]:
    """Names of the installed cross-resolution models for ``embedder``'s space, smallest routing limit first:
    a face goes to the first whose ``eye_distance_below`` it is under (a specialist for the tiniest faces,
    then a broader one), else to ``embedder`` itself."""
    cards = []
    for name in trained_embedders():
        card = ModelCard(**json.loads((trained_dir() / f"{name}.json").read_text()))
        if card.compatible_with == embedder and card.eye_distance_below > 0:
            cards.append((card.eye_distance_below, name))
    return [name for _, name in sorted(cards)]


def installed_low_resolution(embedder: str) -> tuple[tuple[str, str], ...]:
    """(name, fingerprint) of each cross-resolution model installed now for ``embedder`` (a preset name or a
    model name), smallest limit first: what a pipeline created now would route to."""
    return tuple((name, trained_fingerprint(name)) for name in low_resolution_models(PRESETS.get(embedder, embedder)))


def low_resolution_embedders(embedder: str) -> "tuple[TrainedEmbedder, ...]":
    """The installed cross-resolution models for ``embedder``'s space, loaded, smallest limit first."""
    return tuple(TrainedEmbedder(name) for name in low_resolution_models(embedder))


class TrainedEmbedder(Embedder):
    """A locally trained ONNX embedder, found by name in the trained-models folder."""

    input_size = 112

    def __init__(self, name: str, **options) -> None:
        self.name = name
        super().__init__(**options)
        self.flip = options.get("flip", self.card.flip)  # the card says whether mirroring measured better
        self._session, self._input = open_session(trained_model_path(name))
        self.fingerprint = trained_fingerprint(name)  # of the file this session loaded

    def _forward(self, crops: np.ndarray) -> np.ndarray:
        blob = np.ascontiguousarray(crops.transpose(0, 3, 1, 2), dtype=np.float32)
        return self._session.run(None, {self._input: blob})[0]

"""Embedders by name: registered backends, presets, and models trained on this machine or shipped.

Its own module so that the contract (``base``) and the trained models (``trained``, built on it) import
in one direction: base <- trained <- lookup.
"""

from __future__ import annotations

from facesift.errors import UnknownBackendError
from facesift.recognition.base import EMBEDDERS, PRESETS, Embedder
from facesift.recognition.trained import TrainedEmbedder, trained_embedders


def available_embedders() -> list[str]:
    """Registered backends, presets and models trained on this machine (see :func:`trained_embedders`)."""
    return sorted({*EMBEDDERS.names(), *PRESETS, *trained_embedders()})


def create_embedder(name: str, **options) -> Embedder:
    """An embedder by name: a backend or preset, else a model trained here (``<cache>/trained/<name>.onnx``)."""
    name = PRESETS.get(name, name)
    if name not in EMBEDDERS.names() and name in trained_embedders():
        return TrainedEmbedder(name, **options)
    try:
        return EMBEDDERS.create(name, **options)
    except UnknownBackendError:
        raise UnknownBackendError(f"Unknown embedder {name!r}; available: {', '.join(available_embedders())}") from None

"""Face embedders: one file per backend, all behind :class:`Embedder`, each with a model card."""

from facesift.recognition import dlib_resnet, facenet, fusion, sface  # noqa: F401  (importing registers the backends)
from facesift.recognition.base import Embedder, ModelCard, available_embedders, create_embedder, load_card, register_embedder, save_card

__all__ = [
    "Embedder",
    "ModelCard",
    "available_embedders",
    "create_embedder",
    "load_card",
    "register_embedder",
    "save_card",
]

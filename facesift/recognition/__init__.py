"""Face embedders: one file per backend, all behind the :class:`Embedder` contract, each with a model card."""

from facesift.recognition import dlib_resnet, facenet, fusion, sface  # noqa: F401  (importing registers the backends)
from facesift.recognition.base import Embedder, ModelCard, ModelEmbedder, load_card, register_embedder, save_card
from facesift.recognition.lookup import available_embedders, create_embedder

__all__ = [
    "Embedder",
    "ModelCard",
    "ModelEmbedder",
    "available_embedders",
    "create_embedder",
    "load_card",
    "register_embedder",
    "save_card",
]

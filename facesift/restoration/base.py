"""Restoration before recognition: a small face, aligned at its own resolution, brought up to 112 px.

Each backend maps an aligned ``s`` x ``s`` RGB crop (``s`` from the face's eye distance, see
:func:`native_size`) to the ``size`` x ``size`` crop the embedder expects.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable

import numpy as np

from facesift.alignment import align_face
from facesift.errors import UnknownBackendError
from facesift.resolution import TEMPLATE_EYE_DISTANCE
from facesift.results import Face


def native_size(face: Face, full: int = 112, smallest: int = 8) -> int:
    """The aligned-crop size at which ``face`` is neither upsampled nor downsampled."""
    return int(np.clip(round(face.eye_distance * full / TEMPLATE_EYE_DISTANCE), smallest, full))


class Restorer(ABC):
    """Super-resolution of small aligned faces."""

    name: str = ""

    def restore_face(self, image: np.ndarray, face: Face, size: int = 112) -> np.ndarray:
        """The face aligned at its native resolution, restored to ``size`` x ``size``."""
        return self.restore(align_face(image, face.landmarks_array(), native_size(face, size)), size)

    @abstractmethod
    def restore(self, crop: np.ndarray, size: int = 112) -> np.ndarray:
        """An (s, s, 3) uint8 RGB aligned crop restored to (size, size, 3)."""


RestorerFactory = Callable[..., Restorer]
_RESTORERS: dict[str, RestorerFactory] = {}


def register_restorer(name: str) -> Callable[[RestorerFactory], RestorerFactory]:
    def decorate(factory: RestorerFactory) -> RestorerFactory:
        _RESTORERS[name] = factory
        return factory

    return decorate


def available_restorers() -> list[str]:
    return sorted(_RESTORERS)


def create_restorer(name: str, **options) -> Restorer:
    try:
        factory = _RESTORERS[name]
    except KeyError:
        raise UnknownBackendError(f"Unknown restorer {name!r}; available: {', '.join(available_restorers())}") from None
    return factory(**options)

"""Our small face super-resolution network (``facesift train superres``): bicubic to 112 px, then a learned
residual trained with pixel, perceptual and identity-preserving losses. Runs from ``<cache>/trained/facesr.onnx``."""

from __future__ import annotations

import cv2
import numpy as np

from facesift.models import trained_model_path
from facesift.restoration.base import Restorer, register_restorer
from facesift.runtime import open_session


@register_restorer("facesr")
class FaceSrRestorer(Restorer):
    name = "facesr"

    def __init__(self, model: str = "facesr") -> None:
        self._session, self._input = open_session(trained_model_path(model))

    def restore(self, crop: np.ndarray, size: int = 112) -> np.ndarray:
        upsampled = cv2.resize(crop, (size, size), interpolation=cv2.INTER_CUBIC)
        blob = np.ascontiguousarray(upsampled.transpose(2, 0, 1)[None], dtype=np.float32)
        restored = self._session.run(None, {self._input: blob})[0][0]
        return np.clip(restored.transpose(1, 2, 0), 0, 255).round().astype(np.uint8)

"""The baseline every restorer is compared with: bicubic upsampling of the native-resolution crop."""

from __future__ import annotations

import cv2
import numpy as np

from facesift.restoration.base import Restorer, register_restorer


@register_restorer("bicubic")
class BicubicRestorer(Restorer):
    name = "bicubic"

    def restore(self, crop: np.ndarray, size: int = 112) -> np.ndarray:
        return cv2.resize(crop, (size, size), interpolation=cv2.INTER_CUBIC)

"""``detector="none"``: the whole image is one face, for inputs that are already face crops.

FER2013's 48x48 faces, UTKFace's aligned crops or a crop from another system often defeat a detector
(the face fills the frame, or it is smaller than the detector's smallest anchor). The fallback rule places
the five landmarks where the ArcFace template has them, scaled to the image, so alignment maps the crop
onto the template as it is: no roll correction, the crop is trusted to be upright and roughly centred.
"""

from __future__ import annotations

import numpy as np

from facesift.alignment import ARCFACE_TEMPLATE_112
from facesift.detection.base import Detector, RawDetections, register_detector
from facesift.results import Face


@register_detector("none")
class WholeImageDetector(Detector):
    """One face covering the image, score 1.0, landmarks at the template's fractions of its size."""

    name = "none"

    def detect(self, image: np.ndarray) -> list[Face]:
        # no resizing, border retries or size filtering: the caller says this image is the face
        height, width = image.shape[:2]
        boxes, landmarks, scores = self._detect(image)
        return [
            Face(box=tuple(float(v) for v in boxes[0]), landmarks=tuple((float(x), float(y)) for x, y in landmarks[0]),
                 score=float(scores[0]), detector=self.name)
        ] if width > 1 and height > 1 else []

    def _detect(self, image: np.ndarray) -> RawDetections:
        height, width = image.shape[:2]
        points = ARCFACE_TEMPLATE_112 / 112.0 * np.array([width, height], dtype=np.float64)
        return np.array([[0.0, 0.0, width, height]]), points[None], np.ones(1)

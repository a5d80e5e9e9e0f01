"""OpenCV's Haar cascade (Viola-Jones, BSD), from ``opencv-python-headless<5`` (``cv2.data``; gone in OpenCV 5).

Old and fast to set up, but misses turned and small faces and finds faces in textures. It gives no landmarks:
the five points are placed at fixed fractions of the box (:func:`landmarks_from_boxes`), so crops for
embedding are not roll-corrected. Use it to count upright frontal faces, not to recognise people.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

from facesift.detection.base import Detector, RawDetections, landmarks_from_boxes, register_detector
from facesift.models import WeightFile, model_path, register_weights

HAAR = register_weights(
    WeightFile(
        name="haar-frontalface",
        distribution="opencv-python-headless",
        path_in_distribution="cv2/data/haarcascade_frontalface_default.xml",
        sha256="0f7d4527844eb514d4a4948e822da90fbb16a34a0bbbbc6adc6498747a5aafb0",
        install_hint="pip install 'opencv-python-headless>=4.8,<5'",
        licence="BSD-3-Clause (Intel License Agreement)",
        suffix=".xml",
    )
)

#: median YuNet landmarks inside Haar boxes on 92 celeba300 photos (fractions of box width, height), made symmetric
HAAR_LANDMARKS = np.array([[0.31, 0.386], [0.69, 0.386], [0.50, 0.60], [0.34, 0.76], [0.66, 0.76]])


@register_detector("haar")
class HaarDetector(Detector):
    """Score: the logistic of the cascade's final-stage weight (about 0.5 at the cascade's own threshold)."""

    name = "haar"

    def __init__(self, *, min_neighbors: int = 5, **options) -> None:
        super().__init__(**options)
        self.min_neighbors = min_neighbors
        self._path = str(model_path(HAAR.name))
        self._local = threading.local()  # CascadeClassifier is not safe to share between threads

    def _detect(self, image: np.ndarray) -> RawDetections:
        cascade = getattr(self._local, "cascade", None)
        if cascade is None:
            cascade = self._local.cascade = cv2.CascadeClassifier(self._path)
        gray = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
        rects, _, weights = cascade.detectMultiScale3(
            gray, scaleFactor=1.1, minNeighbors=self.min_neighbors, minSize=(20, 20), outputRejectLevels=True
        )
        if len(rects) == 0:
            return np.zeros((0, 4)), np.zeros((0, 5, 2)), np.zeros(0)
        rects = np.asarray(rects, dtype=np.float64).reshape(-1, 4)
        scores = 1.0 / (1.0 + np.exp(-np.asarray(weights, dtype=np.float64).ravel()))
        boxes = np.column_stack([rects[:, :2], rects[:, :2] + rects[:, 2:]])
        keep = scores >= self.score_threshold
        return boxes[keep], landmarks_from_boxes(boxes[keep], HAAR_LANDMARKS), scores[keep]

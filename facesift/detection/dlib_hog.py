"""dlib's HOG + linear SVM frontal face detector (Boost licence; the detector is built into ``dlib-bin``).

Accurate on upright frontal faces of 40 px and more (with one upsampling), blind to profiles. It gives no
landmarks: the five points are placed at fixed fractions of the box (:func:`landmarks_from_boxes`), so crops
for SFace/FaceNet are not roll-corrected; the dlib embedder finds its own landmarks inside the box.
"""

from __future__ import annotations

import threading

import numpy as np

from facesift.detection.base import Detector, RawDetections, landmarks_from_boxes, register_detector
from facesift.dlib_support import import_dlib

#: median YuNet landmarks inside HOG boxes on 101 celeba300 photos (fractions of box width, height), made symmetric
HOG_LANDMARKS = np.array([[0.29, 0.30], [0.71, 0.30], [0.50, 0.544], [0.32, 0.72], [0.68, 0.72]])


@register_detector("dlib-hog")
class DlibHogDetector(Detector):
    """Score: the logistic of the SVM margin (0.5 at dlib's own threshold, hence that default)."""

    name = "dlib-hog"

    def __init__(self, *, upsample: int = 1, score_threshold: float = 0.5, **options) -> None:
        super().__init__(score_threshold=score_threshold, **options)
        self.upsample = upsample
        self._dlib = import_dlib()
        self._local = threading.local()

    def _detect(self, image: np.ndarray) -> RawDetections:
        detector = getattr(self._local, "detector", None)
        if detector is None:
            detector = self._local.detector = self._dlib.get_frontal_face_detector()
        rects, margins, _ = detector.run(image, self.upsample, -1.0)
        boxes = np.array([[r.left(), r.top(), r.right() + 1, r.bottom() + 1] for r in rects], dtype=np.float64)
        scores = 1.0 / (1.0 + np.exp(-np.asarray(margins, dtype=np.float64)))
        keep = scores >= self.score_threshold
        boxes = boxes.reshape(-1, 4)[keep]
        return boxes, landmarks_from_boxes(boxes, HOG_LANDMARKS), scores[keep]

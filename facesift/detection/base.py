"""The contract every face detector backend meets, and the registry that finds them by name."""

from __future__ import annotations

from abc import ABC, abstractmethod

import cv2
import numpy as np

from facesift.registry import Registry
from facesift.results import Face

#: Raw detector output in the coordinates of the image it was given:
#: boxes (N, 4) as x1, y1, x2, y2; landmarks (N, 5, 2); scores (N,).
RawDetections = tuple[np.ndarray, np.ndarray, np.ndarray]


class Detector(ABC):
    """Finds faces. Subclasses implement ``_detect`` on an RGB image no larger than ``max_side``.

    The base class resizes large photos for speed and maps coordinates back, retries small images with a
    border (detectors miss faces that fill the whole frame), and filters by score and size.
    """

    name: str = ""

    def __init__(
        self,
        *,
        score_threshold: float = 0.6,
        nms_threshold: float = 0.3,
        min_face_size: float = 0.0,
        max_side: int = 640,
    ) -> None:
        if not 0.0 <= score_threshold <= 1.0:
            raise ValueError(f"score_threshold must be in [0, 1], got {score_threshold}")
        if max_side < 32:
            raise ValueError(f"max_side must be at least 32 pixels, got {max_side}")
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.min_face_size = min_face_size
        self.max_side = max_side

    @abstractmethod
    def _detect(self, image: np.ndarray) -> RawDetections:
        """Detect on an RGB uint8 image; return boxes, landmarks and scores above ``score_threshold``."""

    def detect(self, image: np.ndarray) -> list[Face]:
        """All faces in an RGB uint8 image, best score first."""
        height, width = image.shape[:2]
        scale = min(1.0, self.max_side / max(height, width))
        work = image if scale == 1.0 else cv2.resize(
            image, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA
        )
        boxes, landmarks, scores = self._detect(np.ascontiguousarray(work))
        pad = self._padding(work.shape[:2]) if len(scores) == 0 else 0
        if pad:  # detectors miss faces that fill the whole frame: try again with a border
            padded = cv2.copyMakeBorder(work, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
            boxes, landmarks, scores = self._detect(padded)
        boxes = (np.asarray(boxes, dtype=np.float64).reshape(-1, 4) - pad) / scale
        landmarks = (np.asarray(landmarks, dtype=np.float64).reshape(-1, 5, 2) - pad) / scale
        faces = []
        for box, points, score in zip(boxes, landmarks, scores, strict=True):
            box = np.clip(box, [0, 0, 0, 0], [width, height, width, height])
            face = Face(
                box=tuple(float(v) for v in box),
                landmarks=tuple((float(x), float(y)) for x, y in points),
                score=float(score),
                detector=self.name,
            )
            if face.width <= 1 or face.height <= 1 or min(face.width, face.height) < self.min_face_size:
                continue
            faces.append(face)
        faces.sort(key=lambda f: f.score, reverse=True)
        return faces

    @staticmethod
    def _padding(shape: tuple[int, int]) -> int:
        """Border for the second try on small images, where a face often fills the frame."""
        return int(round(0.25 * max(shape))) if max(shape) <= 400 else 0


DETECTORS: Registry[Detector] = Registry("detector")
register_detector = DETECTORS.register
available_detectors = DETECTORS.names


def create_detector(name: str, **options) -> Detector:
    """A new detector instance of the backend called ``name``."""
    return DETECTORS.create(name, **options)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Indices kept by non-maximum suppression (OpenCV's, which takes x, y, w, h boxes)."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=int)
    xywh = np.column_stack([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]])
    keep = cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), 0.0, threshold)
    return np.asarray(keep, dtype=int).reshape(-1)


def landmarks_from_boxes(boxes: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Five points placed at fixed fractions of each box, for detectors that find no landmarks.

    ``template`` holds (x, y) fractions of box width and height (measured as the median of YuNet's landmarks
    in that detector's boxes). There is no roll correction: an aligned crop from these is only as good as
    the face is upright and frontal.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    size = (boxes[:, 2:] - boxes[:, :2])[:, None, :]
    return boxes[:, None, :2] + np.asarray(template)[None] * size

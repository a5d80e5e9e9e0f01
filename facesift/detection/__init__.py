"""Face detectors: one file per backend, all behind :class:`Detector`."""

from facesift.detection import blazeface, dlib_hog, haar, mtcnn, retinaface, whole, yunet  # noqa: F401  (importing registers the backends)
from facesift.detection.base import Detector, available_detectors, create_detector, register_detector

__all__ = ["Detector", "available_detectors", "create_detector", "register_detector"]

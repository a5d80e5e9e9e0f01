"""MediaPipe BlazeFace, short range (selfie distance, 128 px input) and full range (up to 5 m, 192 px), Apache-2.0.

Only ``mediapipe==0.10.14`` still ships the ``.tflite`` files, and its declared dependencies (GUI OpenCV, jax,
matplotlib...) would break our environment: install it with ``--no-deps`` and we only read the two files.
They run in LiteRT (``ai-edge-litert``, the TensorFlow Lite runtime; no TensorFlow). The anchors and box
decoding follow MediaPipe's ``face_detection_*_range.pbtxt``.

BlazeFace gives six points: eyes, nose tip, mouth centre and ear tragions. The two mouth corners we align on
are placed either side of the mouth centre, parallel to the eye line, at the ArcFace template's ratio of
mouth width to eye distance (0.83).
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

from facesift.detection.base import Detector, RawDetections, nms, register_detector
from facesift.errors import ModelNotInstalledError
from facesift.models import WeightFile, model_path, register_weights

_HINT = "pip install --no-deps mediapipe==0.10.14 && pip install ai-edge-litert"
_FOLDER = "mediapipe/modules/face_detection/"
SHORT_RANGE = register_weights(
    WeightFile(
        name="blazeface-short",
        distribution="mediapipe",
        path_in_distribution=_FOLDER + "face_detection_short_range.tflite",
        sha256="bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
        install_hint=_HINT,
        licence="Apache-2.0",
        suffix=".tflite",
    )
)
FULL_RANGE = register_weights(
    WeightFile(
        name="blazeface-full",
        distribution="mediapipe",
        path_in_distribution=_FOLDER + "face_detection_full_range_sparse.tflite",
        sha256="2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1",
        install_hint=_HINT,
        licence="Apache-2.0",
        suffix=".tflite",
    )
)
#: mouth width / eye distance on the ArcFace template
_MOUTH_RATIO = (70.7299 - 41.5493) / (73.5318 - 38.2946)


def anchors(input_size: int, strides: list[int], per_cell: list[int]) -> np.ndarray:
    """MediaPipe SSD anchor centres (fixed size 1), normalised to [0, 1], in the model's output order."""
    centres = []
    for stride, count in zip(strides, per_cell, strict=True):
        cells = input_size // stride
        y, x = np.mgrid[0:cells, 0:cells]
        grid = np.stack([(x.ravel() + 0.5) / cells, (y.ravel() + 0.5) / cells], axis=1)
        centres.append(np.repeat(grid, count, axis=0))
    return np.concatenate(centres)


class BlazeFaceDetector(Detector):
    """One LiteRT interpreter per thread (an interpreter is not safe to share)."""

    weights: WeightFile
    input_size: int
    strides: list[int]
    per_cell: list[int]

    def __init__(self, **options) -> None:
        super().__init__(**options)
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise ModelNotInstalledError(f"BlazeFace needs the LiteRT runtime. Install it with: {_HINT}") from exc
        self._interpreter_class = Interpreter
        self._path = str(model_path(self.weights.name))
        self._anchors = anchors(self.input_size, self.strides, self.per_cell)
        self._local = threading.local()

    def _interpreter(self):
        interpreter = getattr(self._local, "interpreter", None)
        if interpreter is None:
            interpreter = self._interpreter_class(model_path=self._path, num_threads=1)
            interpreter.allocate_tensors()
            self._local.interpreter = interpreter
        return interpreter

    def _detect(self, image: np.ndarray) -> RawDetections:
        height, width = image.shape[:2]
        side = max(height, width)  # letterbox to a square (bottom/right) so the aspect ratio is kept
        square = cv2.copyMakeBorder(image, 0, side - height, 0, side - width, cv2.BORDER_CONSTANT, value=0)
        blob = cv2.resize(square, (self.input_size, self.input_size), interpolation=cv2.INTER_AREA)
        blob = (blob.astype(np.float32) / 127.5 - 1.0)[None]
        interpreter = self._interpreter()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], blob)
        interpreter.invoke()
        outputs = sorted(
            (interpreter.get_tensor(d["index"])[0] for d in interpreter.get_output_details()), key=lambda a: -a.shape[-1]
        )
        raw, logits = outputs[0], outputs[1][:, 0]
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits.astype(np.float64), -100, 100)))
        keep = np.flatnonzero(scores >= self.score_threshold)
        if len(keep) == 0:
            return np.zeros((0, 4)), np.zeros((0, 5, 2)), np.zeros(0)
        raw, anchor = raw[keep] / self.input_size, self._anchors[keep]
        centre, size = raw[:, :2] + anchor, raw[:, 2:4]
        boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1) * side
        points = (raw[:, 4:16].reshape(-1, 6, 2) + anchor[:, None]) * side
        order = nms(boxes, scores[keep], self.nms_threshold)
        return boxes[order], five_points(points[order]), scores[keep][order]


def five_points(points: np.ndarray) -> np.ndarray:
    """Eyes, nose tip and two mouth corners from BlazeFace's eyes, nose tip and mouth centre."""
    right_eye, left_eye, nose, mouth = points[:, 0], points[:, 1], points[:, 2], points[:, 3]
    half_mouth = (left_eye - right_eye) * _MOUTH_RATIO / 2
    return np.stack([right_eye, left_eye, nose, mouth - half_mouth, mouth + half_mouth], axis=1)


@register_detector("blazeface-short")
class BlazeFaceShort(BlazeFaceDetector):
    """Faces within about 2 m of the camera (selfies, webcams), 128 px input."""

    name = "blazeface-short"
    weights = SHORT_RANGE
    input_size = 128
    strides = [8, 16]
    per_cell = [2, 6]


@register_detector("blazeface-full")
class BlazeFaceFull(BlazeFaceDetector):
    """Faces up to about 5 m away (group photos), 192 px input."""

    name = "blazeface-full"
    weights = FULL_RANGE
    input_size = 192
    strides = [4]
    per_cell = [1]

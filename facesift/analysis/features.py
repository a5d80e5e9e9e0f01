"""Image features the analysis heads read beside the embedding: colour texture and SFace's trunk.

Colour texture (liveness): a printed photo held to a camera loses fine skin texture and shifts its colours
(ink gamut, paper gloss). Uniform local-binary-pattern histograms of each channel in HSV and YCrCb capture
both (Boulkenafet, Komulainen and Hadid, "face anti-spoofing based on color texture analysis", ICIP 2015);
measured against SFace embeddings as features on NUAA's held-out subjects, they are far better (docs/analyze.md).

SFace's trunk (gender, emotion): the 128-d embedding is trained to be the same for one person whatever their
age, expression or capture, so it throws away part of what a face says about gender and expression; the last
convolutional map before that projection (1,024 channels over 7x7 places) still has it. Pooled over the whole
face and its four quarters it gives a linear head about 5 (gender) and 10 (emotion) points more than the
embedding did (out of fold on the training folds, docs/analyze.md). The trunk is cut from the SFace file
already installed (a second output of the same graph, so the embedding and the trunk come from one pass):
nothing new to download.
"""

from __future__ import annotations

import functools

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


#: SFace's last convolutional map (1024 x 7 x 7), before the dropout, flatten and identity projection
TRUNK_LAYER = "conv_14_relu"
TRUNK_CHANNELS = 1024
TRUNK_DIMS = 5 * TRUNK_CHANNELS  # the whole face and its four quarters
#: faces per run (the maps are 200 KB a face)
TRUNK_BATCH = 64


def _with_trunk_output(data: bytes) -> bytes:
    """SFace (repaired as the embedder runs it) with :data:`TRUNK_LAYER` as a second output beside the
    embedding, so one pass over a crop gives both (the trunk was a second pass of the convolutions)."""
    model = onnx.load_from_string(repair_sface(data))
    model.graph.output.append(onnx.helper.make_tensor_value_info(TRUNK_LAYER, onnx.TensorProto.FLOAT, ["n", TRUNK_CHANNELS, 7, 7]))
    onnx.checker.check_model(model)
    return model.SerializeToString()


SFACE_FEATURES = register_weights(WeightFile(
    name="sface-features", distribution=SFACE.distribution, path_in_distribution=SFACE.path_in_distribution, sha256=SFACE.sha256,
    install_hint=SFACE.install_hint, licence=SFACE.licence, repair=_with_trunk_output, repair_version=SFACE.repair_version,
))


@functools.lru_cache(maxsize=1)
def _features_session():
    return open_session(model_path(SFACE_FEATURES.name))


def _pool(maps: np.ndarray) -> np.ndarray:
    """(N, 5 x channels): each map averaged over the face and over each of its quarters."""
    half = maps.shape[2] // 2
    halves = (slice(None, half), slice(half, None))
    quarters = [maps[:, :, rows, cols] for rows in halves for cols in halves]
    return np.concatenate([maps.mean(axis=(2, 3))] + [q.mean(axis=(2, 3)) for q in quarters], axis=1)


def sface_features(crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One SFace pass over aligned 112 px RGB crops: (N, 128) L2-normalised embeddings, as the ``sface`` embedder
    gives them, and (N, 5120) float32 pooled trunk (the last map averaged over the face and each quarter)."""
    session, name = _features_session()
    embeddings, pooled = [], []
    for start in range(0, len(crops), TRUNK_BATCH):
        blob = np.ascontiguousarray(np.asarray(crops[start : start + TRUNK_BATCH]).transpose(0, 3, 1, 2), dtype=np.float32)
        vectors, maps = session.run(None, {name: blob})
        embeddings.append(vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12))
        pooled.append(_pool(maps))
    if not pooled:
        return np.zeros((0, 128), np.float32), np.zeros((0, TRUNK_DIMS), np.float32)
    return np.concatenate(embeddings).astype(np.float32), np.concatenate(pooled).astype(np.float32)


def sface_trunk(crops: np.ndarray) -> np.ndarray:
    """(N, 5120) float32: SFace's last map over aligned 112 px RGB crops, pooled (:func:`sface_features`)."""
    return sface_features(crops)[1]

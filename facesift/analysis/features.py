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
already installed: nothing new to download.
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
#: faces per run of the trunk (its maps are 200 KB a face)
TRUNK_BATCH = 64


def _cut_trunk(data: bytes) -> bytes:
    """SFace (repaired as the embedder runs it) ending at :data:`TRUNK_LAYER`, the nodes after it removed."""
    model = onnx.load_from_string(repair_sface(data))
    graph = model.graph
    del graph.output[:]
    graph.output.append(onnx.helper.make_tensor_value_info(TRUNK_LAYER, onnx.TensorProto.FLOAT, ["n", TRUNK_CHANNELS, 7, 7]))
    needed, kept = {TRUNK_LAYER}, []
    for node in reversed(graph.node):  # nodes are in topological order: walk back from the output
        if needed & set(node.output):
            kept.append(node)
            needed |= set(node.input)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    used = [init for init in graph.initializer if init.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(used)
    onnx.checker.check_model(model)
    return model.SerializeToString()


SFACE_TRUNK = register_weights(WeightFile(
    name="sface-trunk", distribution=SFACE.distribution, path_in_distribution=SFACE.path_in_distribution, sha256=SFACE.sha256,
    install_hint=SFACE.install_hint, licence=SFACE.licence, repair=_cut_trunk, repair_version=SFACE.repair_version,
))


@functools.lru_cache(maxsize=1)
def _trunk_session():
    return open_session(model_path(SFACE_TRUNK.name))


def sface_trunk(crops: np.ndarray) -> np.ndarray:
    """(N, 5120) float32: SFace's last map over aligned 112 px RGB crops, averaged over the face and each quarter."""
    session, name = _trunk_session()
    pooled = []
    for start in range(0, len(crops), TRUNK_BATCH):
        blob = np.ascontiguousarray(np.asarray(crops[start : start + TRUNK_BATCH]).transpose(0, 3, 1, 2), dtype=np.float32)
        maps = session.run(None, {name: blob})[0]
        half = maps.shape[2] // 2
        halves = (slice(None, half), slice(half, None))
        quarters = [maps[:, :, rows, cols] for rows in halves for cols in halves]
        pooled.append(np.concatenate([maps.mean(axis=(2, 3))] + [q.mean(axis=(2, 3)) for q in quarters], axis=1))
    return np.concatenate(pooled).astype(np.float32) if pooled else np.zeros((0, TRUNK_DIMS), np.float32)

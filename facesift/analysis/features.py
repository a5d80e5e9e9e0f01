"""Hand-made image features the liveness head reads: colour texture of the aligned face.

A printed photo held to a camera loses fine skin texture and shifts its colours (ink gamut, paper gloss).
Uniform local-binary-pattern histograms of each channel in HSV and YCrCb capture both (Boulkenafet, Komulainen
and Hadid, "face anti-spoofing based on color texture analysis", ICIP 2015); measured against SFace embeddings
as features on NUAA's held-out subjects, they are far better (docs/analyze.md).
"""

from __future__ import annotations

import cv2
import numpy as np
from skimage.feature import local_binary_pattern

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

"""Five-point alignment: a similarity transform (rotation, uniform scale, shift) onto a canonical template."""

from __future__ import annotations

import cv2
import numpy as np

#: The ArcFace 112x112 template (eyes, nose tip, mouth corners) that SFace and most modern embedders expect.
ARCFACE_TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)


def template_for(size: int, margin: float = 0.0) -> np.ndarray:
    """The 112 template scaled to a ``size`` x ``size`` crop, optionally zoomed out by ``margin`` (0.1 = 10%)."""
    points = (ARCFACE_TEMPLATE_112 - 56.0) / (1.0 + margin) + 56.0
    return points * (size / 112.0)


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2x3 least-squares similarity transform taking ``source`` points onto ``target`` (Umeyama, 1991)."""
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    source_centered, target_centered = source - source_mean, target - target_mean
    covariance = target_centered.T @ source_centered / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    reflection = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        reflection[1, 1] = -1
    rotation = u @ reflection @ vt
    variance = (source_centered**2).sum() / len(source)
    scale = (singular * np.diag(reflection)).sum() / variance if variance > 0 else 1.0
    matrix = np.zeros((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = target_mean - scale * rotation @ source_mean
    return matrix


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int = 112, margin: float = 0.0) -> np.ndarray:
    """Warp ``image`` so the five ``landmarks`` land on the template: an aligned ``size`` x ``size`` crop."""
    matrix = similarity_transform(np.asarray(landmarks).reshape(5, 2), template_for(size, margin))
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

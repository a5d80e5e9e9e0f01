"""facesift: offline face detection, embedding, verification and identification.

The public API is a few verbs returning typed results::

    import facesift
    faces = facesift.detect("group.jpg")                 # list[DetectedFace]
    vectors = facesift.represent("me.jpg")               # list[FaceEmbedding]
    result = facesift.verify("me.jpg", "profile.png")    # Verification
    report = facesift.evaluate("lfw/", "pairs.txt")      # PairsReport (facesift.evaluation has the rest)
    faces = facesift.analyze("me.jpg")                   # list[FaceAnalysis]: age, gender, emotion, liveness
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Sequence

# onnxruntime >= 1.29 records usage telemetry (a device id and an event queue under ~/.cache/Microsoft, sent
# when a network is there) unless this is set before it initialises; a user who chose otherwise keeps it.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from facesift.analysis import FaceAnalysis
from facesift.errors import (
    EmptyImageError,
    FacesiftError,
    ImageError,
    ImageTooLargeError,
    ModelError,
    ModelNotInstalledError,
    NoFaceError,
    NotAnImageError,
    TruncatedImageError,
    UnknownBackendError,
    UnsupportedImageError,
)
from facesift.image import ImageInput, load_image
from facesift.pipeline import DEFAULT_FACE_POLICY, Pipeline, get_pipeline
from facesift.results import DetectedFace, Face, FaceEmbedding, FaceQuality, ImageFaces, Verification
from facesift.verification import cosine_similarity, verify_images

if TYPE_CHECKING:
    from facesift.evaluation import PairsReport

__version__ = "0.1.0"


def detect(image: ImageInput, *, detector: str = "yunet", policy: str = "all") -> list[DetectedFace]:
    """Every face in ``image`` (or the one ``policy`` picks: ``auto``/``largest``/``central``) with its quality."""
    return get_pipeline(detector=detector).detect(image, policy=policy)


def represent(
    image: ImageInput, *, model: str = "sface", detector: str = "yunet", policy: str = "all"
) -> list[FaceEmbedding]:
    """Embeddings of the faces in ``image``; an image with no face gives an empty list."""
    return get_pipeline(detector=detector, embedder=model).represent(image, policy=policy)


def verify(
    image_a: ImageInput,
    image_b: ImageInput,
    *,
    model: str = "sface",
    detector: str = "yunet",
    threshold: float | None = None,
    false_match_rate: float | None = None,
    policy: str = DEFAULT_FACE_POLICY,
) -> Verification:
    """Is the face in ``image_a`` the same person as the face in ``image_b``?

    The default threshold is the model card's calibrated one for its default false-match rate; pass
    ``false_match_rate`` for another calibrated operating point, or ``threshold`` to fix it yourself.
    Raises :class:`NoFaceError` when either image has no face.
    """
    pipeline = get_pipeline(detector=detector, embedder=model)
    return verify_images(
        pipeline, image_a, image_b, threshold=threshold, false_match_rate=false_match_rate, policy=policy
    )


def analyze(
    image: ImageInput,
    actions: Sequence[str] = ("age", "gender", "emotion", "liveness"),
    *,
    detector: str = "yunet",
    policy: str = "all",
) -> list[FaceAnalysis]:
    """Apparent age, gender, emotion and liveness of each face (``race`` only on request, as an audit aid).

    ``detector="none"`` takes the whole image as one face (for inputs that are already face crops). An image
    with no face gives []; a face too small to analyse comes back with its reason and no estimates.
    """
    from facesift.analysis import analyze_image

    return analyze_image(image, actions=actions, detector=detector, policy=policy)


def evaluate(
    data: str | os.PathLike,
    pairs: str | os.PathLike | None = None,
    *,
    model: str = "sface",
    detector: str = "yunet",
    degradation: str | None = None,
) -> "PairsReport":
    """Verification accuracy on a dataset: a pairs file (LFW format or CSV) under the LFW 10-fold protocol,
    or, without ``pairs``, every pair of an identity-folder set. ``facesift.evaluation`` has the other protocols."""
    from facesift.evaluation import evaluate_all_pairs, evaluate_pairs, load_identity_folders

    options = dict(model=model, detector=detector, degradation=degradation)
    if pairs is None:
        return evaluate_all_pairs(load_identity_folders(data), **options)
    return evaluate_pairs(data, pairs, **options)


__all__ = [
    "DetectedFace",
    "FaceAnalysis",
    "EmptyImageError",
    "Face",
    "FaceEmbedding",
    "FaceQuality",
    "FacesiftError",
    "ImageError",
    "ImageFaces",
    "ImageInput",
    "ImageTooLargeError",
    "ModelError",
    "ModelNotInstalledError",
    "NoFaceError",
    "NotAnImageError",
    "Pipeline",
    "TruncatedImageError",
    "UnknownBackendError",
    "UnsupportedImageError",
    "Verification",
    "analyze",
    "cosine_similarity",
    "detect",
    "evaluate",
    "get_pipeline",
    "load_image",
    "represent",
    "verify",
]

"""1:1 verification: similarity between two faces and a decision at a calibrated operating point."""

from __future__ import annotations

import numpy as np

from facesift.errors import InvalidArgumentError
from facesift.image import ImageInput
from facesift.pipeline import DEFAULT_FACE_POLICY, Pipeline
from facesift.recognition import ModelCard
from facesift.results import Verification, VerificationDecision


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two embeddings (they are L2-normalised, so a dot product, kept safe anyway)."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / denominator) if denominator > 0 else 0.0


def resolve_threshold(card: ModelCard, threshold: float | None, false_match_rate: float | None) -> tuple[float, float | None]:
    """The threshold to apply and the false-match rate it stands for (None when the caller fixed it)."""
    if threshold is not None and false_match_rate is not None:
        raise InvalidArgumentError("Pass either a threshold or a false-match rate, not both")
    if threshold is not None:
        if not -1.0 <= threshold <= 1.0:
            raise InvalidArgumentError(f"A cosine threshold must be in [-1, 1], got {threshold}")
        return float(threshold), None
    fmr = card.default_false_match_rate if false_match_rate is None else false_match_rate
    return card.threshold_for(fmr), fmr


def verify_images(
    pipeline: Pipeline,
    image_a: ImageInput,
    image_b: ImageInput,
    *,
    threshold: float | None = None,
    false_match_rate: float | None = None,
    policy: str = DEFAULT_FACE_POLICY,
) -> Verification:
    """Are the (chosen) faces of two images the same person?"""
    limit, fmr = resolve_threshold(pipeline.embedder.card, threshold, false_match_rate)
    face_a = pipeline.one_face(image_a, policy=policy, label="the first image")
    face_b = pipeline.one_face(image_b, policy=policy, label="the second image")
    similarity = cosine_similarity(face_a.embedding, face_b.embedding)
    verified = similarity >= limit
    point = f"false-match rate {fmr:g}" if fmr is not None else "a caller-set threshold"
    explanation = (
        f"{'Same person' if verified else 'Different people'}: similarity {similarity:.3f} is "
        f"{'at or above' if verified else 'below'} the threshold {limit:.3f} ({point}, model {pipeline.model})"
    )
    return Verification(
        verified=verified,
        similarity=similarity,
        threshold=limit,
        false_match_rate=fmr,
        model=pipeline.model,
        face_a=face_a.face,
        face_b=face_b.face,
        quality_a=face_a.quality,
        quality_b=face_b.quality,
        decision=VerificationDecision.SAME_PERSON if verified else VerificationDecision.DIFFERENT_PEOPLE,
        explanation=explanation,
    )

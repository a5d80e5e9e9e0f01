"""``facesift.analyze``: age, gender, emotion and liveness of each face, from heads trained here.

Each face is detected by the shared pipeline as for recognition and aligned to SFace's 112 px crop (whichever
embedder the pipeline runs); the heads then read the SFace embedding, an intermediate map of SFace (age, gender and
emotion: fine-tuned copies of SFace's last blocks) or the crop's colour texture (per head: ``heads.json``). The
embedding and the map come from one SFace pass with two outputs, the texture from the crop; each kind of input is
computed once per call, and age and gender share one network (costs: ``benchmarks/analyze.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from facesift.alignment import align_face
from facesift.analysis.data import EMOTIONS, RACES
from facesift.analysis.features import MAP_LAYERS, colour_texture, sface_features
from facesift.analysis.heads import Head, load_heads, run_heads
from facesift.errors import InvalidArgumentError
from facesift.image import ImageInput, load_image
from facesift.results import DetectedFace, Face, FaceEmbedding, FaceQuality, Serialisable

ACTIONS: tuple[str, ...] = ("age", "gender", "emotion", "liveness", "race")
DEFAULT_ACTIONS: tuple[str, ...] = ("age", "gender", "emotion", "liveness")
#: below this eye distance (px) a face holds too little detail for any head: it is reported, not analysed
MIN_EYE_DISTANCE = 8.0


@dataclass(frozen=True)
class AgeEstimate(Serialisable):
    """Apparent age in years, with the interval that held ``coverage`` of held-out faces of that age band."""

    years: float
    low: float
    high: float
    coverage: float


@dataclass(frozen=True)
class GenderEstimate(Serialisable):
    """``woman`` or ``man`` (UTKFace's binary labels), with the head's probability of the label it gives."""

    label: str
    probability: float


@dataclass(frozen=True)
class Distribution(Serialisable):
    """A probability over named classes (emotion, race group) and the most probable one."""

    dominant: str
    probabilities: dict[str, float]


@dataclass(frozen=True)
class LivenessCheck(Serialisable):
    """Is this a live face or a presentation attack (a print, a screen)? ``live`` is the decision at the
    calibrated operating point named in ``operating_point``; a passive single-image check is not proof
    against every attack."""

    live: bool
    score: float
    threshold: float
    operating_point: str
    decision: str


@dataclass(frozen=True)
class FaceAnalysis(Serialisable):
    """One face and what the requested actions found; an action left ``None`` says why in ``reasons``."""

    face: Face
    quality: FaceQuality
    age: AgeEstimate | None = None
    gender: GenderEstimate | None = None
    emotion: Distribution | None = None
    liveness: LivenessCheck | None = None
    race: Distribution | None = None
    reasons: tuple[str, ...] = field(default=())


def check_actions(actions: Sequence[str]) -> tuple[str, ...]:
    """The requested actions, validated; an unknown name is an ``InvalidArgumentError`` (a ValueError) that lists the valid ones."""
    actions = tuple(dict.fromkeys(actions))
    unknown = [a for a in actions if a not in ACTIONS]
    if unknown or not actions:
        raise InvalidArgumentError(f"Unknown analysis action(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(ACTIONS)}")
    return actions


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _age(head: Head, values: np.ndarray) -> list[AgeEstimate]:
    calibration = head.card.calibration
    bands = calibration["bands"]  # [[upper age, half-width below, half-width above], ...] ascending
    results = []
    for years in np.clip(values[:, 0], 0.0, 100.0):
        _, below, above = next((b for b in bands if years <= b[0]), bands[-1])
        results.append(
            AgeEstimate(round(float(years), 1), round(max(0.0, years - below), 1), round(years + above, 1), calibration["coverage"])
        )
    return results


def _gender(head: Head, logits: np.ndarray) -> list[GenderEstimate]:
    woman = 1.0 / (1.0 + np.exp(-logits[:, 0]))
    return [GenderEstimate("woman", round(float(p), 4)) if p >= 0.5 else GenderEstimate("man", round(float(1 - p), 4)) for p in woman]


def _distribution(head: Head, logits: np.ndarray, names: Sequence[str]) -> list[Distribution]:
    out = []
    for row in _softmax(logits):
        out.append(Distribution(names[int(row.argmax())], {n: round(float(p), 4) for n, p in zip(names, row, strict=True)}))
    return out


def _liveness(head: Head, logits: np.ndarray) -> list[LivenessCheck]:
    threshold = float(head.card.calibration["threshold"])
    point = head.card.calibration["operating_point"]
    out = []
    for score in 1.0 / (1.0 + np.exp(-logits[:, 0])):
        live = bool(score >= threshold)
        verdict = "live face" if live else "presentation attack suspected"
        out.append(LivenessCheck(live, round(float(score), 4), threshold, point,
                                 f"{verdict}: liveness score {score:.3f} {'>=' if live else '<'} {threshold:.3f} ({point})"))
    return out


def analyze_faces(
    crops: Sequence[np.ndarray], embeddings: np.ndarray | None, actions: Sequence[str]
) -> dict[str, list]:
    """Run the heads of ``actions`` on aligned 112 px SFace crops; per action, one result a face. ``embeddings``:
    their SFace embeddings where already computed (None: taken from the pass that computes the trunk)."""
    heads = load_heads()
    actions = check_actions(actions)
    missing = [a for a in actions if a not in heads]
    if missing:
        from facesift.errors import ModelNotInstalledError

        raise ModelNotInstalledError(f"No trained head for {', '.join(missing)}; reinstall facesift or run facesift train analysis")
    if not len(crops):
        return {a: [] for a in actions}
    kinds = {heads[action].card.input for action in actions}
    inputs: dict[str, np.ndarray] = {}  # each kind once, whichever heads read it
    layers = [kind for kind in kinds if kind in MAP_LAYERS]
    if layers or ("embedding" in kinds and embeddings is None):
        computed, maps = sface_features(np.stack(crops), layers)
        inputs.update(maps)
        inputs["embedding"] = computed if embeddings is None else embeddings
    elif embeddings is not None:
        inputs["embedding"] = embeddings
    if "texture" in kinds:
        inputs["texture"] = np.stack([colour_texture(c) for c in crops])
    outputs = run_heads([heads[action] for action in actions], inputs)
    results: dict[str, list] = {}
    for action in actions:
        head, output = heads[action], outputs[action]
        if action == "age":
            results[action] = _age(head, output)
        elif action == "gender":
            results[action] = _gender(head, output)
        elif action == "liveness":
            results[action] = _liveness(head, output)
        else:
            results[action] = _distribution(head, output, EMOTIONS if action == "emotion" else RACES)
    return results


def sface_crop(pixels: np.ndarray, face: Face) -> np.ndarray:
    """The crop the heads were trained on: SFace's 112 px ArcFace alignment (a fusion pipeline aligns otherwise)."""
    return align_face(pixels, face.landmarks_array(), 112)


def analyze_image(
    image: ImageInput, *, actions: Sequence[str] = DEFAULT_ACTIONS, detector: str = "yunet", policy: str = "all"
) -> list[FaceAnalysis]:
    """Every face of ``image`` (or the one ``policy`` picks), analysed; an image with no face gives []."""
    from facesift.pipeline import get_pipeline

    actions = check_actions(actions)
    pipeline = get_pipeline(detector=detector)
    pixels = load_image(image, max_pixels=pipeline.max_pixels)
    return analyze_detected(pixels, pipeline.detect(pixels, policy=policy), actions)


def analyze_detected(pixels: np.ndarray, faces: Sequence[DetectedFace], actions: Sequence[str]) -> list[FaceAnalysis]:
    """Analysis of faces already detected (with their quality) in ``pixels``; faces too small are reported, not analysed."""
    usable = [k for k, item in enumerate(faces) if item.face.eye_distance >= MIN_EYE_DISTANCE]
    found = analyze_faces([sface_crop(pixels, faces[k].face) for k in usable], None, actions)
    analyses = []
    for k, item in enumerate(faces):
        if k not in usable:
            reason = f"face too small to analyse: eyes {item.face.eye_distance:.1f} px apart, below {MIN_EYE_DISTANCE:g} px"
            analyses.append(FaceAnalysis(item.face, item.quality, reasons=(reason,)))
            continue
        row = usable.index(k)
        values = {action: found[action][row] for action in found}
        reasons = tuple(f"quality: {r}" for r in item.quality.reasons)
        analyses.append(FaceAnalysis(item.face, item.quality, reasons=reasons, **values))
    return analyses


def check_liveness(pixels: np.ndarray, face: DetectedFace | FaceEmbedding) -> LivenessCheck:
    """The liveness decision for one detected face of ``pixels`` (what ``require_live`` enrolment and checks use)."""
    if face.face.eye_distance < MIN_EYE_DISTANCE:
        return LivenessCheck(
            False, 0.0, 1.0, "not checked", f"face too small to check liveness: eyes {face.face.eye_distance:.1f} px apart"
        )
    return analyze_faces([sface_crop(pixels, face.face)], None, ("liveness",))["liveness"][0]

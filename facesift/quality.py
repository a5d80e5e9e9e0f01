"""Face quality from what we can measure without a learned model.

Size, detector confidence, sharpness, head pose from the five landmarks, brightness and contrast. Each
failed check adds a reason, so enrolment can refuse a poor face and say why; the limits and the measured risk
of each are in docs/quality.md.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np

from facesift.results import Face, FaceQuality, QualityMeasures


@dataclass(frozen=True)
class QualityPolicy:
    """Limits beyond which a face is refused by enrolment and ``check`` (LOW_QUALITY).

    The defaults come from error-versus-discard curves on the development data (``facesift evaluate quality``,
    docs/quality.md): a limit sits where the faces beyond it fail at least half of their genuine comparisons at
    the card's 1e-3 threshold, or, where no face of the data is that bad, it only guards against what the data
    does not hold (docs/quality.md says which is which).
    """

    min_eye_distance: float = 12.0  # not measurable on celeba300 (its crops fix the face size): docs/quality.md
    min_detector_score: float = 0.89  # measured: the faces below fail 62 % of their genuine comparisons
    min_sharpness: float = 20.0  # celeba300 faces down to 40 match as well as any; blurred copies measure 5-14
    max_abs_yaw: float = 90.0  # measured: no yaw makes a face unusable (profiles fail about 30 %): no yaw limit
    max_abs_pitch: float = 90.0  # measured: faces beyond the old 35 fail 39 %, not unusable: no pitch limit
    max_abs_roll: float = 9.0  # measured: YuNet's roll above 9 degrees flags faces that fail >= 50 %
    min_brightness: float = 40.0  # guards (no face of the data is beyond them): black or washed-out frames
    max_brightness: float = 220.0
    min_contrast: float = 15.0


DEFAULT_POLICY = QualityPolicy()


def head_pose(landmarks: np.ndarray) -> tuple[float, float, float]:
    """Rough yaw, pitch and roll in degrees from five landmarks (0, 0, 0 is a frontal face).

    Yaw from the nose's sideways offset from the eye-mouth midline, pitch from where the nose sits between
    the eye line and the mouth line (about 0.45 of the way down on a frontal face), roll from the eye line.
    """
    right_eye, left_eye, nose, right_mouth, left_mouth = np.asarray(landmarks, dtype=np.float64)
    eye_vector = left_eye - right_eye
    roll = float(np.degrees(np.arctan2(eye_vector[1], eye_vector[0])))
    eye_distance = float(np.hypot(*eye_vector)) or 1.0
    axis = eye_vector / eye_distance
    normal = np.array([-axis[1], axis[0]])
    eye_mid, mouth_mid = (right_eye + left_eye) / 2, (right_mouth + left_mouth) / 2
    midline = (eye_mid + mouth_mid) / 2
    sideways = float(np.dot(nose - midline, axis)) / eye_distance
    yaw = float(np.degrees(np.arcsin(np.clip(sideways * 2.0, -1.0, 1.0))))
    face_height = float(np.dot(mouth_mid - eye_mid, normal)) or 1.0
    down = float(np.dot(nose - eye_mid, normal)) / face_height
    pitch = float(np.degrees(np.arcsin(np.clip((down - 0.45) * 2.5, -1.0, 1.0))))
    return yaw, pitch, roll


def sharpness(gray_crop: np.ndarray) -> float:
    """Variance of the Laplacian over the central face region of an aligned crop: low means blurred."""
    height, width = gray_crop.shape[:2]
    center = gray_crop[height // 4 : height - height // 8, width // 6 : width - width // 6]
    return float(cv2.Laplacian(center, cv2.CV_64F).var())


def measure(face: Face, aligned_crop: np.ndarray) -> QualityMeasures:
    """Size, detector score, sharpness, pose and exposure of a face; ``aligned_crop`` is its RGB aligned crop."""
    gray = cv2.cvtColor(aligned_crop, cv2.COLOR_RGB2GRAY)
    yaw, pitch, roll = head_pose(face.landmarks_array())
    inner = gray[gray.shape[0] // 4 : -gray.shape[0] // 8, gray.shape[1] // 6 : -gray.shape[1] // 6]
    return QualityMeasures(
        face_size=float(min(face.width, face.height)),
        eye_distance=face.eye_distance,
        detector_score=float(face.score),
        sharpness=sharpness(gray),
        yaw=yaw,
        pitch=pitch,
        roll=roll,
        brightness=float(inner.mean()),
        contrast=float(inner.std()),
    )


def assess(face: Face, aligned_crop: np.ndarray, policy: QualityPolicy = DEFAULT_POLICY) -> FaceQuality:
    """Measure a face and judge it against ``policy``; ``aligned_crop`` is its RGB aligned crop."""
    return judge(measure(face, aligned_crop), policy)


def judge(measured: QualityMeasures, policy: QualityPolicy = DEFAULT_POLICY) -> FaceQuality:
    """The quality score and the reasons a face fails ``policy`` (measure once, judge against any limits; a
    FaceQuality judged before can be judged again)."""
    m = measured
    reasons = []
    if m.eye_distance < policy.min_eye_distance:
        reasons.append(f"face too small: eyes {m.eye_distance:.0f} px apart (< {policy.min_eye_distance:.0f})")
    if m.detector_score < policy.min_detector_score:
        reasons.append(f"uncertain detection: score {m.detector_score:.2f} (< {policy.min_detector_score:.2f})")
    if m.sharpness < policy.min_sharpness:
        reasons.append(f"blurred: sharpness {m.sharpness:.0f} (< {policy.min_sharpness:.0f})")
    for label, angle, limit in (
        ("turned sideways", m.yaw, policy.max_abs_yaw),
        ("tilted up or down", m.pitch, policy.max_abs_pitch),
        ("head tilted", m.roll, policy.max_abs_roll),
    ):
        if abs(angle) > limit:
            reasons.append(f"{label}: {angle:+.0f} degrees (limit {limit:.0f})")
    if m.brightness < policy.min_brightness:
        reasons.append(f"too dark: brightness {m.brightness:.0f} (< {policy.min_brightness:.0f})")
    if m.brightness > policy.max_brightness:
        reasons.append(f"overexposed: brightness {m.brightness:.0f} (> {policy.max_brightness:.0f})")
    if m.contrast < policy.min_contrast:
        reasons.append(f"low contrast: {m.contrast:.0f} (< {policy.min_contrast:.0f})")
    return FaceQuality(score=quality_score(m, policy), acceptable=not reasons, reasons=tuple(reasons),
                       **{f.name: getattr(m, f.name) for f in dataclasses.fields(QualityMeasures)})


def quality_score(m: QualityMeasures, policy: QualityPolicy = DEFAULT_POLICY) -> float:
    """A single number in [0, 1]: the product of soft per-factor scores, each 0.5 at its policy limit."""

    def soft(value: float, limit: float) -> float:
        return float(value / (value + limit)) if value > 0 else 0.0

    size = soft(m.eye_distance, policy.min_eye_distance)
    sharp = soft(m.sharpness, policy.min_sharpness)
    pose = float(np.cos(np.radians(min(abs(m.yaw), 89.0))) * np.cos(np.radians(min(abs(m.pitch), 89.0))))
    exposure = 1.0 - min(1.0, abs(m.brightness - 128.0) / 160.0)
    # rescale so that a large, sharp, frontal, well-exposed face scores close to 1
    raw = (2 * size) ** 0.5 * (2 * sharp) ** 0.5 * pose * exposure * m.detector_score
    return float(np.clip(raw / 1.3, 0.0, 1.0))

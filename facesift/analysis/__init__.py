"""Face analysis: apparent age, gender, emotion, liveness (and, for audits only, race group) per face."""

from facesift.analysis.analyzer import (
    ACTIONS,
    DEFAULT_ACTIONS,
    AgeEstimate,
    Distribution,
    FaceAnalysis,
    GenderEstimate,
    LivenessCheck,
    analyze_image,
    check_liveness,
)

__all__ = [
    "ACTIONS",
    "DEFAULT_ACTIONS",
    "AgeEstimate",
    "Distribution",
    "FaceAnalysis",
    "GenderEstimate",
    "LivenessCheck",
    "analyze_image",
    "check_liveness",
]

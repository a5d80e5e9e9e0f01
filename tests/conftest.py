"""Shared fixtures: the real face photos in ``../shared/faces`` (``FACESIFT_FACES_DIR`` overrides)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# The tests see only what they set up themselves: a model the user trained (which the pipeline would route
# small faces to) or a card the user calibrated would change their results. Repaired weight files are kept
# between runs in the repository's own ignored cache.
os.environ["FACESIFT_CACHE_DIR"] = str(REPO / ".cache" / "tests")
os.environ["FACESIFT_CARDS_DIR"] = tempfile.mkdtemp(prefix="facesift-test-cards-")


def faces_root() -> Path:
    root = Path(os.environ.get("FACESIFT_FACES_DIR", REPO.parent / "shared" / "faces"))
    if not (root / "README.md").is_file():
        raise RuntimeError(
            f"The test photos are not at {root}. Point FACESIFT_FACES_DIR at the shared faces folder."
        )
    return root


@pytest.fixture(scope="session")
def faces() -> Path:
    return faces_root()


@pytest.fixture
def weight_registry(monkeypatch):
    """``facesift.models``, with every weight file a test registers (and where it resolved) gone after the test:
    the registry is global, and a test's entry would point the rest of the run at a deleted temporary folder."""
    from facesift import models

    monkeypatch.setattr(models, "_REGISTRY", dict(models._REGISTRY))
    monkeypatch.setattr(models, "_RESOLVED", dict(models._RESOLVED))
    return models


@pytest.fixture(scope="session")
def pipeline():
    import facesift

    return facesift.get_pipeline()


@pytest.fixture(scope="session")
def obama(faces: Path) -> Path:
    return faces / "wild" / "barack_obama" / "obama.jpg"


@pytest.fixture(scope="session")
def biden(faces: Path) -> Path:
    return faces / "wild" / "joe_biden" / "biden.jpg"


@pytest.fixture(scope="session")
def first_second_clip(faces: Path, tmp_path_factory) -> Path:
    """The Hamilton clip's first 30 frames (Lin Manuel Miranda on stage, Alex Lacamoire at the piano) as their own MP4."""
    import cv2

    path = tmp_path_factory.mktemp("video") / "first_second.mp4"
    capture = cv2.VideoCapture(str(faces / "video" / "short_hamilton_clip.mp4"))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 29.97, (640, 360))
    for _ in range(30):
        ok, frame = capture.read()
        assert ok
        writer.write(frame)
    writer.release()
    capture.release()
    return path


@pytest.fixture(scope="session")
def sface_run() -> str:
    """How evaluation names SFace's runs: with the cross-resolution models it routes small faces to (the shipped
    ones, unless FACESIFT_LOW_RESOLUTION=0), so a report says what really embedded."""
    from facesift.recognition.trained import installed_low_resolution

    return "+".join(["sface", *(name for name, _ in installed_low_resolution("sface"))])

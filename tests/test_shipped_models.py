"""The models we train ship inside the package: packed small, checked by sha256, unpacked to fp32 once, routed.

The packing path is exercised on a real network (SFace itself, standing in for a fine-tuned copy: same
architecture) and real crops; the shipped files themselves are tested once they are in the package.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

import facesift
from facesift import models
from facesift.image import load_image
from facesift.pipeline import get_pipeline
from facesift.recognition.base import ModelCard, load_card
from facesift.recognition.trained import (
    LOW_RESOLUTION_MODELS,
    SHIPPED,
    SHIPPED_ORIGINS,
    install_trained,
    installed_low_resolution,
    pack_trained,
    trained_embedders,
    trained_origin,
    unpack_shipped,
)
from facesift.runtime import open_session

#: how far a shipped model may be from its fp32 original (and from a fresh training run) on real crops: int8
#: storage costs about 0.003 of cosine on SFace (mean over the crops below; 1.0 = identical vectors)
MIN_MEAN_COSINE, MIN_COSINE = 0.995, 0.98


@pytest.fixture(scope="module")
def crops(faces, pipeline):
    """Aligned 112 px crops of real faces: full size, and shrunk to 14 px and back (what routed models see)."""
    found = []
    for path in sorted((faces / "johns").rglob("*.jpg"))[::5][:10]:
        pixels = load_image(path)
        face = pipeline.detect(pixels)[0].face
        found.append(pipeline.embedder.align(pixels, face))
    small = [cv2.resize(cv2.resize(c, (14, 14), interpolation=cv2.INTER_AREA), (112, 112), interpolation=cv2.INTER_CUBIC) for c in found]
    return np.stack(found + small)


def _embed(path: Path, crops: np.ndarray) -> np.ndarray:
    session, name = open_session(path)
    vectors = session.run(None, {name: np.ascontiguousarray(crops.transpose(0, 3, 1, 2), dtype=np.float32)})[0]
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.mark.parametrize("precision, ratio", [("int8", 0.3), ("fp16", 0.55)])
def test_a_packed_model_is_small_checked_and_unpacked_to_nearly_the_same_network(
    tmp_path, monkeypatch, crops, precision, ratio, weight_registry
):
    source = models.model_path("sface")  # fp32, as a trained model is before packing
    monkeypatch.setenv("FACESIFT_CACHE_DIR", str(tmp_path / "cache"))
    card = dataclasses.replace(load_card("sface"), name=f"packtest-{precision}", compatible_with="sface", eye_distance_below=3.0)
    install_trained(source, card)
    with pytest.raises(ValueError, match="no licence and training script"):  # every shipped model says where it came from
        pack_trained(card.name, tmp_path / "package", precision=precision)
    monkeypatch.setitem(SHIPPED_ORIGINS, card.name, ("research use only: a test", "scripts/a_test.sh"))
    packed, digest = pack_trained(card.name, tmp_path / "package", precision=precision, training_data="johns (a test)")
    assert packed.stat().st_size < ratio * source.stat().st_size
    shipped_card = ModelCard(**json.loads((tmp_path / "package" / "cards" / f"{card.name}.json").read_text()))
    assert (
        shipped_card.training_data == "johns (a test)" and "research use only" in shipped_card.licence and precision in shipped_card.source
        and "scripts/a_test.sh" in shipped_card.source
    )

    weights = models.register_weights(models.WeightFile(
        name=card.name, distribution=models.OWN_DISTRIBUTION, path_in_distribution=str(packed), sha256=digest,
        install_hint="pip install facesift", licence=shipped_card.licence, repair=unpack_shipped))
    unpacked = models.model_path(card.name)
    assert unpacked.parent == tmp_path / "cache" and unpacked.stat().st_size >= 0.99 * source.stat().st_size
    cosine = (_embed(unpacked, crops) * _embed(source, crops)).sum(axis=1)
    assert cosine.mean() >= MIN_MEAN_COSINE and cosine.min() >= MIN_COSINE, cosine

    models.register_weights(dataclasses.replace(weights, name=f"{card.name}-bad", sha256="0" * 64))
    with pytest.raises(facesift.ModelError, match="checksum"):
        models.model_path(f"{card.name}-bad")


def _shipped() -> list[str]:
    return [name for name in LOW_RESOLUTION_MODELS if name in SHIPPED and name in trained_embedders()]


needs_shipped = pytest.mark.skipif(
    len(_shipped()) < len(LOW_RESOLUTION_MODELS),
    reason="sface-lowres/sface-tiny are not in the package yet: bash scripts/train_lowres.sh, then "
           "python -m facesift train ship sface-lowres sface-tiny (docs/low-resolution.md)",
)


@needs_shipped
def test_the_shipped_models_load_and_route_a_small_face(obama, monkeypatch, tmp_path):
    monkeypatch.setenv("FACESIFT_CACHE_DIR", str(tmp_path))  # a fresh install: nothing trained here
    assert [trained_origin(name) for name in LOW_RESOLUTION_MODELS] == ["shipped", "shipped"]
    pipeline = facesift.Pipeline()
    assert [name for name, _ in pipeline.routed_models] == list(LOW_RESOLUTION_MODELS)
    photo = load_image(obama)
    # shrunk until the eyes are about 5 px apart, then brought back: YuNet finds it, its detail says small
    tiny = cv2.resize(photo, None, fx=1 / 22, fy=1 / 22, interpolation=cv2.INTER_AREA)
    small = pipeline.represent(cv2.resize(tiny, (photo.shape[1], photo.shape[0]), interpolation=cv2.INTER_CUBIC), policy="largest")
    large = pipeline.represent(photo, policy="largest")
    assert small and small[0].embedded_by in LOW_RESOLUTION_MODELS and large[0].embedded_by is None
    assert float(small[0].embedding @ large[0].embedding) > 0.3  # same space: the small face still looks like him


@needs_shipped
def test_routing_can_be_turned_off_for_a_whole_process(monkeypatch, tmp_path):
    """FACESIFT_LOW_RESOLUTION=0: the plain embedder alone, as the README's "SFace alone" row is measured."""
    monkeypatch.setenv("FACESIFT_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("FACESIFT_LOW_RESOLUTION", "0")
    assert facesift.Pipeline().routed_models == () and installed_low_resolution("sface") == ()
    assert [name for name, _ in facesift.Pipeline(low_resolution=True).routed_models] == list(LOW_RESOLUTION_MODELS)
    assert get_pipeline(low_resolution=True) is get_pipeline(low_resolution=True)  # asked for: built once, not every call
    monkeypatch.setenv("FACESIFT_LOW_RESOLUTION", "1")
    assert [name for name, _ in installed_low_resolution("sface")] == list(LOW_RESOLUTION_MODELS)


@pytest.mark.slow
@needs_shipped
def test_a_fresh_training_run_reproduces_the_shipped_models(tmp_path, crops):
    """41 min on 2 idle cores: scripts/train_lowres.sh from scratch, then packed as shipped; vectors within tolerance."""
    root = Path(__file__).resolve().parent.parent
    env = os.environ | {"FACESIFT_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(root)}
    subprocess.run(["bash", "scripts/train_lowres.sh", "--threads", "2"], cwd=root, env=env, check=True)
    for name in LOW_RESOLUTION_MODELS:
        fresh = tmp_path / "cache" / "trained" / f"{name}.onnx"
        cosine = (_embed(fresh, crops) * _embed(models.model_path(name), crops)).sum(axis=1)
        assert cosine.mean() >= MIN_MEAN_COSINE and cosine.min() >= MIN_COSINE, (name, cosine)

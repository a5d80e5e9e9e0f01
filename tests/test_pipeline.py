"""The pipeline's pieces: built detectors and embedders handed in, the crop hook, closing (real models, real photos)."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from facesift.detection import create_detector
from facesift.errors import ClosedError, InvalidArgumentError
from facesift.evaluation import CropDegradation
from facesift.image import load_image
from facesift.models import model_path
from facesift.pipeline import Pipeline, get_pipeline
from facesift.recognition import Embedder, ModelCard, ModelEmbedder, create_embedder
from facesift.recognition.trained import install_trained


def test_a_pipeline_of_built_pieces_embeds_as_the_named_one(obama, pipeline):
    detector, embedder = create_detector("yunet"), create_embedder("sface")
    with Pipeline(detector, embedder) as built:
        assert built.detector is detector and built.embedder is embedder
        face = built.one_face(obama)
    assert np.array_equal(face.embedding, pipeline.one_face(obama).embedding)
    assert face.face == pipeline.one_face(obama).face
    assert not embedder.closed  # handed in: its owner closes it
    embedder.close()


def test_built_pieces_take_no_options_and_must_be_pieces():
    with pytest.raises(InvalidArgumentError, match="already built"):
        Pipeline(create_detector("yunet"), detector_options={"score_threshold": 0.9})
    with pytest.raises(InvalidArgumentError, match="embedder name or a built Embedder"):
        Pipeline(embedder=42)


def test_a_closed_pipeline_says_so(obama):
    with Pipeline() as pipeline:
        assert pipeline.represent(obama)
        embedder = pipeline.embedder
    assert pipeline.closed and embedder.closed
    with pytest.raises(ClosedError, match="pipeline was closed"):
        pipeline.represent(obama)
    with pytest.raises(ClosedError, match="pipeline was closed"):
        pipeline.represent_batch([obama])
    with pytest.raises(ClosedError, match="'sface' embedder was closed"):
        embedder.embed(np.zeros((1, 112, 112, 3), np.uint8))
    pipeline.close()  # twice is fine


def test_a_pipeline_nothing_holds_closes_its_embedders():
    pipeline = Pipeline()
    embedder = pipeline.embedder
    del pipeline
    gc.collect()
    assert embedder.closed


def test_get_pipeline_closes_the_pipeline_it_replaced_once_nothing_holds_it(tmp_path, monkeypatch, obama):
    sface_file = model_path("sface")
    monkeypatch.setenv("FACESIFT_CACHE_DIR", str(tmp_path))  # a private trained-models folder
    old = get_pipeline(detector="haar")  # a key no other test holds
    card = ModelCard(name="sface-copy", dims=128, licence="test", source="test", input_spec="112 aligned",
                     thresholds={"0.001": 0.38}, compatible_with="sface", eye_distance_below=1.0)
    install_trained(sface_file, card)  # the installed cross-resolution models changed: get_pipeline() replaces
    new = get_pipeline(detector="haar")
    assert new is not old and new.routed_models[0][0] == "sface-copy"
    assert not old.closed and old.represent(obama)  # a caller still holding it (a request in flight) can use it
    replaced = old.embedder
    del old
    gc.collect()
    assert replaced.closed and not new.closed and not new.embedder.closed


def test_the_crop_hook_transforms_the_aligned_crop_before_it_is_embedded(obama, pipeline):
    degradation = CropDegradation("resolution", 14)
    (plain,) = pipeline.represent(obama, policy="largest")
    (degraded,) = pipeline.represent_batch([obama], policy="largest", crop_transform=degradation)[0].faces
    crop = degradation(pipeline.embedder.align(load_image(obama), plain.face))
    assert degraded.face == plain.face
    routed = {model.name: model for model in pipeline.low_resolution_embedders}  # a 14 px crop goes to the shipped ones
    embedder = routed[degraded.embedded_by] if degraded.embedded_by else pipeline.embedder
    assert np.array_equal(degraded.embedding, embedder.embed(crop)[0])
    assert float(plain.embedding @ degraded.embedding) < 0.99  # the hook did something
    assert degraded.quality != plain.quality  # quality is judged on the crop that is embedded
    (same,) = pipeline.represent(obama, policy="largest", crop_transform=lambda c: c)
    assert np.array_equal(same.embedding, plain.embedding)


def test_single_models_and_the_fusion_meet_the_embedder_contract(obama, pipeline):
    pixels = load_image(obama)
    face = pipeline.detector.detect(pixels)[0]
    with create_embedder("accurate", flip=True) as fused:
        assert isinstance(fused, Embedder) and not isinstance(fused, ModelEmbedder)
        assert isinstance(pipeline.embedder, Embedder) and isinstance(pipeline.embedder, ModelEmbedder)
        assert [m.flip for m in fused.members] == [True, True]  # by default SFace is not mirrored, dlib is
        strip = fused.align(pixels, face)
        parts = fused.parts(strip)
        with create_embedder("sface", flip=True) as sface, create_embedder("dlib", flip=True) as dlib:
            expected = np.concatenate([s * m.embed(p) for s, m, p in zip(fused.scales, (sface, dlib), parts, strict=True)], axis=1)
            assert not np.allclose(sface.embed(parts[0]), pipeline.embedder.embed(parts[0]))  # mirroring did something
        assert np.abs(fused.embed(strip) - expected).max() < 1e-6
        members = fused.members
    assert fused.closed and all(m.closed for m in members)
    with pytest.raises(RuntimeError, match="after shutdown"):
        fused._pool.submit(int)  # its thread pool is shut down
    with pytest.raises(ClosedError):
        fused.embed(strip)
    with pytest.raises(InvalidArgumentError, match="no member facenet"):
        create_embedder("accurate", member_options={"facenet": {}})

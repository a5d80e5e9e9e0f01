"""SFace in PyTorch against onnxruntime on real aligned faces; export, registration by name, and the
pipeline's automatic use of a cross-resolution model for small faces."""

from __future__ import annotations

import copy

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the train extra is not installed: pip install 'facesift[train]'")

from facesift.evaluation.embeddings import embed_images  # noqa: E402
from facesift.image import load_image  # noqa: E402
from facesift.pipeline import Pipeline, get_pipeline  # noqa: E402
from facesift.recognition import available_embedders, create_embedder, trained  # noqa: E402
from facesift.recognition.base import ModelCard  # noqa: E402
from facesift.recognition.trained import install_trained  # noqa: E402
from facesift.training.sface import export_onnx, sface_from_onnx  # noqa: E402
from facesift.training.trainer import embed  # noqa: E402

#: fp32 both sides, same graph: per-component differences stay around 1e-6 on outputs of magnitude ~1
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def crops(faces, pipeline):
    from facesift.image import load_image

    paths = [faces / "wild/barack_obama/obama.jpg", faces / "wild/joe_biden/biden.jpg"]
    paths += sorted((faces / "johns" / "John_Simm").iterdir())[:2]
    out = []
    for path in paths:
        image = load_image(path)
        face = max(pipeline.detector.detect(image), key=lambda f: f.area)
        out.append(pipeline.embedder.align(image, face))
    return np.stack(out)


@pytest.fixture(scope="module")
def network():
    return sface_from_onnx()


def raw_onnxruntime(pipeline, crops):
    return pipeline.embedder._forward(crops)


def test_pytorch_sface_matches_onnxruntime(network, pipeline, crops):
    with torch.no_grad():
        ours = network(torch.from_numpy(crops.transpose(0, 3, 1, 2).astype(np.float32))).numpy()
    reference = raw_onnxruntime(pipeline, crops)
    assert np.abs(ours - reference).max() < TOLERANCE
    assert np.allclose(embed(network, crops), pipeline.embedder.embed(crops), atol=TOLERANCE)


@pytest.fixture
def trained_home(tmp_path, monkeypatch):
    """A private facesift cache, so a model registered here is seen by nothing else, and a package that ships no
    trained model (the shipped ones are tested in test_shipped_models.py): only what these tests train counts."""
    monkeypatch.setenv("FACESIFT_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(trained, "SHIPPED", {})
    return tmp_path


def card(name: str, **fields) -> ModelCard:
    return ModelCard(name=name, dims=128, licence="test", source="test", input_spec="112 aligned", thresholds={"0.001": 0.38}, **fields)


def test_exported_model_registers_as_an_embedder(network, pipeline, crops, trained_home, tmp_path):
    exported = export_onnx(network, tmp_path / "exported.onnx")
    assert "mine" not in available_embedders()
    install_trained(exported, card("mine"))
    assert "mine" in available_embedders()
    mine = create_embedder("mine")
    assert mine.card.thresholds == {"0.001": 0.38}
    assert np.abs(mine.embed(crops) - pipeline.embedder.embed(crops)).max() < TOLERANCE
    assert sface_from_onnx(exported) is not None  # an exported file reads back for further training


def test_pipeline_uses_the_cross_resolution_model_for_small_faces(network, trained_home, tmp_path, faces):
    install_trained(export_onnx(network, tmp_path / "lowres.onnx"), card("sface-lowres", compatible_with="sface", eye_distance_below=30.0))
    small = faces / "wild/barack_obama/obama-240p.jpg"
    large = faces / "wild/barack_obama/obama.jpg"
    auto = Pipeline()
    try:
        assert [m.name for m in auto.low_resolution_embedders] == ["sface-lowres"]
        by_size = {}
        for item in auto.represent_batch([small, large]):
            face = item.faces[0]
            by_size[face.face.eye_distance < 30.0] = face.embedded_by
        assert by_size == {True: "sface-lowres", False: None}
        (single,) = auto.represent(small, policy="largest")
        assert single.embedded_by == "sface-lowres" and single.model == "sface"
        image = load_image(large)
        height, width = image.shape[:2]
        blurred = cv2.resize(
            cv2.resize(image, (width // 8, height // 8), interpolation=cv2.INTER_AREA), (width, height), interpolation=cv2.INTER_CUBIC
        )
        (upscaled,) = auto.represent(blurred, policy="largest")
        assert upscaled.face.eye_distance > 30.0 and upscaled.embedded_by == "sface-lowres"  # large but blurred
    finally:
        auto.close()
    off = Pipeline(low_resolution=False)
    try:
        assert off.low_resolution_embedders == ()
        # the evaluation cache keeps routed embeddings apart from plain SFace ones, and names which is which
        assert embed_images([small], cache_dir=tmp_path / "evaluation").model == "sface+sface-lowres"
        assert embed_images([small], cache_dir=tmp_path / "evaluation").computed == 0
        retrained = copy.deepcopy(network)
        with torch.no_grad():
            next(retrained.parameters()).add_(0.01)
        install_trained(
            export_onnx(retrained, tmp_path / "retrained.onnx"), card("sface-lowres", compatible_with="sface", eye_distance_below=30.0)
        )
        fresh = Pipeline()
        try:
            again = embed_images([small], cache_dir=tmp_path / "evaluation", pipeline=fresh)
        finally:
            fresh.close()
        assert (again.model, again.computed) == ("sface+sface-lowres", 1)  # a retrained model's vectors, not the old run's
        install_trained(tmp_path / "retrained.onnx", card("sface-lowres", compatible_with="sface", eye_distance_below=40.0))
        assert embed_images([small], cache_dir=tmp_path / "evaluation").computed == 1  # new limit, other faces routed
        plain_run = embed_images([small], cache_dir=tmp_path / "evaluation", pipeline=off)
        assert (plain_run.model, plain_run.computed) == ("sface", 1)
        (plain,) = off.represent(small, policy="largest")
        assert plain.embedded_by is None
        assert float(plain.embedding @ single.embedding) > 0.9999  # this test's "low-res model" is SFace itself
    finally:
        off.close()


def test_the_smallest_faces_go_to_the_specialist_with_the_smallest_limit(network, trained_home, tmp_path, faces):
    exported = export_onnx(network, tmp_path / "lowres.onnx")
    install_trained(exported, card("sface-lowres", compatible_with="sface", eye_distance_below=30.0))
    install_trained(exported, card("sface-tiny", compatible_with="sface", eye_distance_below=20.0))
    large = load_image(faces / "wild/barack_obama/obama.jpg")  # eyes 115 px apart
    tiny = cv2.resize(large, None, fx=1 / 8, fy=1 / 8, interpolation=cv2.INTER_AREA)  # about 14 px
    middle = faces / "wild/barack_obama/obama-240p.jpg"  # 27 px
    auto = Pipeline()
    try:
        assert [m.name for m in auto.low_resolution_embedders] == ["sface-tiny", "sface-lowres"]
        by = [item.faces[0].embedded_by for item in auto.represent_batch([tiny, middle, large])]
        assert by == ["sface-tiny", "sface-lowres", None]
        assert embed_images([middle], cache_dir=tmp_path / "evaluation", pipeline=auto).model == "sface+sface-tiny+sface-lowres"
    finally:
        auto.close()


def test_the_shared_pipeline_follows_the_installed_models(network, trained_home, tmp_path, faces):
    shared = get_pipeline()
    assert shared.low_resolution_embedders == () and get_pipeline() is shared
    exported = export_onnx(network, tmp_path / "lowres.onnx")
    install_trained(exported, card("sface-lowres", compatible_with="sface", eye_distance_below=30.0))
    trained = get_pipeline()  # a process that trains, then embeds, embeds with what it trained
    assert trained is not shared and [m.name for m in trained.low_resolution_embedders] == ["sface-lowres"]
    assert get_pipeline() is trained and get_pipeline(low_resolution=False).low_resolution_embedders == ()
    install_trained(exported, card("sface-lowres", compatible_with="sface", eye_distance_below=3.0))
    small = faces / "wild/barack_obama/obama-240p.jpg"  # eyes 27 px apart: routed under 30, not under 3
    (face,) = get_pipeline().represent(small, policy="largest")
    assert face.embedded_by is None and get_pipeline().low_resolution_embedders[0].card.eye_distance_below == 3.0


def test_a_card_can_ask_for_flip_test_time_augmentation(network, trained_home, tmp_path, crops):
    exported = export_onnx(network, tmp_path / "tiny.onnx")
    install_trained(exported, card("plain"))
    install_trained(exported, card("mirrored", flip=True))
    plain, mirrored = create_embedder("plain"), create_embedder("mirrored")
    assert (plain.flip, mirrored.flip, create_embedder("mirrored", flip=False).flip) == (False, True, False)
    both = plain.embed(crops) + plain.embed(crops[:, :, ::-1])
    expected = both / np.linalg.norm(both, axis=1, keepdims=True)
    assert np.abs(mirrored.embed(crops) - expected).max() < 1e-5

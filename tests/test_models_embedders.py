"""dlib, FaceNet and the fusion presets on real photos, and ``--model accurate`` wherever a model is named."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import facesift
from facesift.cli import app
from facesift.recognition import available_embedders, create_embedder, load_card


@pytest.mark.parametrize("name", ["dlib", "facenet", "accurate"])
def test_same_person_scores_above_and_others_below_the_calibrated_threshold(name, faces, obama, biden):
    pipeline = facesift.get_pipeline(embedder=name)
    card = load_card(name)
    a = pipeline.one_face(obama).embedding
    same = pipeline.one_face(faces / "wild" / "barack_obama" / "obama-480p.jpg").embedding
    other = pipeline.one_face(biden).embedding
    assert a.shape == (card.dims,) and abs(np.linalg.norm(a) - 1) < 1e-5
    threshold = card.threshold_for(1e-3)
    assert float(a @ same) > threshold > float(a @ other)


def test_fusion_is_the_weighted_concatenation_of_its_members(obama, biden):
    fused = facesift.get_pipeline(embedder="accurate")
    for path in (obama, biden):
        vector = fused.one_face(path).embedding
        parts, offset = [], 0
        for member, scale in zip(fused.embedder.members, fused.embedder.scales, strict=True):
            alone = facesift.get_pipeline(embedder=member.name).one_face(path).embedding
            np.testing.assert_allclose(vector[offset : offset + member.dims], scale * alone, atol=1e-5)
            parts.append(alone)
            offset += member.dims
    assert abs(sum(s * s for s in fused.embedder.scales) - 1) < 1e-6  # unit vectors: cosine = weighted sum


def test_fast_preset_is_sface(obama):
    fast = facesift.get_pipeline(embedder="fast").one_face(obama)
    sface = facesift.get_pipeline(embedder="sface").one_face(obama)
    assert fast.model == "sface"
    np.testing.assert_allclose(fast.embedding, sface.embedding, atol=1e-6)


def test_presets_are_registered_and_every_card_is_calibrated():
    assert {"fast", "accurate", "dlib", "facenet"} <= set(available_embedders())
    for name in ("sface", "dlib", "facenet", "accurate"):
        assert sorted(float(k) for k in load_card(name).thresholds) == [1e-4, 1e-3, 1e-2, 1e-1]


def test_bad_fusion_weights_are_refused():
    from facesift.recognition.fusion import FusionEmbedder

    with pytest.raises(ValueError, match="positive"):
        FusionEmbedder({"sface": 0.0}, load_card("sface"))


def test_verify_and_cli_take_accurate(obama, faces):
    result = facesift.verify(obama, faces / "wild" / "barack_obama" / "obama-480p.jpg", model="accurate")
    assert result.verified and result.model == "accurate"
    run = CliRunner().invoke(app, ["verify", str(obama), str(faces / "wild" / "joe_biden" / "biden.jpg"),
                                   "--model", "accurate", "--json"])
    assert run.exit_code == 0, run.output
    assert json.loads(run.output)["verified"] is False


def test_dlib_chip_is_dlibs_own(obama):
    embedder = create_embedder("dlib")
    image = facesift.image.load_image(obama)
    face = facesift.get_pipeline().detector.detect(image)[0]
    chip = embedder.align(image, face)
    assert chip.shape == (150, 150, 3) and chip.dtype == np.uint8

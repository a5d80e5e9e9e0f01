"""``facesift train crossres`` end to end on a few real faces: trains, exports, registers, and the pipeline uses it."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="the train extra is not installed: pip install 'facesift[train]'")

from typer.testing import CliRunner  # noqa: E402

from facesift.cli import app  # noqa: E402
from facesift.pipeline import Pipeline  # noqa: E402
from facesift.recognition import available_embedders, load_card  # noqa: E402


def test_train_crossres_registers_a_model_the_pipeline_uses(faces, tmp_path, monkeypatch):
    monkeypatch.setenv("FACESIFT_CACHE_DIR", str(tmp_path / "cache"))
    args = [
        "train", "crossres", "--faces", str(faces), "--data", str(faces / "johns"), "--per-identity", "3",
        "--epochs", "1", "--steps-per-epoch", "2", "--batch-people", "2", "--batch-images", "2",
        "--eval-pairs", "0", "--threads", "2", "--output", str(tmp_path / "run"), "--cache", str(tmp_path / "crops"),
        "--name", "tiny-lowres", "--below", "30",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "registered as 'tiny-lowres'" in result.output
    assert "tiny-lowres" in available_embedders()
    card = load_card("tiny-lowres")
    assert card.compatible_with == "sface" and card.eye_distance_below == 30.0 and card.thresholds
    pipeline = Pipeline()
    try:
        (small,) = pipeline.represent(faces / "wild/barack_obama/obama-240p.jpg", policy="largest")
        assert small.embedded_by == "tiny-lowres" and small.embedding.shape == (128,)
    finally:
        pipeline.close()


def test_train_says_when_there_are_too_few_people(faces, tmp_path, monkeypatch):
    monkeypatch.setenv("FACESIFT_CACHE_DIR", str(tmp_path / "cache"))
    args = ["train", "crossres", "--faces", str(faces), "--data", str(faces / "johns"), "--per-identity", "2",
            "--eval-pairs", "0", "--output", str(tmp_path / "run"), "--cache", str(tmp_path / "crops")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "cannot fill batches of 16" in result.output


def test_train_refuses_an_unknown_loss_and_impossible_sizes(faces, tmp_path, monkeypatch):
    monkeypatch.setenv("FACESIFT_CACHE_DIR", str(tmp_path / "cache"))
    args = ["train", "crossres", "--faces", str(faces), "--data", str(faces / "johns"), "--per-identity", "2",
            "--loss", "nope", "--eval-pairs", "0", "--output", str(tmp_path / "run"), "--cache", str(tmp_path / "crops")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "arcface" in result.output
    sizes = CliRunner().invoke(app, args[:-8] + ["--min-size", "30", "--max-size", "20", "--output", str(tmp_path / "run")])
    assert sizes.exit_code == 2 and "--max-size" in sizes.output and not (tmp_path / "run").exists()


def test_train_superres_registers_the_facesr_restorer(faces, tmp_path, monkeypatch):
    from facesift.restoration import create_restorer

    monkeypatch.setenv("FACESIFT_CACHE_DIR", str(tmp_path / "cache"))
    args = [
        "train", "superres", "--faces", str(faces), "--data", str(faces / "johns"), "--per-identity", "3",
        "--epochs", "1", "--steps-per-epoch", "1", "--batch-people", "2", "--batch-images", "2",
        "--eval-pairs", "0", "--threads", "2", "--output", str(tmp_path / "run"), "--cache", str(tmp_path / "crops"),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "registered as 'facesr'" in result.output
    restored = create_restorer("facesr").restore(__import__("numpy").zeros((24, 24, 3), dtype="uint8"))
    assert restored.shape == (112, 112, 3)

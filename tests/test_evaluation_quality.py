"""``facesift evaluate quality``: error-versus-discard curves and limit risks on real photos, some of them blurred."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from facesift.cli import app
from facesift.evaluation import load_identity_folders
from facesift.evaluation.quality import edc, evaluate_quality
from facesift.image import load_image
from facesift.quality import QualityPolicy, assess, judge, measure

runner = CliRunner()


def test_edc_discards_the_lowest_quality_comparisons_first():
    quality = np.array([0.1, 0.9, 0.2, 0.8, 0.7])
    failed = np.array([True, False, True, False, False])
    assert np.allclose(edc(quality, failed, [0.0, 0.2, 0.4]), [2 / 5, 1 / 4, 0.0])
    assert np.allclose(edc(-quality, failed, [0.0, 0.4]), [2 / 5, 2 / 3])  # the wrong way round makes it worse


def test_measure_once_and_judge_against_any_limits(obama, pipeline):
    image = load_image(obama)
    face = pipeline.detect(image)[0].face
    crop = pipeline.embedder.quality_crop(pipeline.embedder.align(image, face))
    measured = measure(face, crop)
    assert judge(measured) == assess(face, crop)
    strict = judge(measured, QualityPolicy(min_sharpness=measured.sharpness + 1))
    assert not strict.acceptable and any(r.startswith("blurred") for r in strict.reasons)


@pytest.fixture(scope="module")
def half_blurred(faces, tmp_path_factory):
    """The johns photos (five men, 11 each), two of each nine blurred hard: faces that cannot be matched."""
    root = tmp_path_factory.mktemp("johns-blurred")
    for person in sorted((faces / "johns").iterdir()):
        (root / person.name).mkdir()
        for number, photo in enumerate(sorted(person.iterdir())[:9]):
            image = cv2.imread(str(photo))
            if number % 3 == 2 and number < 6:
                image = cv2.GaussianBlur(image, (0, 0), 6)
            cv2.imwrite(str(root / person.name / f"{number:02d}.png"), image)
    return root


def test_sharpness_predicts_the_errors_of_blurred_faces(half_blurred, tmp_path, monkeypatch):
    monkeypatch.setenv("FACESIFT_LOW_RESOLUTION", "0")  # SFace's own errors: the shipped cross-resolution models rescue blur
    limits = QualityPolicy(min_sharpness=20.0)  # the blurred copies measure 5-14, the photos as taken more
    report = evaluate_quality([load_identity_folders(half_blurred)], cache_dir=tmp_path / "cache", quality_policy=limits)
    assert report.failed_images <= 3 and report.genuine_pairs >= 5 * 28  # 9 photos each: 36 same-person pairs
    curves = {c.factor: c for c in report.curves}
    sharp = curves["sharpness"]
    assert report.fnmr > 0.05, "the blurred faces should fail some comparisons"
    assert sharp.fnmr[-1] < report.fnmr and sharp.area < curves["brightness"].area
    limit = {r.limit: r for r in report.limits}["min_sharpness"]
    assert 5 <= limit.refused_images <= 12 and limit.fnmr_with_refused > 2 * limit.fnmr_without


def test_cli_quality_writes_curves_and_the_risk_of_each_limit(half_blurred, tmp_path):
    out = tmp_path / "report"
    result = runner.invoke(app, ["evaluate", "quality", "--data", str(half_blurred), "--out", str(out),
                                 "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    assert "same-person comparisons" in result.stdout and "min_sharpness" in (out / "report.md").read_text()
    assert (out / "edc.png").stat().st_size > 5000 and (out / "risk.png").stat().st_size > 5000
    record = json.loads((out / "results.json").read_text())
    assert record["command"].startswith("facesift evaluate quality --data")
    assert {c["factor"] for c in record["results"][0]["curves"]} >= {"quality score", "yaw", "sharpness", "detector score"}
    assert "![EDC](edc.png)" in (out / "report.md").read_text()
    bad = runner.invoke(app, ["evaluate", "quality", "--data", str(half_blurred), "--data", str(half_blurred),
                              "--pairs", str(tmp_path / "none.txt")])
    assert bad.exit_code != 0 and "one --data" in bad.output

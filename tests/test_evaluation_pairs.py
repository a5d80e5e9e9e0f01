"""The pairs protocol on the full celeba300 set, behind ``-m slow``: the number the README quotes."""

from __future__ import annotations

import pytest

from facesift.evaluation import evaluate_pairs

pytestmark = pytest.mark.slow


def test_celeba300_ten_fold(faces):
    report = evaluate_pairs(faces / "celeba300", faces / "celeba300-pairs.txt")
    assert report.pairs == 6000 and len(report.fold_accuracies) == 10
    assert report.accuracy == pytest.approx(0.9463, abs=0.005)  # the stopgap benchmark measured 94.63 ± 0.85 %
    assert report.tar(1e-3) is not None and report.tar(1e-4) is None  # 3,000 impostor pairs


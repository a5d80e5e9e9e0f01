"""Calibration on the full celeba300 set, behind ``-m slow``: it reproduces the shipped model card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facesift.evaluation import calibrate, load_identity_folders

pytestmark = pytest.mark.slow
PACKAGED_CARD = Path(__file__).resolve().parents[1] / "facesift" / "recognition" / "cards" / "sface.json"


def test_calibration_reproduces_the_shipped_card(faces):
    result = calibrate(load_identity_folders(faces / "celeba300"))
    assert result.impostor_pairs == 19_516_700 and result.images_with_face == 6260
    shipped = json.loads(PACKAGED_CARD.read_text())["thresholds"]
    assert result.thresholds == pytest.approx(shipped, abs=2e-4)

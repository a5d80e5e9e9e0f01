"""The detail a face carries: real aligned crops shrunk to N px and brought back measure as N."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facesift.image import load_image
from facesift.resolution import TEMPLATE_EYE_DISTANCE, detail_size, effective_eye_distance


@pytest.fixture(scope="module")
def aligned(faces, pipeline):
    paths = sorted((faces / "celeba300" / "07216").iterdir())[:2] + [
        faces / "wild/barack_obama/obama.jpg",
        faces / "wild/joe_biden/biden.jpg",
    ]
    out = []
    for path in paths:
        image = load_image(path)
        face = max(pipeline.detector.detect(image), key=lambda f: f.area)
        out.append((face, pipeline.embedder.align(image, face)))
    return out


def shrunk(crop: np.ndarray, size: int) -> np.ndarray:
    small = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (112, 112), interpolation=cv2.INTER_CUBIC)


@pytest.mark.parametrize("size", [7, 14, 28, 56])
def test_a_shrunk_face_measures_its_size(aligned, size):
    assert [detail_size(shrunk(crop, size)) for _, crop in aligned] == [size] * len(aligned)


def test_a_sharp_face_measures_full(aligned):
    assert [detail_size(crop) for _, crop in aligned] == [112] * len(aligned)


def test_effective_eye_distance_is_the_smaller_of_geometry_and_detail(aligned):
    face, crop = aligned[2]
    assert effective_eye_distance(face, crop) == pytest.approx(min(face.eye_distance, TEMPLATE_EYE_DISTANCE))
    assert effective_eye_distance(face, shrunk(crop, 14)) == pytest.approx(14 * TEMPLATE_EYE_DISTANCE / 112)

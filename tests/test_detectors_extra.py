"""MTCNN, BlazeFace (short and full range), dlib HOG and Haar on the real photos, against YuNet's boxes."""

from __future__ import annotations

import numpy as np
import pytest

from facesift.detection import available_detectors, create_detector
from facesift.image import load_image

#: detector -> faces it must find in obama_and_biden.jpg (three people; one small, far back)
GROUP_MINIMUM = {"mtcnn": 3, "blazeface-full": 2, "blazeface-short": 1, "dlib-hog": 2, "haar": 2}
BACKENDS = sorted(GROUP_MINIMUM)


@pytest.fixture(scope="module", params=BACKENDS)
def detector(request):
    return create_detector(request.param)


@pytest.fixture(scope="module")
def yunet():
    return create_detector("yunet")


def iou(a, b) -> float:
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_backends_are_registered():
    assert set(BACKENDS) <= set(available_detectors())


@pytest.mark.parametrize("photo", ["barack_obama/obama.jpg", "joe_biden/biden.jpg", "_multi_face/two_people.jpg"])
def test_faces_match_yunet_and_landmarks_are_ordered(detector, yunet, faces, photo):
    image = load_image(faces / "wild" / photo)
    found, reference = detector.detect(image), yunet.detect(image)
    assert len(found) >= len(reference)
    for face in reference:  # every face YuNet finds is found here too, in about the same place
        assert max(iou(face.box, other.box) for other in found) > 0.4
    for face in found:
        assert face.detector == detector.name and 0.0 <= face.score <= 1.0
        (rx, ry), (lx, ly), nose, (mrx, mry), (mlx, mly) = face.landmarks
        assert rx < lx and mrx < mlx and max(ry, ly) < nose[1] < min(mry, mly)


def test_group_photo(detector, faces):
    found = detector.detect(load_image(faces / "wild" / "_multi_face" / "obama_and_biden.jpg"))
    assert len(found) >= GROUP_MINIMUM[detector.name]


def test_no_face_in_a_blank_image(detector):
    assert detector.detect(np.full((300, 400, 3), 128, np.uint8)) == []


def test_bad_options_are_refused():
    with pytest.raises(ValueError):
        create_detector("mtcnn", score_threshold=1.5)

"""Detectors on real photos: group photos, no-face photos, greyscale, and a resolution ladder (YuNet, RetinaFace);
MTCNN, BlazeFace (short and full range), dlib HOG and Haar against YuNet's boxes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import facesift
from facesift.detection import available_detectors, create_detector
from facesift.image import load_image

BACKENDS = ["yunet", "retinaface"]
#: the other backends -> faces each must find in obama_and_biden.jpg (three people; one small, far back)
GROUP_MINIMUM = {"mtcnn": 3, "blazeface-full": 2, "blazeface-short": 1, "dlib-hog": 2, "haar": 2}


@pytest.fixture(scope="module", params=BACKENDS)
def detector(request):
    return create_detector(request.param)


def iou(a, b) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_backends_are_registered():
    assert {*BACKENDS, *GROUP_MINIMUM} <= set(available_detectors())


@pytest.mark.parametrize("name, expected", [("obama_and_biden.jpg", 2), ("two_people.jpg", 2)])
def test_group_photos(detector, faces, name, expected):
    found = detector.detect(load_image(faces / "wild" / "_multi_face" / name))
    assert len(found) >= expected
    for face in found:
        (rx, ry), (lx, ly), nose, (mrx, mry), (mlx, mly) = face.landmarks
        assert rx < lx and max(ry, ly) < nose[1] < min(mry, mly)  # eyes, then nose, then mouth
        x1, y1, x2, y2 = face.box
        assert x1 <= nose[0] <= x2 and y1 <= nose[1] <= y2


def test_backends_agree_on_boxes(faces):
    image = load_image(faces / "wild" / "_multi_face" / "obama_and_biden.jpg")
    yunet, retina = (create_detector(name).detect(image) for name in BACKENDS)
    assert len(yunet) >= 2 and retina  # two people: an empty answer agrees with nothing
    for face in yunet:
        assert max(iou(face.box, other.box) for other in retina) > 0.6


def test_photos_without_faces(detector, obama):
    rng = np.random.default_rng(0)
    assert detector.detect(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)) == []
    assert detector.detect(np.full((300, 300, 3), 128, np.uint8)) == []
    background = load_image(obama)[:, :150]  # the curtain beside the face: a real photo, no face
    assert detector.detect(background) == []


def test_resolution_ladder_finds_the_same_face(detector, faces):
    folder = faces / "wild" / "barack_obama"
    for name in ("obama-1080p.jpg", "obama-720p.jpg", "obama-480p.jpg", "obama-240p.jpg"):
        image = load_image(folder / name)
        found = detector.detect(image)
        assert len(found) == 1, name
        relative = np.array(found[0].center) / [image.shape[1], image.shape[0]]
        assert np.allclose(relative, [0.52, 0.25], atol=0.08), (name, relative)


def test_policy_options(faces, pipeline):
    group = faces / "wild" / "_multi_face" / "obama_and_biden.jpg"
    everyone = pipeline.detect(group, policy="all")
    largest = pipeline.detect(group, policy="largest")
    central = pipeline.detect(group, policy="central")
    assert len(everyone) >= 2 and len(largest) == len(central) == 1
    assert largest[0].face.area == max(item.face.area for item in everyone)
    with pytest.raises(ValueError, match="face policy"):
        pipeline.detect(group, policy="smallest")


def test_min_face_size_and_score_options(faces):
    image = load_image(faces / "wild" / "_multi_face" / "obama_and_biden.jpg")
    everything = create_detector("yunet").detect(image)
    big_only = create_detector("yunet", min_face_size=10_000).detect(image)
    assert everything and big_only == []
    strict = create_detector("yunet", score_threshold=0.99).detect(image)
    assert len(strict) < len(everything)
    with pytest.raises(ValueError):
        create_detector("yunet", score_threshold=2.0)


def test_large_photos_are_resized_and_mapped_back(obama):
    image = load_image(obama)
    large = cv2.resize(image, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)
    small_face = create_detector("yunet").detect(image)[0]
    large_face = create_detector("yunet", max_side=640).detect(large)[0]
    assert np.allclose(np.array(large_face.box) / 4, small_face.box, atol=6)


def test_public_detect_returns_quality(obama):
    found = facesift.detect(obama)
    assert len(found) == 1 and found[0].quality.acceptable and found[0].face.detector == "yunet"
    assert found[0].to_dict()["face"]["box"] == list(found[0].face.box)


@pytest.fixture(scope="module", params=sorted(GROUP_MINIMUM))
def other_detector(request):
    return create_detector(request.param)


@pytest.fixture(scope="module")
def yunet():
    return create_detector("yunet")


@pytest.mark.parametrize("photo", ["barack_obama/obama.jpg", "joe_biden/biden.jpg", "_multi_face/two_people.jpg"])
def test_other_backends_match_yunet_and_order_landmarks(other_detector, yunet, faces, photo):
    image = load_image(faces / "wild" / photo)
    found, reference = other_detector.detect(image), yunet.detect(image)
    assert reference and len(found) >= len(reference)
    for face in reference:  # every face YuNet finds is found here too, in about the same place
        assert max(iou(face.box, other.box) for other in found) > 0.4
    for face in found:
        assert face.detector == other_detector.name and 0.0 <= face.score <= 1.0
        (rx, ry), (lx, ly), nose, (mrx, mry), (mlx, mly) = face.landmarks
        assert rx < lx and mrx < mlx and max(ry, ly) < nose[1] < min(mry, mly)


def test_other_backends_group_photo(other_detector, faces):
    found = other_detector.detect(load_image(faces / "wild" / "_multi_face" / "obama_and_biden.jpg"))
    assert len(found) >= GROUP_MINIMUM[other_detector.name]


def test_other_backends_see_no_face_in_a_blank_image(other_detector):
    assert other_detector.detect(np.full((300, 400, 3), 128, np.uint8)) == []


def test_other_backends_refuse_bad_options():
    with pytest.raises(ValueError):
        create_detector("mtcnn", score_threshold=1.5)

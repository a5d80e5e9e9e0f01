"""Alignment puts landmarks on the template; quality drops, with reasons, for poor faces."""

from __future__ import annotations

import cv2
import numpy as np

from facesift.alignment import ARCFACE_TEMPLATE_112, align_face, similarity_transform, template_for
from facesift.image import load_image
from facesift.quality import assess, head_pose


def test_similarity_transform_recovers_a_known_transform():
    angle, scale, shift = np.radians(17), 1.7, np.array([12.0, -5.0])
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    source = np.random.default_rng(1).uniform(0, 100, (5, 2))
    target = source @ rotation.T + shift
    matrix = similarity_transform(source, target)
    assert np.allclose(matrix[:, :2], rotation) and np.allclose(matrix[:, 2], shift)


def test_aligned_landmarks_land_on_the_template(obama, pipeline):
    image = load_image(obama)
    face = pipeline.detect(image)[0].face
    matrix = similarity_transform(face.landmarks_array(), ARCFACE_TEMPLATE_112)
    moved = face.landmarks_array() @ matrix[:, :2].T + matrix[:, 2]
    assert np.abs(moved - ARCFACE_TEMPLATE_112).max() < 6
    crop = align_face(image, face.landmarks_array(), 112)
    assert crop.shape == (112, 112, 3)
    assert template_for(224).max() == ARCFACE_TEMPLATE_112.max() * 2


def test_frontal_pose_is_near_zero_and_turns_are_seen():
    frontal = ARCFACE_TEMPLATE_112
    yaw, pitch, roll = head_pose(frontal)
    assert abs(yaw) < 5 and abs(pitch) < 15 and abs(roll) < 1
    turned = frontal.copy()
    turned[2, 0] += 20  # nose far to one side
    assert abs(head_pose(turned)[0]) > 30


def test_quality_falls_with_blur_size_and_darkness(obama, pipeline):
    image = load_image(obama)
    good = pipeline.detect(image)[0]
    assert good.quality.acceptable and good.quality.score > 0.7

    blurred = pipeline.detect(cv2.GaussianBlur(image, (0, 0), 8))[0]
    assert blurred.quality.sharpness < good.quality.sharpness / 10
    assert any("blurred" in reason for reason in blurred.quality.reasons)

    dark = pipeline.detect((image * 0.12).astype(np.uint8))
    if dark:  # the detector may give up first, which is also a refusal
        assert any("dark" in reason for reason in dark[0].quality.reasons)

    tiny = cv2.resize(image, None, fx=0.08, fy=0.08, interpolation=cv2.INTER_AREA)
    small = pipeline.detect(tiny)
    if small:
        assert any("too small" in reason for reason in small[0].quality.reasons)
        assert small[0].quality.score < good.quality.score


def test_quality_of_a_rotated_face_reports_roll(obama, pipeline):
    image = load_image(obama)
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 3), 50, 1.0)
    rotated = cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)
    found = pipeline.detect(rotated)
    assert found, "YuNet should still find a face turned 50 degrees"
    quality = assess(found[0].face, pipeline.embedder.align(rotated, found[0].face))
    assert quality.roll < -25 and any("tilted" in reason for reason in quality.reasons)

"""1:1 verification on real pairs at the calibrated default threshold."""

from __future__ import annotations

import csv
import itertools
import json
import threading
from pathlib import Path

import numpy as np
import pytest

import facesift
from facesift.recognition import load_card
from facesift.results import VerificationDecision
from facesift.verification import cosine_similarity


def embeddings_by_file(pipeline, files: list[Path]) -> dict[Path, np.ndarray]:
    results = pipeline.represent_batch(files)
    missing = [r.source for r in results if not r.faces]
    assert not missing, f"no face found in {missing}"
    return {path: result.faces[0].embedding for path, result in zip(files, results, strict=True)}


def test_deepface_pairs_at_the_default_threshold(faces, pipeline):
    """Issue 2 asks for >= 97 %; the default (FMR 1e-3 on celeba300) gives 519/520 here."""
    root = faces / "deepface"
    rows = list(csv.DictReader(open(faces / "deepface-pairs.csv")))
    files = sorted({root / r["img_a"] for r in rows} | {root / r["img_b"] for r in rows})
    vectors = embeddings_by_file(pipeline, files)
    threshold = load_card("sface").threshold_for()
    correct = sum(
        (cosine_similarity(vectors[root / r["img_a"]], vectors[root / r["img_b"]]) >= threshold) == (r["same"] == "1")
        for r in rows
    )
    assert correct / len(rows) >= 0.97, f"{correct}/{len(rows)}"


def test_five_men_named_john(faces, pipeline):
    """A hard different-person set: five men named John, 11 chips each.

    Measured: rank-1 identification 55/55; at the default threshold (FMR 1e-3 on celeba300) every
    same-John pair matches and 2.6 % of different-John pairs do; at FMR 1e-4 none do.
    """
    people = sorted(p for p in (faces / "johns").iterdir() if p.is_dir())
    files = [f for person in people for f in sorted(person.iterdir())]
    vectors = embeddings_by_file(pipeline, files)
    matrix = np.array([vectors[f] for f in files])
    scores = matrix @ matrix.T
    np.fill_diagonal(scores, -2)
    nearest = [files[i].parent for i in scores.argmax(axis=1)]
    assert nearest == [f.parent for f in files]
    card = load_card("sface")
    # FMR 1e-4 reads the card's tail model (0.4376; it was 0.4602 before issue 12, inflated by CelebA's label noise):
    # these five look-alike Johns are the hardest impostors here, 3 of their 1,210 pairs pass it
    for fmr, most_false in ((1e-3, 0.05), (1e-4, 0.005)):
        threshold = card.threshold_for(fmr)
        genuine, impostor = [], []
        for a, b in itertools.combinations(files, 2):
            matched = cosine_similarity(vectors[a], vectors[b]) >= threshold
            (genuine if a.parent == b.parent else impostor).append(matched)
        assert np.mean(impostor) <= most_false, f"false matches {np.mean(impostor):.3f} at FMR {fmr}"
        assert np.mean(genuine) >= 0.95, f"true matches {np.mean(genuine):.3f} at FMR {fmr}"


def test_verify_returns_a_full_typed_result(obama, biden, faces):
    same = facesift.verify(obama, faces / "wild" / "barack_obama" / "obama2.jpg")
    assert same.verified and same.similarity > same.threshold
    assert same.false_match_rate == 1e-3 and same.model == "sface"
    assert same.threshold == pytest.approx(load_card("sface").threshold_for(1e-3))
    assert same.decision is VerificationDecision.SAME_PERSON and same.explanation.startswith("Same person: similarity")
    assert same.quality_a.acceptable
    different = facesift.verify(obama, biden)
    assert not different.verified and different.decision is VerificationDecision.DIFFERENT_PEOPLE
    assert "Different people" in different.explanation
    record = json.loads(json.dumps(different.to_dict()))
    assert set(record) >= {"verified", "similarity", "threshold", "face_a", "face_b", "quality_a", "model", "explanation"}
    assert record["decision"] == "different_people"


def test_operating_points(obama, faces):
    other = faces / "wild" / "barack_obama" / "obama3.jpg"
    loose = facesift.verify(obama, other, false_match_rate=1e-1)
    strict = facesift.verify(obama, other, false_match_rate=1e-4)
    assert loose.threshold < strict.threshold and loose.similarity == pytest.approx(strict.similarity)
    fixed = facesift.verify(obama, other, threshold=0.99)
    assert not fixed.verified and fixed.false_match_rate is None
    with pytest.raises(ValueError, match="either"):
        facesift.verify(obama, other, threshold=0.5, false_match_rate=1e-3)
    with pytest.raises(ValueError, match="outside the calibrated range"):
        facesift.verify(obama, other, false_match_rate=0.5)  # below 1e-3 the card's tail model answers, down to any rate
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        facesift.verify(obama, other, threshold=3.0)


def test_no_face_is_a_clear_error(obama):
    blank = np.full((200, 200, 3), 200, np.uint8)
    with pytest.raises(facesift.NoFaceError, match="second image"):
        facesift.verify(obama, blank)


def test_resolution_ladder_verifies_as_one_person(faces, pipeline):
    folder = faces / "wild" / "barack_obama"
    files = [folder / f"obama-{size}.jpg" for size in ("1080p", "720p", "480p", "240p")]
    vectors = embeddings_by_file(pipeline, files)
    threshold = load_card("sface").threshold_for()
    for a, b in itertools.combinations(files, 2):
        assert cosine_similarity(vectors[a], vectors[b]) > threshold, (a.name, b.name)


def test_threads_share_one_pipeline_safely(obama, biden):
    expected = facesift.verify(obama, biden).similarity
    seen, failures = [], []

    def work():
        try:
            seen.append(facesift.verify(obama, biden).similarity)
        except Exception as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures and len(seen) == 6
    assert np.allclose(seen, expected, atol=1e-5)


def test_model_card_is_calibrated_and_documented():
    card = load_card("sface")
    assert card.dims == 128 and "Apache" in card.licence and "celeba300" in card.calibration
    fmrs = sorted(float(k) for k in card.thresholds)
    thresholds = [card.thresholds[k] for k in sorted(card.thresholds, key=float)]
    assert fmrs[0] <= 1e-4 and fmrs[-1] >= 1e-1
    assert thresholds == sorted(thresholds, reverse=True)  # a lower FMR needs a higher threshold
    assert card.threshold_for(3e-3) == pytest.approx(
        np.interp(np.log(3e-3), np.log([1e-3, 1e-2]), [card.thresholds["0.001"], card.thresholds["0.01"]])
    )

"""Which face of a photo with several: the auto choice on real group photos, enrolment's ambiguity rule, --policy."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from facesift.cli import app
from facesift.evaluation import embed_images
from facesift.gallery import pick_face
from facesift.pipeline import DEFAULT_FACE_POLICY, choice_scores, select_faces

runner = CliRunner()


def _box(face) -> list[int]:
    return [round(v) for v in face.box]


def test_auto_is_the_default_and_unknown_policies_are_refused(pipeline, obama):
    assert DEFAULT_FACE_POLICY == "auto"
    with pytest.raises(ValueError, match="auto, largest, central, all"):
        pipeline.represent(obama, policy="biggest")
    with pytest.raises(ValueError, match="picks one face"):
        pipeline.one_face(obama, policy="all")


def test_a_portrait_with_false_detections_in_the_background_gives_its_subject(pipeline, faces):
    # biden2.jpg: Biden in the middle, and two weak detections in the landscape painting behind him
    found = pipeline.represent_batch([faces / "wild" / "joe_biden" / "biden2.jpg"], policy="all")[0]
    assert len(found.faces) == 3
    chosen = select_faces([f.face for f in found.faces], "auto", found.image_size)[0]
    assert abs(chosen.box[0] - 427) < 10 and abs(chosen.box[1] - 155) < 10 and chosen.width > 400
    face, problem = pick_face(found.faces, found.image_size)
    assert face is not None and face.face == chosen and problem == ""


@pytest.mark.parametrize("photo", ["obama_and_biden.jpg", "two_people.jpg", "kit_with_rose.jpg"])
def test_two_people_side_by_side_are_ambiguous_for_enrolment(pipeline, faces, photo):
    found = pipeline.represent_batch([faces / "wild" / "_multi_face" / photo], policy="all")[0]
    scores = np.sort(choice_scores([f.face for f in found.faces], found.image_size))[::-1]
    assert scores[1] >= 0.7 * scores[0]
    face, problem = pick_face(found.faces, found.image_size)
    assert face is None and "could each be the photo's subject" in problem


def test_the_evaluation_cache_serves_every_policy_from_one_detection(faces, tmp_path):
    photo = faces / "wild" / "_multi_face" / "obama_and_biden.jpg"
    auto = embed_images([photo], cache_dir=tmp_path)
    central = embed_images([photo], cache_dir=tmp_path, policy="central")
    largest = embed_images([photo], cache_dir=tmp_path, policy="largest")
    assert auto.computed == 1 and central.computed == largest.computed == 0
    assert auto.face_counts[photo] == 3 and auto.policy == "auto"
    # Obama's face is the largest; Biden's is nearer the middle (and scores higher on size x centrality)
    assert _box(largest.faces[photo])[0] > _box(central.faces[photo])[0]
    assert float(largest.vectors[photo] @ central.vectors[photo]) < 0.3
    assert auto.measures[photo].eye_distance > 30


def test_verify_and_represent_take_a_policy_on_the_command_line(faces):
    photo = faces / "wild" / "_multi_face" / "obama_and_biden.jpg"
    obama = faces / "wild" / "barack_obama" / "obama.jpg"
    same = runner.invoke(app, ["verify", str(obama), str(photo), "--policy", "largest", "--json"])
    assert same.exit_code == 0, same.output
    assert json.loads(same.stdout)["verified"] is True
    other = runner.invoke(app, ["verify", str(obama), str(photo), "--policy", "central", "--json"])
    assert json.loads(other.stdout)["verified"] is False
    bad = runner.invoke(app, ["represent", str(photo), "--policy", "biggest"])
    assert bad.exit_code != 0 and "Unknown face policy" in bad.output

"""POST /v1/analyze and the require_live flags of enrolment and the check, over real HTTP with real photos."""

from __future__ import annotations

import io
from pathlib import Path

import requests
from PIL import Image
from skimage import data
from test_analysis import usable  # tests/ is on the path (its conftest.py)

from facesift.analysis.data import held_out_subjects, read_liveness


def post(service, path: str, files, data=None, key: str | None = None) -> requests.Response:
    return requests.post(service.url + path, headers=service.auth(key), files=files, data=data, timeout=60)


def upload(path: Path, field: str = "image"):
    return (field, (path.name, path.read_bytes(), "image/jpeg"))


def test_analyze_photo_crop_no_face_and_bad_requests(service, faces):
    group = faces / "wild" / "_multi_face" / "obama_and_biden.jpg"
    found = post(service, "/v1/analyze", [upload(group)])
    assert found.status_code == 200, found.text
    body = found.json()["faces"]
    assert len(body) >= 2 and {"age", "gender", "emotion", "liveness"} <= set(body[0]) and body[0]["race"] is None
    assert "operating_point" in body[0]["liveness"] and len(body[0]["emotion"]["probabilities"]) == 7

    crop = sorted((faces / "fer2013-dev" / "happy").iterdir())[0]
    whole = post(service, "/v1/analyze", [upload(crop)], data={"detector": "none", "actions": "emotion,age"}).json()["faces"]
    assert len(whole) == 1 and whole[0]["face"]["box"] == [0.0, 0.0, 48.0, 48.0] and whole[0]["liveness"] is None

    coffee = io.BytesIO()
    Image.fromarray(data.coffee()).save(coffee, format="PNG")
    empty = post(service, "/v1/analyze", [("image", ("coffee.png", coffee.getvalue(), "image/png"))]).json()
    assert empty == {"faces": [], "reason": "no face found"}

    wrong = post(service, "/v1/analyze", [upload(group)], data={"actions": "age,beauty"})
    assert wrong.status_code == 422 and "beauty" in wrong.json()["detail"]
    assert post(service, "/v1/analyze", [("image", ("x.jpg", b"not a photo", "image/jpeg"))]).status_code == 415
    assert post(service, "/v1/analyze", [upload(group)], data={"detector": "haar"}).status_code == 422


def test_enrol_and_check_can_require_a_live_face(service, faces):
    samples = read_liveness(faces / "nuaa-dev")
    subject = sorted(held_out_subjects(samples))[0]
    live = usable([s.path for s in samples if s.group == subject and s.live == 1][::5], 1)
    spoof = usable([s.path for s in samples if s.group == subject and s.live == 0][::5], 2)
    assert requests.post(service.url + "/v1/galleries", headers=service.auth(), json={"name": "live-only"}, timeout=30).status_code == 201
    report = post(service, f"/v1/galleries/live-only/persons/{subject}/samples",
                  [upload(live[0], "images"), upload(spoof[0], "images")], data={"require_live": "true"}).json()
    assert [r["outcome"] for r in report["results"]] == ["added", "spoof"] and "liveness score" in report["results"][1]["reason"]
    refused = post(service, f"/v1/galleries/live-only/persons/{subject}/check", [upload(spoof[1])], data={"require_live": "true"}).json()
    assert refused["outcome"] == "spoof" and refused["reasons"]
    unchecked = post(service, f"/v1/galleries/live-only/persons/{subject}/check", [upload(spoof[1])]).json()
    assert unchecked["outcome"] != "spoof"

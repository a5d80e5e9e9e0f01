"""Video jobs and photo clustering over real HTTP: the real clip, real photos, the shared live service."""

from __future__ import annotations

import time

import pytest
import requests

import facesift.server.video as video_module

LIN, ALEX = "lin-manuel-miranda", "alex-lacamoire"


@pytest.fixture(scope="module")
def people_gallery(service, faces):
    made = requests.post(service.url + "/v1/galleries", headers=service.auth(), json={"name": "hamilton"}, timeout=30)
    assert made.status_code == 201, made.text
    for person in (LIN, ALEX):
        photo = faces / "video" / f"{person}.png"
        sent = requests.post(f"{service.url}/v1/galleries/hamilton/persons/{person}/samples", headers=service.auth(),
                             files=[("images", (photo.name, photo.read_bytes(), "image/png"))], timeout=120)
        assert sent.json()["added"] == 1
    return "hamilton"


def submit(service, data: bytes, name="clip.mp4", kind="video/mp4", key=None, **fields):
    return requests.post(service.url + "/v1/video/jobs", headers=service.auth(key), files={"video": (name, data, kind)},
                         data=fields, timeout=120)


def test_upload_poll_timeline_and_thumbnail(service, first_second_clip, people_gallery):
    sent = submit(service, first_second_clip.read_bytes(), gallery=people_gallery, stride="2")
    assert sent.status_code == 202, sent.text
    job = sent.json()
    assert job["status"] in ("queued", "running") and job["video"]["frames"] == 30
    deadline = time.monotonic() + 600
    while job["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.5)
        job = requests.get(f"{service.url}/v1/video/jobs/{job['job_id']}", headers=service.auth(), timeout=30).json()
    assert job["status"] == "done", job
    result = job["result"]
    assert LIN in result["summary"]["people"] and result["threshold"] is not None
    track = next(t for t in result["tracks"] if t["person_id"] == LIN)
    image = requests.get(f"{service.url}/v1/video/jobs/{job['job_id']}/tracks/{track['track_id']}/thumbnail",
                         headers=service.auth(), timeout=30)
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg" and image.content[:2] == b"\xff\xd8"
    # another key does not see the job
    _, other = service.keys.create("video outsider", galleries=("hamilton",))
    hidden = requests.get(f"{service.url}/v1/video/jobs/{job['job_id']}", headers=service.auth(other), timeout=30)
    assert hidden.status_code == 404


def test_bad_uploads_are_refused_with_the_usual_codes(service, faces, first_second_clip, monkeypatch):
    clip = (faces / "video" / "short_hamilton_clip.mp4").read_bytes()
    assert submit(service, b"not a video at all").status_code == 415
    cut = submit(service, clip[:300_000])
    assert cut.status_code == 422 and "cut short" in cut.json()["detail"]
    assert submit(service, clip, kind="text/plain").status_code == 415
    assert submit(service, first_second_clip.read_bytes(), stride="0").status_code == 422
    assert submit(service, first_second_clip.read_bytes(), gallery="nope").status_code == 404
    as_json = requests.post(service.url + "/v1/video/jobs", headers=service.auth(), json={"video": "x"}, timeout=30)
    assert as_json.status_code == 415
    missing = requests.post(service.url + "/v1/video/jobs", headers=service.auth(), files={"other": ("a", b"x")}, timeout=30)
    assert missing.status_code == 422
    monkeypatch.setattr(video_module, "MAX_SECONDS", 0.5)
    long = submit(service, first_second_clip.read_bytes())
    assert long.status_code == 413 and "limit" in long.json()["detail"]
    big = submit(service, b"\0" * (service.config.max_upload_bytes + 1))
    assert big.status_code == 413
    assert requests.get(service.url + "/v1/video/jobs/nope", headers=service.auth(), timeout=30).status_code == 404


def test_cluster_photos_correct_and_enrol(service, faces, people_gallery):
    johns = sorted((faces / "johns").iterdir())[:2]
    photos = [photo for person in johns for photo in sorted(person.iterdir())[:3]]
    files = [("images", (p.name, p.read_bytes(), "image/jpeg")) for p in photos]
    sent = requests.post(service.url + "/v1/clusters/johns/photos", headers=service.auth(), files=files, timeout=300)
    assert sent.status_code == 200, sent.text
    body = sent.json()
    assert body["added"]["faces_added"] == 6 and sorted(c["size"] for c in body["clusters"]) == [3, 3]
    first, second = (c["cluster_id"] for c in body["clusters"])
    face = body["clusters"][0]["face_ids"][0]
    thumb = requests.get(service.url + "/v1/clusters/johns/thumbnail", params={"face": face}, headers=service.auth(), timeout=30)
    assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"
    again = requests.post(service.url + "/v1/clusters/johns/photos", headers=service.auth(), files=files[:1], timeout=300).json()
    assert again["added"]["skipped_known"] == 1 and again["faces"] == 6

    def post(path, payload):
        return requests.post(f"{service.url}/v1/clusters/johns/{path}", headers=service.auth(), json=payload, timeout=60)

    merged = post("merge", {"clusters": [first, second]}).json()
    assert [c["size"] for c in merged["clusters"]] == [6]
    split = post("split", {"cluster": first}).json()
    assert sorted(c["size"] for c in split["clusters"]) == [3, 3]
    named = post("confirm", {"cluster": first, "name": "john-one"}).json()
    assert any(c["name"] == "john-one" and c["confirmed"] for c in named["clusters"])
    enrolled = post("enrol", {"gallery": people_gallery}).json()
    assert enrolled == {"enrolled": {"john-one": 3}}
    assert post("merge", {"clusters": [first, 999]}).status_code == 422
    assert post("merge", {"clusters": [first]}).status_code == 422
    assert requests.get(service.url + "/v1/clusters/none-here", headers=service.auth(), timeout=30).status_code == 404
    assert requests.get(service.url + "/v1/clusters/Bad%20Name", headers=service.auth(), timeout=30).status_code == 422

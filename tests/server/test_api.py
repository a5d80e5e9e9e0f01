"""The REST API over real HTTP on loopback, with real photos, real models and real galleries."""

from __future__ import annotations

import base64
import io
import logging
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
import requests
from live_service import run_service
from PIL import Image

from facesift.server import load_config


def post_files(service, path: str, files, key: str | None = None, data=None) -> requests.Response:
    return requests.post(service.url + path, headers=service.auth(key), files=files, data=data, timeout=60)


def upload(path: Path, field: str = "image"):
    return (field, (path.name, path.read_bytes(), "image/jpeg"))


@pytest.fixture(scope="module")
def people(faces: Path) -> dict[str, list[Path]]:
    wild = faces / "wild"
    return {
        "obama": [wild / "barack_obama" / name for name in ("obama.jpg", "obama1.jpg", "obama2.jpg", "obama3.jpg")],
        "biden": [wild / "joe_biden" / name for name in ("biden.jpg", "biden2.jpg")],
        "kit": [wild / "kit_harington" / name for name in ("john1.jpeg", "john2.jpeg")],
    }


def png_bytes(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


# --- health, page, docs ---------------------------------------------------------------------------------
def test_health_page_and_docs_need_no_key(service):
    assert requests.get(service.url + "/healthz", timeout=10).json() == {"status": "ok"}
    ready = requests.get(service.url + "/readyz", timeout=10)
    assert ready.status_code == 200 and ready.json()["checks"] == {"models": True, "galleries": True, "keys": True}
    page = requests.get(service.url + "/", timeout=10)
    assert page.status_code == 200 and "Compare two photos" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert requests.get(service.url + "/static/app.js", timeout=10).status_code == 200
    docs = requests.get(service.url + "/docs", timeout=10)
    assert docs.status_code == 200 and "/docs-assets/swagger-ui-bundle.js" in docs.text and "http" not in docs.text
    assert requests.get(service.url + "/docs-assets/swagger-ui-bundle.js", timeout=10).status_code == 200
    schema = requests.get(service.url + "/openapi.json", timeout=10).json()
    verify_body = schema["paths"]["/v1/verify"]["post"]["requestBody"]["content"]
    assert set(verify_body) == {"multipart/form-data", "application/json"}
    assert {"/v1/detect", "/v1/galleries/{gallery}/search", "/v1/galleries/{gallery}/persons/{person_id}/check"} <= set(schema["paths"])


# --- authentication and rights --------------------------------------------------------------------------
def test_missing_wrong_and_revoked_keys_get_401(service, obama):
    files = [upload(obama, "image")]
    missing = requests.post(service.url + "/v1/detect", files=files, timeout=30)
    assert missing.status_code == 401 and "X-API-Key" in missing.json()["detail"]
    assert missing.headers["www-authenticate"] == "ApiKey"
    wrong = service.admin_key[:-4] + "AAAA"
    assert post_files(service, "/v1/detect", files, key=wrong).status_code == 401
    assert post_files(service, "/v1/detect", files, key="not-a-key").status_code == 401
    key, secret = service.keys.create("short-lived", admin=True)
    assert post_files(service, "/v1/detect", files, key=secret).status_code == 200
    service.keys.revoke(key.key_id)  # the running service re-reads the keys file
    assert post_files(service, "/v1/detect", files, key=secret).status_code == 401


def test_keys_are_stored_hashed(service):
    _, secret = service.keys.create("hash check", galleries=("somewhere",))
    me = requests.get(service.url + "/v1/me", headers=service.auth(secret), timeout=10).json()
    assert me["galleries"] == ["somewhere"] and me["admin"] is False and "digest" not in me and "salt" not in me
    stored = service.config.keys_path.read_text()
    assert secret.split("_", 2)[2] not in stored and "digest" in stored
    assert service.config.keys_path.stat().st_mode & 0o077 == 0


def test_scoped_key_gets_403_outside_its_galleries(service, obama):
    for name in ("scope-a", "scope-b"):
        assert requests.post(service.url + "/v1/galleries", headers=service.auth(), json={"name": name}, timeout=30).status_code == 201
    _, scoped = service.keys.create("scoped", galleries=("scope-a",))
    listed = requests.get(service.url + "/v1/galleries", headers=service.auth(scoped), timeout=30).json()["galleries"]
    assert [g["name"] for g in listed] == ["scope-a"]
    ok = post_files(service, "/v1/galleries/scope-a/persons/obama/samples", [upload(obama, "images")], key=scoped)
    assert ok.status_code == 200 and ok.json()["added"] == 1
    refused = post_files(service, "/v1/galleries/scope-b/search", [upload(obama)], key=scoped)
    assert refused.status_code == 403 and "scope-b" in refused.json()["detail"]
    assert requests.get(service.url + "/v1/galleries/scope-b/persons", headers=service.auth(scoped), timeout=30).status_code == 403
    create = requests.post(service.url + "/v1/galleries", headers=service.auth(scoped), json={"name": "mine"}, timeout=30)
    assert create.status_code == 403 and "admin" in create.json()["detail"]
    assert requests.delete(service.url + "/v1/galleries/scope-a", headers=service.auth(scoped), timeout=30).status_code == 403
    assert post_files(service, "/v1/verify", [upload(obama, "image_a"), upload(obama, "image_b")], key=scoped).status_code == 200


# --- detect, represent, verify --------------------------------------------------------------------------
def test_detect_and_represent(service, faces, obama):
    group = faces / "wild" / "_multi_face" / "obama_and_biden.jpg"
    detected = post_files(service, "/v1/detect", [upload(group)]).json()["faces"]
    assert len(detected) >= 2 and {"box", "landmarks", "score"} <= set(detected[0]["face"])
    largest = post_files(service, "/v1/detect", [upload(group)], data={"policy": "largest"}).json()["faces"]
    auto = post_files(service, "/v1/detect", [upload(group)], data={"policy": "auto"}).json()["faces"]
    assert len(largest) == len(auto) == 1 and largest[0]["face"]["box"][0] > auto[0]["face"]["box"][0]  # Obama; Biden
    encoded = base64.b64encode(obama.read_bytes()).decode()
    vectors = requests.post(service.url + "/v1/represent", headers=service.auth(), json={"image": encoded}, timeout=60).json()
    embedding = np.asarray(vectors["faces"][0]["embedding"])
    assert embedding.shape == (128,) and abs(np.linalg.norm(embedding) - 1) < 1e-3


def test_verify_same_and_different_people_multipart_and_base64(service, people):
    same = post_files(service, "/v1/verify", [upload(people["obama"][0], "image_a"), upload(people["obama"][1], "image_b")])
    assert same.status_code == 200
    body = same.json()
    assert body["verified"] is True and body["similarity"] >= body["threshold"] and body["decision"] == "same_person"
    assert body["explanation"].startswith("Same person: similarity")
    encoded = {name: "data:image/jpeg;base64," + base64.b64encode(path.read_bytes()).decode()
               for name, path in (("image_a", people["obama"][0]), ("image_b", people["biden"][0]))}
    different = requests.post(service.url + "/v1/verify", headers=service.auth(), json=encoded | {"false_match_rate": 0.01}, timeout=60)
    assert different.status_code == 200
    assert different.json()["verified"] is False and different.json()["false_match_rate"] == 0.01


# --- malformed input: 413, 415, 422 ---------------------------------------------------------------------
def test_too_large_bodies_and_images_get_413(service, obama):
    big = requests.post(service.url + "/v1/detect", headers=service.auth() | {"Content-Type": "application/json"},
                        data=b"x" * 7_000_000, timeout=60)
    assert big.status_code == 413 and "6,000,000 bytes" in big.json()["detail"]

    def chunks():  # no Content-Length: the limit must hold while reading
        for _ in range(8):
            yield b"y" * 1_000_000

    streamed = requests.post(service.url + "/v1/detect", headers=service.auth() | {"Content-Type": "application/json"},
                             data=chunks(), timeout=60)
    assert streamed.status_code == 413
    bomb = png_bytes(np.zeros((3000, 4000, 3), np.uint8))  # 12 Mpx, a few kB
    pixels = post_files(service, "/v1/detect", [("image", ("big.png", bomb, "image/png"))])
    assert pixels.status_code == 413 and pixels.json()["error"] == "ImageTooLargeError" and "10,000,000" in pixels.json()["detail"]


def test_wrong_content_types_get_415(service, obama):
    text = requests.post(service.url + "/v1/detect", headers=service.auth() | {"Content-Type": "text/plain"}, data=b"hello", timeout=30)
    assert text.status_code == 415 and "multipart/form-data" in text.json()["detail"]
    part = post_files(service, "/v1/detect", [("image", ("notes.txt", b"hello", "text/plain"))])
    assert part.status_code == 415
    not_image = post_files(service, "/v1/detect", [("image", ("fake.jpg", b"%PDF-1.4 not a photo", "image/jpeg"))])
    assert not_image.status_code == 415 and not_image.json()["error"] == "NotAnImageError"


@pytest.mark.parametrize(
    "body, expected",
    [
        ({"image_a": "not base64!!"}, "not valid base64"),
        ({"image_b": None}, "an image is required in field 'image_b'"),
        ({"image_a": 12, "image_b": "AAAA"}, "base64 string"),
        ({"threshold": 3}, "threshold"),
        ({"thresold": 0.4}, "thresold"),
    ],
)
def test_malformed_json_gets_422_with_a_clear_message(service, obama, body, expected):
    encoded = base64.b64encode(obama.read_bytes()).decode()
    request = {key: value for key, value in ({"image_a": encoded, "image_b": encoded} | body).items() if value is not None}
    response = requests.post(service.url + "/v1/verify", headers=service.auth(), json=request, timeout=60)
    assert response.status_code == 422 and expected in response.json()["detail"]


def test_unusable_images_get_422(service, obama):
    blank = png_bytes(np.full((200, 200, 3), 200, np.uint8))
    no_face = post_files(service, "/v1/verify", [upload(obama, "image_a"), ("image_b", ("blank.png", blank, "image/png"))])
    assert no_face.status_code == 422 and no_face.json() == {"error": "NoFaceError", "detail": "No face was found in the second image"}
    truncated = post_files(service, "/v1/detect", [("image", ("cut.jpg", obama.read_bytes()[:50000], "image/jpeg"))])
    assert truncated.status_code == 422 and truncated.json()["error"] == "TruncatedImageError"
    no_boundary = requests.post(service.url + "/v1/detect", headers=service.auth() | {"Content-Type": "multipart/form-data"},
                                data=b"--x\r\n", timeout=30)
    assert no_boundary.status_code == 422 and "multipart" in no_boundary.json()["detail"]
    broken_json = requests.post(service.url + "/v1/detect", headers=service.auth() | {"Content-Type": "application/json"},
                                data=b"{not json", timeout=30)
    assert broken_json.status_code == 422 and "not valid JSON" in broken_json.json()["detail"]
    bad_k = post_files(service, "/v1/galleries/nowhere/search", [upload(obama)], data={"k": "0"})
    assert bad_k.status_code == 404  # the gallery is checked before the body


# --- galleries, persons, samples, search, check ---------------------------------------------------------
def test_gallery_lifecycle(service, people, faces):
    url, auth = service.url + "/v1/galleries", service.auth()
    created = requests.post(url, headers=auth, json={"name": "people", "keep_images": True}, timeout=30)
    assert created.status_code == 201 and created.json()["keep_images"] is True
    assert requests.post(url, headers=auth, json={"name": "people"}, timeout=30).status_code == 409
    bad_name = requests.post(url, headers=auth, json={"name": "../etc"}, timeout=30)
    assert bad_name.status_code == 422 and "name" in bad_name.json()["detail"]
    assert "people" in [g["name"] for g in requests.get(url, headers=auth, timeout=30).json()["galleries"]]

    person = requests.post(url + "/people/persons", headers=auth, json={"person_id": "biden", "metadata": {"team": "b"}}, timeout=30)
    assert person.status_code == 201 and person.json()["metadata"] == {"team": "b"}
    assert requests.post(url + "/people/persons", headers=auth, json={"person_id": "biden"}, timeout=30).status_code == 409

    for name in ("obama", "biden", "kit"):
        photos = people[name][:3] if name == "obama" else people[name][:1]
        report = post_files(service, f"/v1/galleries/people/persons/{name}/samples", [upload(p, "images") for p in photos]).json()
        assert report["added"] == len(photos), report
    again = post_files(service, "/v1/galleries/people/persons/obama/samples", [upload(people["obama"][0], "images")]).json()
    assert again["results"][0]["outcome"] == "duplicate"
    too_many = post_files(service, "/v1/galleries/people/persons/obama/samples", [upload(people["obama"][0], "images")] * 7)
    assert too_many.status_code == 422 and "at most 6" in too_many.json()["detail"]

    persons = requests.get(url + "/people/persons", headers=auth, timeout=30).json()["persons"]
    assert {p["person_id"]: p["sample_count"] for p in persons} == {"biden": 1, "obama": 3, "kit": 1}
    assert requests.get(url + "/people/persons/obama", headers=auth, timeout=30).json()["sample_count"] == 3
    assert requests.get(url + "/people/persons/nobody", headers=auth, timeout=30).status_code == 404
    stats = requests.get(url + "/people", headers=auth, timeout=30).json()["stats"]
    assert stats["persons"] == 3 and stats["samples"] == 5

    found = post_files(service, "/v1/galleries/people/search", [upload(people["obama"][3])], data={"k": "2"}).json()
    assert found["decision"] == "match" and found["candidates"][0]["person_id"] == "obama" and len(found["candidates"]) == 2
    photo = requests.get(url + f"/people/samples/{found['candidates'][0]['sample_id']}/image", headers=auth, timeout=30)
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg" and photo.content[:2] == b"\xff\xd8"
    stranger = faces / "wild" / "lin_manuel_miranda"
    unknown = post_files(service, "/v1/galleries/people/search", [upload(min(stranger.iterdir()))]).json()
    assert unknown["decision"] == "unknown"

    owner = post_files(service, "/v1/galleries/people/persons/obama/check", [upload(people["obama"][3])]).json()
    assert owner["outcome"] == "owner"
    impostor = post_files(service, "/v1/galleries/people/persons/obama/check", [upload(people["biden"][0])]).json()
    assert impostor["outcome"] == "other_person" and impostor["other_person"] == "biden"
    group = post_files(service, "/v1/galleries/people/persons/biden/check", [upload(people["biden"][1])]).json()
    assert group["outcome"] == "owner"  # biden2.jpg: Biden, and two weak false detections in the painting behind him
    assert post_files(service, "/v1/galleries/people/persons/nobody/check", [upload(people["obama"][0])]).status_code == 404

    sample = found["candidates"][0]["sample_id"]
    assert requests.delete(url + f"/people/samples/{sample}", headers=auth, timeout=30).status_code == 204
    assert requests.delete(url + f"/people/samples/{sample}", headers=auth, timeout=30).status_code == 404
    removed = requests.delete(url + "/people/persons/kit", headers=auth, timeout=30).json()
    assert removed == {"person_id": "kit", "samples_removed": 1}
    assert requests.delete(url + "/people", headers=auth, timeout=30).status_code == 204
    assert requests.get(url + "/people/persons", headers=auth, timeout=30).status_code == 404
    assert not (service.config.galleries_dir / "people").exists()


def test_no_photo_is_written_unless_the_gallery_keeps_images(service, people, tmp_path, monkeypatch):
    assert requests.post(service.url + "/v1/galleries", headers=service.auth(), json={"name": "templates"}, timeout=30).status_code == 201
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))  # where an upload would be spooled (same process)
    photo = Image.open(people["obama"][0]).convert("RGB")
    large = png_bytes(np.asarray(photo.resize((photo.width * 2, photo.height * 2))))  # over Starlette's 1 MB in-memory default
    assert len(large) > 2_000_000
    report = post_files(service, "/v1/galleries/templates/persons/obama/samples", [("images", ("big.png", large, "image/png"))])
    assert report.status_code == 200 and report.json()["added"] == 1
    sample = report.json()["results"][0]["sample_id"]
    assert list(spool.iterdir()) == []
    folder = service.config.galleries_dir / "templates"
    for path in folder.rglob("*"):
        if path.is_file():
            assert large[1000:1064] not in path.read_bytes(), path
    assert (
        requests.get(service.url + f"/v1/galleries/templates/samples/{sample}/image", headers=service.auth(), timeout=30).status_code == 404
    )


def test_access_log_has_no_images_keys_or_embeddings(service, obama, caplog):
    caplog.set_level(logging.INFO, logger="facesift.server.access")
    encoded = base64.b64encode(obama.read_bytes()).decode()
    assert requests.post(service.url + "/v1/represent", headers=service.auth(), json={"image": encoded}, timeout=60).status_code == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "facesift.server.access"]
    assert any(line.startswith("POST /v1/represent 200") for line in lines)
    text = "\n".join(lines)
    assert encoded[:40] not in text and service.admin_key not in text and "embedding" not in text


# --- capacity --------------------------------------------------------------------------------------------
def test_over_capacity_requests_get_503_with_retry_after(tmp_path, faces):
    config = load_config(data_dir=tmp_path, workers=1, queue_size=1, retry_after=3)
    photo = (faces / "wild" / "barack_obama" / "obama-1080p.jpg").read_bytes()
    with run_service(config) as live:
        statuses: list[int] = []
        retry_after: set[str] = set()
        lock = threading.Lock()

        def client(start: threading.Barrier) -> None:
            start.wait()
            response = requests.post(live.url + "/v1/verify", headers=live.auth(), timeout=120,
                                     files={"image_a": ("a.jpg", photo, "image/jpeg"), "image_b": ("b.jpg", photo, "image/jpeg")})
            with lock:
                statuses.append(response.status_code)
                if response.status_code == 503:
                    retry_after.add(response.headers.get("retry-after"))

        for _ in range(3):  # a few rounds, in case one round's requests happen not to overlap
            barrier = threading.Barrier(10)
            threads = [threading.Thread(target=client, args=(barrier,)) for _ in range(10)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if 503 in statuses:
                break
        assert set(statuses) == {200, 503}, statuses
        assert retry_after == {"3"}
        after = requests.post(live.url + "/v1/verify", headers=live.auth(), timeout=120,
                              files={"image_a": ("a.jpg", photo, "image/jpeg"), "image_b": ("b.jpg", photo, "image/jpeg")})
        assert after.status_code == 200


def test_enrol_judges_each_photo_and_a_refused_request_changes_nothing(service, people):
    assert requests.post(service.url + "/v1/galleries", headers=service.auth(), json={"name": "mixed"}, timeout=30).status_code == 201
    blank = png_bytes(np.full((300, 300, 3), 90, np.uint8))
    files = [upload(people["kit"][0], "images"), ("images", ("blank.png", blank, "image/png")),
             ("images", ("fake.jpg", b"GIF89a but not really", "image/jpeg")), upload(people["kit"][1], "images")]
    report = post_files(service, "/v1/galleries/mixed/persons/kit/samples", files)
    assert report.status_code == 200
    outcomes = [item["outcome"] for item in report.json()["results"]]
    assert outcomes == ["added", "no_face", "invalid_image", "added"]
    assert report.json()["results"][2]["reason"]  # says why
    too_big = post_files(service, "/v1/galleries/mixed/persons/rose/samples",
                         [upload(people["kit"][0], "images"), ("images", ("pad.png", b"\x89PNG" + b"0" * 6_100_000, "image/png"))])
    assert too_big.status_code == 413
    persons = requests.get(service.url + "/v1/galleries/mixed/persons", headers=service.auth(), timeout=30).json()["persons"]
    assert [(p["person_id"], p["sample_count"]) for p in persons] == [("kit", 2)]


def test_galleries_on_embedded_milvus(tmp_path, people):
    config = load_config(data_dir=tmp_path, gallery_backend="milvus-lite", workers=1)
    with run_service(config) as live:
        url, auth = live.url + "/v1/galleries", live.auth()
        keeping = requests.post(url, headers=auth, json={"name": "photos", "keep_images": True}, timeout=60)
        assert keeping.status_code == 422 and "cannot keep images" in keeping.json()["detail"]
        assert requests.post(url, headers=auth, json={"name": "m"}, timeout=60).status_code == 201
        for name in ("obama", "biden"):
            report = post_files(live, f"/v1/galleries/m/persons/{name}/samples", [upload(people[name][0], "images")])
            assert report.json()["added"] == 1
        found = post_files(live, "/v1/galleries/m/search", [upload(people["obama"][3])]).json()
        assert found["decision"] == "match" and found["candidates"][0]["person_id"] == "obama"
        assert requests.delete(url + "/m", headers=auth, timeout=60).status_code == 204

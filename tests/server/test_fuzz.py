"""A bounded, seeded fuzz of the REST API: 300 requests over every route of the app (and some that are not
routes), with odd methods, ids, queries, keys, content types and broken images. None may get a 5xx, every
error must be JSON, every response must carry the security headers, and the service must still be ready."""

from __future__ import annotations

import base64
import io
import json
import random

import requests
from fastapi.routing import APIRoute
from PIL import Image

from facesift.server import create_app
from facesift.server.middleware import SECURITY_HEADERS

CASES = 300
IDS = [
    "fuzz",
    "fuzz-person",
    "nonexistent",
    "x" * 300,
    "..",
    "%2E%2E%2Fetc",
    "%00",
    "%0A%0D",
    "caf%C3%A9",
    "a%20b",
    "UPPER",
    "-",
    "0",
    "9" * 30,
]
QUERIES = ["", "offset=-1", "offset=1e30", "offset=9223372036854775808", "limit=abc", "limit=0", "k=0", "k=99999999999",
           "policy=evil", "threshold=nan", "false_match_rate=2", "%ff%fe=1", "a=" + "b" * 5000]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]


def _images(obama) -> list[bytes]:
    photo = Image.open(obama).convert("RGB").resize((96, 96))
    encoded = []
    for fmt in ("JPEG", "PNG", "GIF", "WEBP"):
        out = io.BytesIO()
        photo.save(out, format=fmt)
        encoded.append(out.getvalue())
    return encoded


def _broken(rng: random.Random, images: list[bytes]) -> bytes:
    data = bytearray(rng.choice(images))
    how = rng.randrange(5)
    if how == 0:
        data = data[: rng.randrange(len(data))]
    elif how == 1:
        for _ in range(rng.randint(1, 30)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif how == 2:
        data = bytearray(rng.randbytes(rng.randint(0, 2000)))
    elif how == 3:
        data = bytearray(b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>")
    return bytes(data)  # how == 4: intact


def _json_value(rng: random.Random, image: bytes):
    return rng.choice([None, True, -1, 10**30, 0.5, float("inf"), "", "x" * 1000, [], {}, {"a": [1, {"b": None}]},
                       base64.b64encode(image).decode(), "data:image/png;base64," + base64.b64encode(image).decode(), "not base64!"])


def _body(rng: random.Random, images: list[bytes]) -> tuple[dict, dict]:
    """requests keyword arguments for a random body."""
    fields = ["image", "image_a", "image_b", "images", "name", "keep_images", "person_id", "metadata", "k", "policy",
              "threshold", "false_match_rate", "strict", "create", "unknown"]
    kind = rng.randrange(5)
    if kind == 0:
        return {}, {}
    if kind == 1:  # raw bytes under a random content type
        content_type = rng.choice(["application/json", "multipart/form-data", "multipart/form-data; boundary=zz", "text/plain",
                                   "image/jpeg", "application/x-www-form-urlencoded", ""])
        return {"data": _broken(rng, images)}, {"Content-Type": content_type}
    if kind == 2:  # JSON
        body = {name: _json_value(rng, _broken(rng, images)) for name in rng.sample(fields, rng.randint(1, 5))}
        if rng.random() < 0.3:
            body = rng.choice([[body], "a string", 12, None])
        return {"data": json.dumps(body, allow_nan=True)}, {"Content-Type": "application/json"}
    # multipart: files and fields
    files = []
    for name in rng.sample(fields, rng.randint(1, 4)):
        if rng.random() < 0.6:
            files.append(
                (name, ("f.jpg", _broken(rng, images), rng.choice(["image/jpeg", "image/png", "application/octet-stream", "text/html"])))
            )
        else:
            files.append((name, (None, rng.choice(["1", "0", "true", "largest", "evil", "-5", "x" * 2000]))))
    return {"files": files}, {}


def test_fuzzed_requests_never_get_a_5xx(service, obama):
    auth = service.auth()
    assert (
        requests.post(service.url + "/v1/galleries", headers=auth, json={"name": "fuzz", "keep_images": True}, timeout=30).status_code
        == 201
    )
    enrolled = requests.post(service.url + "/v1/galleries/fuzz/persons/fuzz-person/samples", headers=auth,
                             files={"images": ("o.jpg", obama.read_bytes(), "image/jpeg")}, timeout=60)
    assert enrolled.status_code == 200
    _, scoped = service.keys.create("fuzz scoped", galleries=("fuzz",))
    keys = [service.admin_key] * 7 + [None, "fsk_000000000000_" + "A" * 43, scoped, "\u00e9" * 10]
    routes = [(sorted(r.methods), r.path_format) for r in create_app(service.config).routes if isinstance(r, APIRoute)]
    routes += [(["GET"], path) for path in ("/", "/healthz", "/readyz", "/docs", "/static/app.js", "/static/../../etc/passwd",
                                            "/nothing-here", "/v1/nothing-here", "/docs-assets/none.js")]
    images = _images(obama)
    rng = random.Random(20261203)
    seen: dict[int, int] = {}
    for case in range(CASES):
        methods, path = rng.choice(routes)
        method = rng.choice(methods) if rng.random() < 0.85 else rng.choice(METHODS)
        for name in ("gallery", "person_id", "sample_id"):
            path = path.replace("{" + name + "}", rng.choice(IDS[:3]) if rng.random() < 0.6 else rng.choice(IDS))
        query = rng.choice(QUERIES)
        arguments, headers = _body(rng, images)
        key = rng.choice(keys)
        if key is not None:
            headers["X-API-Key"] = key.encode("utf-8").decode("latin-1")
        url = service.url + path + (f"?{query}" if query else "")
        response = requests.request(method, url, headers=headers, timeout=60, **arguments)
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        what = f"case {case}: {method} {path}?{query} -> {response.status_code} {response.text[:200]!r}"
        assert response.status_code < 500 or response.status_code == 503 and "retry-after" in response.headers, what
        for header, value in SECURITY_HEADERS:
            assert response.headers.get(header.decode()) == value.decode(), what
        if response.status_code >= 400 and method != "HEAD":
            assert response.headers["content-type"] == "application/json", what
            assert set(response.json()) == {"error", "detail"}, what
    assert requests.get(service.url + "/readyz", timeout=10).status_code == 200
    assert {200, 401, 404, 422} <= set(seen), seen  # the fuzz reached past the key check and into the endpoints

"""The service against a hostile client (issue 17): keys before bodies on every route, limits that hold
however a body arrives, slow clients cut off, an access log that cannot be forged, no 500 that is not
JSON, no leaked paths, ids or tracebacks."""

from __future__ import annotations

import io
import logging
import socket
import threading
import time
from pathlib import Path

import pytest
import requests
from fastapi.routing import APIRoute
from live_service import run_service

from facesift.server import create_app, load_config
from facesift.server.app import _caller
from facesift.server.middleware import SECURITY_HEADERS


def _raw(url: str, data: bytes, *, read_for: float = 5.0) -> tuple[bytes, float]:
    """Send raw bytes on a fresh connection; what came back within ``read_for`` s, and when it ended."""
    host, port = url.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=read_for) as sock:
        sock.sendall(data)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
                if b"\r\n\r\n" in answer and b"content-length" in answer.lower():
                    head, _, body = answer.partition(b"\r\n\r\n")
                    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
                    if len(body) >= length:
                        break
        except (TimeoutError, ConnectionResetError):
            pass
    return answer, time.monotonic() - started


def _routes(config) -> list[tuple[str, str, APIRoute]]:
    """(method, concrete path, route) for every API route of the app, path parameters filled in."""
    app = create_app(config)
    found = []
    for route in app.routes:
        if isinstance(route, APIRoute):
            path = route.path_format
            for name in route.param_convertors:
                path = path.replace("{" + name + "}", "x")
            found.extend((method, path, route) for method in sorted(route.methods))
    return found


def _depends_on(dependant, call) -> bool:
    return any(d.call is call or _depends_on(d, call) for d in dependant.dependencies)


# --- finding 1: the key before any body ----------------------------------------------------------------------
def test_every_v1_route_refuses_a_keyless_request_before_reading_its_body(service):
    """A keyless request that announces 5 MB and sends one byte gets its 401 at once, on every route; and
    malformed JSON without a key is a 401 too, never a 422."""
    routes = _routes(service.config)
    assert len(routes) > 15
    for method, path, route in routes:
        assert path.startswith("/v1/") or not _depends_on(route.dependant, _caller), f"{path} needs a key outside /v1"
        if not path.startswith("/v1/"):
            continue
        head = f"{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 5000000\r\n\r\n{{"
        answer, took = _raw(service.url, head.encode(), read_for=5)
        assert answer.startswith(b"HTTP/1.1 401"), (method, path, answer[:200])
        assert took < 4, (method, path, took)
        bad = requests.request(method, service.url + path, data=b"{not json", headers={"Content-Type": "application/json"}, timeout=10)
        assert bad.status_code == 401 and bad.json()["error"] == "Unauthorized", (method, path, bad.text)


# --- finding 2: the documented 413 however the body comes ------------------------------------------------------
@pytest.mark.parametrize("path", ["/v1/galleries", "/v1/galleries/hardening/persons", "/v1/detect"])
def test_chunked_bodies_over_the_limit_get_413_on_json_endpoints(service, path):
    def chunks():
        yield b'{"name": "'
        for _ in range(7):
            yield b"a" * 1_000_000
        yield b'"}'

    response = requests.post(service.url + path, headers=service.auth() | {"Content-Type": "application/json"}, data=chunks(), timeout=60)
    assert response.status_code == 413 and response.json()["error"] == "RequestTooLarge", response.text[:300]


# --- finding 3 and 8: a log line per request, escaped, without person ids -----------------------------------------
def test_access_log_cannot_be_forged_and_holds_no_person_ids(service, caplog):
    caplog.set_level(logging.INFO, logger="facesift.server.access")
    requests.post(service.url + "/v1/galleries", headers=service.auth(), json={"name": "logged"}, timeout=30)
    forged = "/v1/galleries/x%0A2026-12-03 facesift.server.access DELETE /v1/galleries/all 204 0.1ms 0B key=admin%0D%00%1B[2J"
    assert requests.get(service.url + forged, headers=service.auth(), timeout=10).status_code in (404, 422)
    person = "alice-private-name"
    assert requests.get(service.url + f"/v1/galleries/logged/persons/{person}", headers=service.auth(), timeout=10).status_code == 404
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the line is written once the response is out
        lines = [r.getMessage() for r in caplog.records if r.name == "facesift.server.access"]
        if any("/v1/galleries/logged/persons/" in line for line in lines):
            break
        time.sleep(0.05)
    for line in lines:
        assert not any(ch in line for ch in "\n\r\x00\x1b"), repr(line)
    forged_lines = [line for line in lines if "%0A2026-12-03" in line]
    assert len(forged_lines) == 1 and (" 404 " in forged_lines[0] or " 422 " in forged_lines[0]), lines
    person_lines = [line for line in lines if "/v1/galleries/logged/persons/" in line]
    assert len(person_lines) == 1 and person not in person_lines[0] and " 404 " in person_lines[0], lines


# --- finding 6: bounded paging, a gallery deleted under a request ----------------------------------------------
def test_huge_offsets_and_limits_get_422(service):
    assert requests.post(service.url + "/v1/galleries", headers=service.auth(), json={"name": "paging"}, timeout=30).status_code == 201
    for query in ("offset=9223372036854775808", "offset=99999999999999999999999", "limit=9223372036854775808", "offset=-1"):
        response = requests.get(service.url + f"/v1/galleries/paging/persons?{query}", headers=service.auth(), timeout=10)
        assert response.status_code == 422, (query, response.status_code, response.text[:200])


def test_deleting_a_gallery_during_an_enrolment_is_a_404_or_409_never_a_500(service, faces):
    photos = [("images", (p.name, p.read_bytes(), "image/jpeg")) for p in sorted((faces / "wild" / "barack_obama").glob("obama*.jpg"))[:6]]
    statuses = []
    for round_ in range(4):
        name = f"doomed-{round_}"
        assert requests.post(service.url + "/v1/galleries", headers=service.auth(), json={"name": name}, timeout=30).status_code == 201
        result = {}

        def enrol() -> None:
            result["response"] = requests.post(service.url + f"/v1/galleries/{name}/persons/obama/samples",
                                               headers=service.auth(), files=photos, timeout=120)

        thread = threading.Thread(target=enrol)
        thread.start()
        time.sleep(0.15 + 0.2 * round_)
        assert requests.delete(service.url + f"/v1/galleries/{name}", headers=service.auth(), timeout=60).status_code == 204
        thread.join()
        response = result["response"]
        statuses.append(response.status_code)
        assert response.status_code in (200, 404, 409), (response.status_code, response.text[:300])
        assert response.headers["content-type"].startswith("application/json")
        assert requests.get(service.url + f"/v1/galleries/{name}", headers=service.auth(), timeout=10).status_code == 404
    assert set(statuses) - {200}, statuses  # at least one round hit the deletion mid-request


# --- finding 8: no server paths for scoped keys; the first key not in log files -----------------------------
def test_scoped_keys_see_no_server_file_paths(service):
    assert requests.post(service.url + "/v1/galleries", headers=service.auth(), json={"name": "pathless"}, timeout=30).status_code == 201
    _, scoped = service.keys.create("scoped paths", galleries=("pathless",))
    for key in (scoped, service.admin_key):
        text = requests.get(service.url + "/v1/galleries/pathless", headers=service.auth(key), timeout=10).text
        assert str(service.config.data_dir) not in text and '"uri"' not in text, text


def test_the_first_admin_key_goes_to_a_private_file_when_not_on_a_terminal(tmp_path):
    from facesift.server.keys import KeyStore, first_admin_key

    config = load_config(data_dir=tmp_path)
    out = io.StringIO()  # a log file, not a terminal
    first_admin_key(config, out)
    store = KeyStore(config.keys_path)
    assert len(store.active()) == 1
    saved = tmp_path / "first-admin-key.txt"
    secret = saved.read_text().strip()
    assert store.authenticate(secret) is not None
    assert saved.stat().st_mode & 0o077 == 0
    assert secret not in out.getvalue() and str(saved) in out.getvalue()
    first_admin_key(config, out)  # a second start creates nothing
    assert len(store.active()) == 1


# --- finding 5, 6 and 8 on a service of its own: timeouts, connection limit, 500s, disconnects ------------------
@pytest.fixture(scope="module")
def strict(tmp_path_factory):
    config = load_config(data_dir=tmp_path_factory.mktemp("strict"), workers=1, header_timeout=1.0, body_timeout=2.0,
                         max_connections=8)
    app = create_app(config)

    @app.get("/v1/test-bug")
    def bug() -> dict:
        raise RuntimeError("internal detail: /srv/secret/path")

    @app.get("/v1/test-value-bug")
    def value_bug() -> dict:
        int("internal detail")
        return {}

    with run_service(config, app=app) as live:
        yield live


def test_slow_headers_are_cut_off(strict):
    host, port = strict.url.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        closed = False
        for n in range(20):  # one header line every 0.3 s, never the blank line
            time.sleep(0.3)
            try:
                sock.sendall(f"X-Slow-{n}: 1\r\n".encode())
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
        if not closed:
            sock.settimeout(1)
            try:
                closed = sock.recv(1024) == b""
            except (TimeoutError, ConnectionResetError):
                closed = True
    assert closed and time.monotonic() - started < 3.5


def test_a_trickled_body_gets_408(strict):
    head = (f"POST /v1/detect HTTP/1.1\r\nHost: t\r\nX-API-Key: {strict.admin_key}\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000\r\n\r\n").encode()
    host, port = strict.url.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head)
        answer = b""
        sock.settimeout(0.4)
        while time.monotonic() - started < 6 and not answer:
            try:
                sock.sendall(b"{")
                answer = sock.recv(4096)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
        answered = time.monotonic() - started
        sock.settimeout(2)
        while b"RequestTimeout" not in answer:  # the head and the JSON body may come in separate segments
            try:
                more = sock.recv(4096)
            except (TimeoutError, ConnectionResetError):
                break
            if not more:
                break
            answer += more
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"RequestTimeout" in answer and answered < 4, (answer[-300:], answered)


def test_idle_connections_are_limited_and_closed(strict):
    host, port = strict.url.removeprefix("http://").split(":")
    sockets = [socket.create_connection((host, int(port)), timeout=5) for _ in range(20)]
    time.sleep(0.3)

    def closed(sock: socket.socket, wait: float) -> bool:
        sock.settimeout(wait)
        try:
            return sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    refused = sum(closed(s, 0.05) for s in sockets)
    assert refused >= 12, refused  # beyond max_connections (8): closed at once
    time.sleep(1.5)
    assert all(closed(s, 0.5) for s in sockets)  # the rest: after header_timeout
    for sock in sockets:
        sock.close()
    assert requests.get(strict.url + "/healthz", timeout=5).status_code == 200


@pytest.mark.parametrize("path", ["/v1/test-bug", "/v1/test-value-bug"])
def test_bugs_give_a_json_500_with_headers_logged_with_its_status(strict, caplog, path):
    caplog.set_level(logging.INFO, logger="facesift.server")
    response = requests.get(strict.url + path, headers=strict.auth(), timeout=10)
    assert response.status_code == 500
    assert response.json() == {"error": "InternalError", "detail": "An unexpected error; it was logged on the server"}
    for name, value in SECURITY_HEADERS:
        assert response.headers[name.decode()] == value.decode()
    deadline = time.monotonic() + 5
    while not any(f"GET {path} 500 " in r.getMessage() for r in caplog.records if r.name == "facesift.server.access"):
        assert time.monotonic() < deadline, "no access-log line with the real status"
        time.sleep(0.05)  # the line is written once the response is out
    assert any(r.exc_info and r.name == "facesift.server" for r in caplog.records)  # the traceback is on the server


def test_a_client_gone_mid_body_leaves_no_traceback(strict, caplog):
    caplog.set_level(logging.INFO)
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append
    logging.getLogger("uvicorn.error").addHandler(handler)
    try:
        head = (f"POST /v1/detect HTTP/1.1\r\nHost: t\r\nX-API-Key: {strict.admin_key}\r\n"
                "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"image\": \"").encode()
        host, port = strict.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(head + b"A" * 100)
            time.sleep(0.3)
        time.sleep(0.5)
    finally:
        logging.getLogger("uvicorn.error").removeHandler(handler)
    records = seen + list(caplog.records)
    assert not [r for r in records if r.exc_info], [r.getMessage() for r in records if r.exc_info]
    access = [r.getMessage() for r in caplog.records if r.name == "facesift.server.access"]
    assert any(line.startswith("POST /v1/detect 499 ") for line in access), access


def test_the_service_still_answers_after_all_that(strict, obama: Path):
    files = {"image": ("o.jpg", obama.read_bytes(), "image/jpeg")}
    assert requests.post(strict.url + "/v1/detect", headers=strict.auth(), files=files, timeout=60).status_code == 200

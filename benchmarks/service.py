"""The HTTP service under load, against calling the Python API directly, in one run.

    python benchmarks/service.py [--duration 60] [--clients 4] [--overload-clients 16]

Starts `facesift serve` as its own process on 127.0.0.1 (2 workers, a queue of 4: capacity 6), enrols
people from celeba300 into a gallery, then sends verify and search requests (half each) with real
250x250 photos:

1. one at a time, interleaved: each job through the Python API in this process (the baseline), then
   the same job over HTTP; the difference of the means is the HTTP overhead per request;
2. HTTP, ``--clients`` concurrent clients (below capacity) for ``--duration`` s: throughput, p50/p99
   latency, errors (must be 0);
3. HTTP, ``--overload-clients`` concurrent clients (above capacity) for ``--duration`` s: only 200s
   and 503s allowed;

and the server's resident memory before and after (bound: 64 MB growth). Then, on two fresh servers, the
memory a 39.6 Mpx JPEG costs (detect from 2 clients, an enrolment of 8): with the default reduced decoding
(``decode_pixels``) against a full decode, the baseline (``--large-only`` runs just this part). Request loops are bounded
by time; every address is loopback.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import requests

REPO = Path(__file__).resolve().parents[1]
FACES = Path(os.environ.get("FACESIFT_FACES_DIR", REPO.parent / "shared" / "faces"))
RSS_BOUND_MB = 64


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_service(work: Path, port: int, **settings: str) -> subprocess.Popen:
    """`facesift serve` on 127.0.0.1:port with its data in ``work`` (2 workers, a queue of 4; ``settings``
    are more FACESIFT_* variables), once it answers /readyz."""
    env = os.environ | {"FACESIFT_DATA_DIR": str(work), "FACESIFT_WORKERS": "2", "FACESIFT_QUEUE_SIZE": "4", "PYTHONPATH": str(REPO)}
    env |= {f"FACESIFT_{name.upper()}": value for name, value in settings.items()}
    with open(work / "server.log", "w") as log:
        server = subprocess.Popen([sys.executable, "-m", "facesift", "serve", "--port", str(port)], env=env, cwd=REPO,
                                  stdout=log, stderr=log)
    deadline = time.monotonic() + 180
    while True:
        try:
            if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return server
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            raise SystemExit(f"the service did not start; see {work / 'server.log'}")
        time.sleep(0.2)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def reset_peak(pid: int) -> None:
    """Start the peak (VmHWM) afresh from the current RSS (Linux >= 4.0)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def large_jpeg(face: bytes, size: tuple[int, int] = (7680, 5160)) -> bytes:
    """A 39.6 Mpx JPEG of about a megabyte: a face photo, enlarged, on a plain background."""
    import io

    from PIL import Image

    canvas = Image.new("RGB", size, (120, 128, 136))
    photo = Image.open(io.BytesIO(face)).convert("RGB")
    photo = photo.resize((photo.width * 8, photo.height * 8))
    canvas.paste(photo, (size[0] // 3, size[1] // 4))
    out = io.BytesIO()
    canvas.save(out, format="JPEG", quality=80)
    return out.getvalue()


def large_jpeg_phase(face: bytes, seconds: float) -> dict:
    """Server RSS under 39.6 Mpx JPEGs (detect from 2 clients for ``seconds``, then an enrolment of 8), with
    reduced decoding (the default decode_pixels) and without it (the baseline), each on a fresh server."""
    from facesift.server.keys import KeyStore

    data = large_jpeg(face)
    rows = {}
    for label, settings in (("decode_pixels 8 Mpx (default)", {}), ("full decode (baseline)", {"decode_pixels": "1000000000"})):
        work = Path(tempfile.mkdtemp(prefix="facesift-bench-large-"))
        _, key = KeyStore(work / "keys.json").create("benchmark", admin=True)
        port = free_port()
        server = start_service(work, port, **settings)
        url, auth = f"http://127.0.0.1:{port}", {"X-API-Key": key}
        try:
            requests.post(url + "/v1/galleries", headers=auth, json={"name": "large"}, timeout=30).raise_for_status()
            idle = rss_mb(server.pid)
            reset_peak(server.pid)
            statuses: Counter = Counter()
            stop = time.monotonic() + seconds

            def client() -> None:
                while time.monotonic() < stop:
                    r = requests.post(url + "/v1/detect", headers=auth, files={"image": ("big.jpg", data, "image/jpeg")}, timeout=300)
                    statuses[r.status_code] += 1

            threads = [threading.Thread(target=client) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            detect_peak = peak_rss_mb(server.pid)
            reset_peak(server.pid)
            files = [("images", (f"{i}.jpg", data, "image/jpeg")) for i in range(8)]
            enrol = requests.post(url + "/v1/galleries/large/persons/big/samples", headers=auth, files=files, timeout=600)
            statuses[enrol.status_code] += 1
            rows[label] = {"idle_mb": round(idle), "detect_peak_mb": round(detect_peak), "enrol_peak_mb": round(peak_rss_mb(server.pid)),
                           "after_mb": round(rss_mb(server.pid)), "statuses": dict(statuses),
                           "faces_found": len(requests.post(url + "/v1/detect", headers=auth, timeout=300,
                                                            files={"image": ("big.jpg", data, "image/jpeg")}).json()["faces"])}
        finally:
            server.terminate()
            server.wait(timeout=60)
    return {"jpeg_bytes": len(data), "rows": rows}


def report_large(large: dict) -> bool:
    """Print the large-JPEG phase; True when reduced decoding kept each peak under half the baseline's growth."""
    print(f"\n# 39.6 Mpx JPEG ({large['jpeg_bytes']:,} bytes): server RSS in MB; detect from 2 clients, then one enrolment of 8")
    print(f"{'server':<32} {'idle':>6} {'detect peak':>12} {'enrol peak':>11} {'after':>6}  faces  statuses")
    for label, row in large["rows"].items():
        print(f"{label:<32} {row['idle_mb']:>6} {row['detect_peak_mb']:>12} {row['enrol_peak_mb']:>11} {row['after_mb']:>6}  "
              f"{row['faces_found']:>5}  {row['statuses']}")
    reduced, full = large["rows"].values()
    ratios = [(reduced[k] - reduced["idle_mb"]) / max(1, full[k] - full["idle_mb"]) for k in ("detect_peak_mb", "enrol_peak_mb")]
    print(f"peak growth over idle, reduced / full decode: detect {ratios[0]:.2f}, enrolment {ratios[1]:.2f} (target < 0.5)")
    print(json.dumps({"large_jpeg": large}))
    return all(r < 0.5 for r in ratios) and reduced["faces_found"] == full["faces_found"] and set(reduced["statuses"]) == {200}


def photos(people: int) -> dict[str, list[bytes]]:
    """Three photos each of the first ``people`` celeba300 identities: two to enrol, one to query."""
    folders = sorted(p for p in (FACES / "celeba300").iterdir() if p.is_dir())
    chosen = {}
    for folder in folders:
        files = sorted(folder.iterdir())
        if len(files) >= 3:
            chosen[folder.name] = [f.read_bytes() for f in files[:3]]
        if len(chosen) == people:
            break
    return chosen


class Workload:
    """Alternating verify and search requests over the people's photos, the same for every phase."""

    def __init__(self, people: dict[str, list[bytes]]) -> None:
        self.items = list(people.items())

    def job(self, n: int) -> tuple[str, bytes, bytes]:
        _, files = self.items[n % len(self.items)]
        return ("verify" if n % 2 == 0 else "search"), files[0], files[2]


def summarise(latencies: list[float], elapsed: float, statuses: Counter) -> dict:
    values = np.asarray(latencies) * 1000 if latencies else np.zeros(1)
    ok = statuses.get(200, 0)
    return {
        "requests": sum(statuses.values()),
        "ok_per_s": round(ok / elapsed, 2),
        "p50_ms": round(float(np.percentile(values, 50)), 1),
        "p99_ms": round(float(np.percentile(values, 99)), 1),
        "mean_ms": round(float(values.mean()), 1),
        "statuses": dict(sorted(statuses.items())),
    }


def http_call(session: requests.Session, url: str, job: tuple[str, bytes, bytes]) -> requests.Response:
    kind, a, b = job
    if kind == "verify":
        files = {"image_a": ("a.jpg", a, "image/jpeg"), "image_b": ("b.jpg", b, "image/jpeg")}
        return session.post(f"{url}/v1/verify", files=files, timeout=60)
    return session.post(f"{url}/v1/galleries/bench/search", files={"image": ("q.jpg", b, "image/jpeg")}, timeout=60)


def direct_call(gallery, pipeline, job: tuple[str, bytes, bytes]) -> None:
    from facesift.verification import verify_images

    kind, a, b = job
    if kind == "verify":
        verify_images(pipeline, a, b)
    else:
        gallery.search(b, k=5)


def http_phase(url: str, key: str, workload: Workload, clients: int, duration: float) -> dict:
    latencies: list[float] = []
    statuses: Counter = Counter()
    lock = threading.Lock()
    counter = iter(range(10**9))
    stop = time.monotonic() + duration

    def client() -> None:
        session = requests.Session()
        session.headers["X-API-Key"] = key
        while time.monotonic() < stop:
            with lock:
                job = workload.job(next(counter))
            started = time.perf_counter()
            response = http_call(session, url, job)
            took = time.perf_counter() - started
            with lock:
                statuses[response.status_code] += 1
                if response.status_code == 200:
                    latencies.append(took)
            if response.status_code == 503:
                time.sleep(0.05)  # a polite client backs off (shorter than Retry-After, to keep the pressure on)

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return summarise(latencies, time.perf_counter() - started, statuses)


def paired_phase(gallery, pipeline, url: str, key: str, workload: Workload, duration: float) -> tuple[dict, dict]:
    """Each job through the Python API, then the same job over HTTP: one at a time, interleaved, so a
    busy machine slows both alike and the difference is the HTTP overhead."""
    session = requests.Session()
    session.headers["X-API-Key"] = key
    direct: list[float] = []
    http: list[float] = []
    statuses: Counter = Counter()
    n = 0
    stop = time.monotonic() + duration
    started = time.perf_counter()
    while time.monotonic() < stop:
        job = workload.job(n)
        n += 1
        t0 = time.perf_counter()
        direct_call(gallery, pipeline, job)
        t1 = time.perf_counter()
        response = http_call(session, url, job)
        t2 = time.perf_counter()
        statuses[response.status_code] += 1
        direct.append(t1 - t0)
        http.append(t2 - t1)
    elapsed = time.perf_counter() - started
    return summarise(direct, elapsed, Counter({200: n})), summarise(http, elapsed, statuses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60, help="seconds of each concurrent phase")
    parser.add_argument("--baseline-duration", type=float, default=30, help="seconds of the one-at-a-time phase")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients below capacity (capacity is 6)")
    parser.add_argument("--overload-clients", type=int, default=16)
    parser.add_argument("--people", type=int, default=50)
    parser.add_argument("--large-seconds", type=float, default=30, help="seconds of 39.6 Mpx JPEG detections per server")
    parser.add_argument("--large-only", action="store_true", help="run only the large-JPEG memory phase")
    args = parser.parse_args()
    if args.large_only:
        report_large(large_jpeg_phase(photos(1).popitem()[1][0], args.large_seconds))
        return

    from facesift.gallery import open_gallery
    from facesift.pipeline import Pipeline
    from facesift.server.keys import KeyStore

    people = photos(args.people)
    workload = Workload(people)
    work = Path(tempfile.mkdtemp(prefix="facesift-bench-service-"))
    _, key = KeyStore(work / "keys.json").create("benchmark", admin=True)
    port = free_port()
    server = start_service(work, port)
    url = f"http://127.0.0.1:{port}"
    try:
        auth = {"X-API-Key": key}
        requests.post(url + "/v1/galleries", headers=auth, json={"name": "bench"}, timeout=30).raise_for_status()
        pipeline = Pipeline(workers=2)
        gallery = open_gallery(f"sqlite:///{work}/direct.db", pipeline=pipeline)
        for person, files in people.items():
            upload = [("images", (f"{i}.jpg", data, "image/jpeg")) for i, data in enumerate(files[:2])]
            requests.post(f"{url}/v1/galleries/bench/persons/{person}/samples", headers=auth, files=upload, timeout=60).raise_for_status()
            gallery.enroll(person, files[:2])
        http_phase(url, key, workload, 2, 5)  # warm-up
        rss_before = rss_mb(server.pid)

        direct, single = paired_phase(gallery, pipeline, url, key, workload, args.baseline_duration)
        results = {"direct Python API, 1 at a time": direct, "HTTP, 1 client (interleaved with direct)": single}
        results[f"HTTP, {args.clients} clients"] = http_phase(url, key, workload, args.clients, args.duration)
        rss_mid = rss_mb(server.pid)
        results[f"HTTP, {args.overload_clients} clients (over capacity)"] = http_phase(
            url, key, workload, args.overload_clients, args.duration)
        rss_after = rss_mb(server.pid)
        gallery.close()
    finally:
        server.terminate()
        server.wait(timeout=30)

    direct, single = direct["mean_ms"], single["mean_ms"]
    below = results[f"HTTP, {args.clients} clients"]["statuses"]
    over = results[f"HTTP, {args.overload_clients} clients (over capacity)"]["statuses"]
    print(f"# facesift service benchmark ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)")
    print(f"# {len(people)} people enrolled (2 photos each, celeba300); requests: verify and search alternately")
    print(f"# server: 2 workers + queue of 4 (capacity 6); duration {args.duration:g} s per concurrent phase\n")
    print(f"{'phase':<44} {'requests':>8} {'ok/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'mean ms':>8}  statuses")
    for name, row in results.items():
        print(
            f"{name:<44} {row['requests']:>8} {row['ok_per_s']:>7} {row['p50_ms']:>7} {row['p99_ms']:>7} "
            f"{row['mean_ms']:>8}  {row['statuses']}"
        )
    overhead = (single - direct) / single
    growth = rss_after - rss_before
    print(f"\nHTTP overhead per request: {single - direct:.1f} ms of {single:.1f} ms = {overhead:.1%} (target < 20%)")
    print(f"errors below capacity: {sum(v for k, v in below.items() if k != 200)} (target 0)")
    print(f"over capacity: statuses {over} (target: only 200 and 503)")
    print(f"server RSS: {rss_before:.0f} MB after warm-up, {rss_mid:.0f} MB after the below-capacity phase, "
          f"{rss_after:.0f} MB at the end: {growth:+.0f} MB (bound {RSS_BOUND_MB} MB)")
    print(json.dumps({"overhead": round(overhead, 4), "rss_growth_mb": round(growth, 1), "results": results}))
    large_ok = report_large(large_jpeg_phase(next(iter(people.values()))[0], args.large_seconds))
    failed = not large_ok or overhead >= 0.2 or set(below) != {200} or not set(over) <= {200, 503} or growth > RSS_BOUND_MB
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

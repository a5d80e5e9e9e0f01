"""The service under hours-like mixed traffic: flat memory and files, no 5xx, no lost acknowledged write.

    python benchmarks/soak.py [--minutes 30] [--clients 4] [--sample-every 60]

Starts `facesift serve` as its own process on 127.0.0.1 (2 workers, a queue of 4: capacity 6, as
benchmarks/service.py measures it; 4 clients keep it busy without 503s), creates two galleries (one that
keeps images) and sends, for ``--minutes``, a random mix from ``--clients`` clients: verify, search,
detect, check, person listings, enrolments (one celeba300 photo at a time), sample and person deletions
and, now and then, a whole scratch gallery created, filled and deleted. Each client owns its own people,
so the acknowledged state of every gallery is known exactly. Every ``--sample-every`` seconds it records
the server's RSS, open files and threads and the window's latency and statuses. At the end every gallery
is read from its SQLite file and compared with what was acknowledged: every acknowledged sample is there
and nothing else is.

Bounds (exit 1 when one fails): no 5xx and no client error, RSS growth after the first sample at most
``--rss-bound`` MB, open files at the end at most 8 more than after the first sample, zero lost or
phantom samples.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sqlite3
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from service import FACES, free_port, rss_mb, start_service

GALLERIES = ("soak-kept", "soak-plain")
#: operation -> weight of the mix
MIX = {"verify": 20, "search": 20, "detect": 8, "check": 8, "list": 6, "enrol": 22, "delete_sample": 10,
       "delete_person": 4, "scratch_gallery": 2}


def people_photos(count: int) -> dict[str, list[bytes]]:
    """Up to six photos each of ``count`` celeba300 identities with at least four."""
    chosen: dict[str, list[bytes]] = {}
    for folder in sorted(p for p in (FACES / "celeba300").iterdir() if p.is_dir()):
        files = sorted(folder.iterdir())
        if len(files) >= 4:
            chosen[folder.name] = [f.read_bytes() for f in files[:6]]
        if len(chosen) == count:
            break
    return chosen


@dataclass
class Ledger:
    """What the server acknowledged: gallery -> sample id -> person. Samples whose fate is unknown (a
    request that failed without an answer) are kept apart, so they count neither as lost nor as phantom."""

    samples: dict[str, dict[str, str]] = field(default_factory=lambda: {g: {} for g in GALLERIES})
    uncertain: set[str] = field(default_factory=set)  # sample ids
    uncertain_enrol: set[tuple[str, str]] = field(default_factory=set)  # (gallery, person)
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Window:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    operations: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


class Soak:
    def __init__(self, url: str, key: str, people: dict[str, list[bytes]], clients: int, seed: int) -> None:
        self.url, self.people = url, people
        self.session_headers = {"X-API-Key": key}
        self.ledger = Ledger()
        self.window = Window()
        self.total = Window()
        self.lock = threading.Lock()
        names = sorted(people)
        self.owned = [names[i::clients] for i in range(clients)]  # each client enrols and deletes only its own people
        self.seed = seed

    def record(self, operation: str, status: int | None, took: float, detail: str = "") -> None:
        with self.lock:
            for window in (self.window, self.total):
                window.operations[operation] += 1
                window.statuses[status or "no answer"] += 1
                if status is not None and status < 500:
                    window.latencies.append(took)
                if status is None or status >= 500:
                    window.failures.append(f"{operation}: {status} {detail[:200]}")

    def take_window(self) -> Window:
        with self.lock:
            window, self.window = self.window, Window()
        return window

    def client(self, number: int, stop: float) -> None:
        rng = random.Random(self.seed * 1000 + number)
        session = requests.Session()
        session.headers.update(self.session_headers)
        operations, weights = zip(*MIX.items(), strict=True)
        while time.monotonic() < stop:
            operation = rng.choices(operations, weights)[0]
            started = time.perf_counter()
            try:
                status, detail = getattr(self, operation)(session, rng, self.owned[number])
            except requests.RequestException as exc:
                status, detail = None, repr(exc)
            self.record(operation, status, time.perf_counter() - started, detail)
            if status == 503:
                time.sleep(0.2)

    # --- operations: each returns (status, detail) and keeps the ledger --------------------------------------
    def _photo(self, rng: random.Random, person: str | None = None) -> tuple[str, bytes]:
        person = person or rng.choice(list(self.people))
        return person, rng.choice(self.people[person])

    def verify(self, session, rng, _owned):
        (_, a), (_, b) = self._photo(rng), self._photo(rng)
        r = session.post(
            f"{self.url}/v1/verify", files={"image_a": ("a.jpg", a, "image/jpeg"), "image_b": ("b.jpg", b, "image/jpeg")}, timeout=120
        )
        return r.status_code, r.text

    def search(self, session, rng, _owned):
        _, photo = self._photo(rng)
        r = session.post(f"{self.url}/v1/galleries/{rng.choice(GALLERIES)}/search", files={"image": ("q.jpg", photo, "image/jpeg")},
                         data={"k": "3"}, timeout=120)
        return r.status_code, r.text

    def detect(self, session, rng, _owned):
        _, photo = self._photo(rng)
        r = session.post(f"{self.url}/v1/detect", files={"image": ("q.jpg", photo, "image/jpeg")}, timeout=120)
        return r.status_code, r.text

    def check(self, session, rng, owned):
        person, photo = self._photo(rng, rng.choice(owned))
        r = session.post(f"{self.url}/v1/galleries/{rng.choice(GALLERIES)}/persons/{person}/check",
                         files={"image": ("q.jpg", photo, "image/jpeg")}, timeout=120)
        return r.status_code, r.text  # 404 when the person is not enrolled there (yet)

    def list(self, session, rng, _owned):
        r = session.get(f"{self.url}/v1/galleries/{rng.choice(GALLERIES)}/persons", params={"limit": 200}, timeout=60)
        return r.status_code, r.text

    def enrol(self, session, rng, owned):
        gallery = rng.choice(GALLERIES)
        person, photo = self._photo(rng, rng.choice(owned))
        try:
            r = session.post(f"{self.url}/v1/galleries/{gallery}/persons/{person}/samples",
                             files={"images": ("e.jpg", photo, "image/jpeg")}, timeout=120)
        except requests.RequestException:
            with self.ledger.lock:
                self.ledger.uncertain_enrol.add((gallery, person))
            raise
        if r.status_code == 200:
            for result in r.json()["results"]:
                if result["outcome"] == "added":
                    with self.ledger.lock:
                        self.ledger.samples[gallery][result["sample_id"]] = person
        return r.status_code, r.text

    def delete_sample(self, session, rng, owned):
        gallery = rng.choice(GALLERIES)
        with self.ledger.lock:
            mine = [s for s, p in self.ledger.samples[gallery].items() if p in owned]
            if not mine:
                return 200, "nothing to delete"
            sample = rng.choice(mine)
            person = self.ledger.samples[gallery].pop(sample)
        try:
            r = session.delete(f"{self.url}/v1/galleries/{gallery}/samples/{sample}", timeout=60)
        except requests.RequestException:
            with self.ledger.lock:
                self.ledger.uncertain.add(sample)
            raise
        if r.status_code != 204:
            with self.ledger.lock:
                self.ledger.samples[gallery][sample] = person  # refused: still there
        return r.status_code, r.text

    def delete_person(self, session, rng, owned):
        gallery = rng.choice(GALLERIES)
        person = rng.choice(owned)
        with self.ledger.lock:
            theirs = {s: p for s, p in self.ledger.samples[gallery].items() if p == person}
            for sample in theirs:
                del self.ledger.samples[gallery][sample]
        try:
            r = session.delete(f"{self.url}/v1/galleries/{gallery}/persons/{person}", timeout=60)
        except requests.RequestException:
            with self.ledger.lock:
                self.ledger.uncertain.update(theirs)
            raise
        if r.status_code == 404 and theirs:
            return 598, f"{person} not found in {gallery} with {len(theirs)} acknowledged samples"
        if r.status_code == 200 and r.json()["samples_removed"] != len(theirs):
            return 599, f"removed {r.json()['samples_removed']} samples of {person}, {len(theirs)} acknowledged"
        if r.status_code not in (200, 404):
            with self.ledger.lock:
                self.ledger.samples[gallery].update(theirs)
        return (200 if r.status_code == 404 and not theirs else r.status_code), r.text

    def scratch_gallery(self, session, rng, owned):
        name = f"scratch-{rng.randrange(10**9)}"
        r = session.post(f"{self.url}/v1/galleries", json={"name": name, "keep_images": rng.random() < 0.5}, timeout=60)
        if r.status_code != 201:
            return r.status_code, r.text
        person, photo = self._photo(rng, rng.choice(owned))
        r = session.post(
            f"{self.url}/v1/galleries/{name}/persons/{person}/samples", files={"images": ("e.jpg", photo, "image/jpeg")}, timeout=120
        )
        if r.status_code != 200:
            return r.status_code, r.text
        r = session.delete(f"{self.url}/v1/galleries/{name}", timeout=60)
        return (r.status_code if r.status_code != 204 else 200), r.text


def stored_samples(galleries_dir: Path, gallery: str) -> dict[str, str]:
    """sample id -> person id, read from the gallery's SQLite file (read-only)."""
    with sqlite3.connect(f"file:{galleries_dir / gallery / 'gallery.db'}?mode=ro", uri=True) as db:
        return dict(db.execute("SELECT s.sample_id, p.person_id FROM samples s JOIN persons p USING (pkey)"))


def process_sample(pid: int) -> dict:
    return {"rss_mb": round(rss_mb(pid), 1), "open_files": len(os.listdir(f"/proc/{pid}/fd")),
            "threads": len(os.listdir(f"/proc/{pid}/task"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30, help="how long the traffic runs")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients (the server's capacity is 6)")
    parser.add_argument("--sample-every", type=float, default=60, help="seconds between samples")
    parser.add_argument("--people", type=int, default=48)
    parser.add_argument("--rss-bound", type=float, default=64, help="MB of RSS growth allowed after the first sample")
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()

    people = people_photos(args.people)
    work = Path(tempfile.mkdtemp(prefix="facesift-soak-"))
    from facesift.server.keys import KeyStore

    _, key = KeyStore(work / "keys.json").create("soak", admin=True)
    port = free_port()
    server = start_service(work, port)
    url = f"http://127.0.0.1:{port}"
    soak = Soak(url, key, people, args.clients, args.seed)
    samples: list[dict] = []
    try:
        for name in GALLERIES:
            requests.post(url + "/v1/galleries", headers=soak.session_headers, json={"name": name, "keep_images": name == "soak-kept"},
                          timeout=60).raise_for_status()
        began = time.monotonic()
        stop = began + args.minutes * 60
        threads = [threading.Thread(target=soak.client, args=(n, stop), daemon=True) for n in range(args.clients)]
        for thread in threads:
            thread.start()
        print(f"{'minute':>6} {'rss MB':>7} {'files':>5} {'threads':>7} {'requests':>8} {'p50 ms':>7} {'p99 ms':>7}  statuses", flush=True)
        next_sample = began + args.sample_every
        while True:
            alive = any(t.is_alive() for t in threads)
            if alive and time.monotonic() < next_sample:
                time.sleep(min(1.0, next_sample - time.monotonic()))
                continue
            if not alive and samples and samples[-1]["requests"] == 0:
                break
            next_sample += args.sample_every
            window = soak.take_window()
            if not alive and not window.statuses:
                break
            latencies = np.asarray(window.latencies or [0.0]) * 1000
            row = process_sample(server.pid) | {
                "minute": round((time.monotonic() - began) / 60, 2), "requests": sum(window.statuses.values()),
                "p50_ms": round(float(np.percentile(latencies, 50)), 1), "p99_ms": round(float(np.percentile(latencies, 99)), 1),
                "statuses": {str(k): v for k, v in sorted(window.statuses.items(), key=str)}}
            samples.append(row)
            print(f"{row['minute']:>6} {row['rss_mb']:>7} {row['open_files']:>5} {row['threads']:>7} {row['requests']:>8} "
                  f"{row['p50_ms']:>7} {row['p99_ms']:>7}  {row['statuses']}", flush=True)
            if not alive:
                break
        health = requests.get(url + "/readyz", timeout=10).status_code
    finally:
        server.terminate()
        server.wait(timeout=60)

    consistency = {}
    for gallery in GALLERIES:
        stored = stored_samples(work / "galleries", gallery)
        acknowledged = soak.ledger.samples[gallery]
        lost = sorted(set(acknowledged) - set(stored))
        phantom = sorted(s for s in set(stored) - set(acknowledged)
                         if s not in soak.ledger.uncertain and (gallery, stored[s]) not in soak.ledger.uncertain_enrol)
        wrong_person = sorted(s for s in set(stored) & set(acknowledged) if stored[s] != acknowledged[s])
        consistency[gallery] = {"acknowledged": len(acknowledged), "stored": len(stored), "lost": len(lost),
                                "phantom": len(phantom), "wrong_person": len(wrong_person)}
    total = soak.total
    server_errors = sum(v for k, v in total.statuses.items() if k == "no answer" or int(k) >= 500)
    first, last = samples[0], samples[-1]
    growth = last["rss_mb"] - first["rss_mb"]
    files_growth = last["open_files"] - first["open_files"]
    print(f"\n# facesift soak ({platform.processor() or platform.machine()}, {os.cpu_count()} cores): {args.minutes:g} min, "
          f"{args.clients} clients, server 2 workers + queue 4; {len(people)} celeba300 people")
    print(f"requests: {sum(total.statuses.values())}, by operation {dict(sorted(total.operations.items()))}")
    print(f"statuses: {dict(sorted(total.statuses.items(), key=str))}; 5xx or no answer: {server_errors} (target 0)")
    print(f"server RSS: {first['rss_mb']} MB at minute {first['minute']}, {last['rss_mb']} MB at the end: {growth:+.1f} MB "
          f"(bound {args.rss_bound:g} MB); max {max(s['rss_mb'] for s in samples)} MB")
    print(
        f"open files: {first['open_files']} -> {last['open_files']}; threads: {first['threads']} -> {last['threads']}; "
        f"/readyz at the end: {health}"
    )
    for gallery, row in consistency.items():
        print(f"gallery {gallery}: {row}")
    if total.failures:
        print("failures:", *total.failures[:20], sep="\n  ")
    print(json.dumps({"samples": samples, "consistency": consistency, "statuses": {str(k): v for k, v in total.statuses.items()},
                      "rss_growth_mb": round(growth, 1), "uncertain": len(soak.ledger.uncertain)}))
    failed = (server_errors or growth > args.rss_bound or files_growth > 8 or health != 200
              or any(row["lost"] or row["phantom"] or row["wrong_person"] for row in consistency.values()))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

"""The embedded gallery at scale: 1,000,000 enrolled 128-d vectors against brute-force numpy in the same run.

    python benchmarks/gallery.py [--n 1000000] [--queries 1000] [--dir /tmp/facesift-gallery-bench] [--reuse]

The vectors: every celeba300 SFace embedding (real) plus synthetic people of 10 samples shaped like the
real ones (a centre from the Gaussian fitted to the real people's means, plus per-sample deviations from
the Gaussian fitted to the real within-person deviations), L2-normalised. Steps: insert
them all through ``Gallery.add_samples`` (SQLite + the usearch HNSW index, built once, as it goes);
close (the index is saved beside the database); then, in a fresh process that loads the saved index
(so its peak RSS is what a serving process needs), time queries. Queries: half are enrolled real
embeddings plus noise (a new photo of someone enrolled, cosine about 0.7 to the original), half one sample
each of new synthetic people (strangers). recall@1 is the fraction of queries whose nearest sample by the
index is the nearest by exact search. Baseline: numpy brute force (one matrix-vector product).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from facesift.gallery import Sample, open_gallery  # noqa: E402
from facesift.recognition import load_card  # noqa: E402

SERVE = """
import json, sys, time
import numpy as np
sys.path.insert(0, sys.argv[3])
from facesift.gallery import open_gallery
started = time.perf_counter()
gallery = open_gallery(sys.argv[1], aggregation=sys.argv[4], exact_below=0)
opened = time.perf_counter() - started
queries = np.load(sys.argv[2])
out = {"open_s": opened, "sweep": {}}
for ef in (64, 128, 256):
    gallery.expansion_search = ef
    gallery.nearest_samples(queries[:50])  # warm up
    times, top, sims = [], [], []
    for q in queries:
        t = time.perf_counter(); hit = gallery.nearest_samples(q, 1)[0]; times.append(time.perf_counter() - t)
        top.append(hit[0][0]); sims.append(hit[0][2])
    people_times = []
    for q in queries:
        t = time.perf_counter(); gallery.search_embeddings(q, k=5); people_times.append(time.perf_counter() - t)
    out["sweep"][ef] = {"sample_ms": (1000 * np.percentile(times, [50, 99])).tolist(), "search_ms": (1000 * np.percentile(people_times, [50, 99])).tolist(), "top": top, "sim": sims}
gallery.exact_below = 10**12  # the same index searched exhaustively: where does exact stop being as fast?
times = []
for q in queries[:20]:
    t = time.perf_counter(); gallery.nearest_samples(q, 1); times.append(time.perf_counter() - t)
out["exact_ms"] = 1000 * float(np.median(times))
gallery.close()
# VmHWM, not ru_maxrss: after fork + exec, ru_maxrss still carries the parent's peak
out["peak_rss_mb"] = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")) / 1024
print(json.dumps(out))
"""


def real_embeddings() -> tuple[np.ndarray, np.ndarray]:
    from gallery_identification import celeba_embeddings

    data = celeba_embeddings(Path(os.environ.get("FACESIFT_CELEBA_CACHE", "/tmp/celeba300-sface.npz")))
    return data["emb"][data["ok"]].astype(np.float32), data["persons"][data["ok"]]


def _gaussian_factor(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and Cholesky factor of the Gaussian fitted to ``vectors``."""
    cov = np.cov(vectors, rowvar=False)
    return vectors.mean(axis=0), np.linalg.cholesky(cov + 1e-6 * np.eye(vectors.shape[1]))


def synthetic(real: np.ndarray, real_people: np.ndarray, count: int, seed: int, per_person: int = 10) -> np.ndarray:
    """Synthetic people shaped like the real ones, normalised like real embeddings.

    Face embeddings cluster by identity, so each synthetic person gets a centre drawn from the Gaussian
    fitted to the real people's mean embeddings, and each of their samples adds a draw from the Gaussian
    fitted to the real within-person deviations (both with full covariance).
    """
    rng = np.random.default_rng(seed)
    names, person_index = np.unique(real_people, return_inverse=True)
    centres = np.stack([real[person_index == i].mean(axis=0) for i in range(len(names))])
    centre_mean, centre_factor = _gaussian_factor(centres)
    _, within_factor = _gaussian_factor(real - centres[person_index])
    out = np.empty((count, real.shape[1]), np.float32)
    for start in range(0, count, 100_000):
        size = min(100_000, count - start)
        people = centre_mean + rng.standard_normal((-(-size // per_person), real.shape[1])) @ centre_factor.T
        block = np.repeat(people, per_person, axis=0)[:size] + rng.standard_normal((size, real.shape[1])) @ within_factor.T
        out[start : start + size] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def build(folder: Path, n: int, real: np.ndarray, real_people: np.ndarray) -> np.ndarray:
    """Insert ``n`` vectors through the gallery (SQLite + HNSW built as it goes); returns the vectors."""
    vectors = np.concatenate([real, synthetic(real, real_people, n - len(real), seed=1)])
    people = np.concatenate([real_people, np.array([f"synthetic-{i // 10}" for i in range(n - len(real))])])
    print(f"vectors: {len(real):,} real celeba300 + {n - len(real):,} synthetic = {n:,}, {len(set(people)):,} people")
    from usearch.index import Index

    index_seconds = 0.0
    add = Index.add

    def timed_add(self, *a, **kw):
        nonlocal index_seconds
        started = time.perf_counter()
        try:
            return add(self, *a, **kw)
        finally:
            index_seconds += time.perf_counter() - started

    Index.add = timed_add
    started = time.perf_counter()
    with open_gallery(folder / "gallery.db", save_every=10**9) as gallery:
        for start in range(0, n, 50_000):
            stop = min(start + 50_000, n)
            gallery.add_samples(Sample(f"s{i}", str(people[i]), vectors[i], "sface", 1.0, f"h{i}", 0.0) for i in range(start, stop))
        inserted = time.perf_counter() - started
        saving = time.perf_counter()
    saved = time.perf_counter() - saving
    Index.add = add
    print(f"insert: {n:,} samples in {inserted:.1f} s = {n / inserted:,.0f} samples/s "
          f"(HNSW build inside it: {index_seconds:.1f} s = {n / index_seconds:,.0f} vectors/s on {os.cpu_count()} threads; "
          f"SQLite writes {inserted - index_seconds:.1f} s)")
    print(f"close + save index: {saved:.1f} s")
    return vectors


def stored_vectors(folder: Path) -> np.ndarray:
    """The enrolled vectors back from SQLite, in insertion order (sample id s<i> is row i)."""
    import sqlite3

    db = sqlite3.connect(f"file:{folder / 'gallery.db'}?mode=ro", uri=True)
    rows = db.execute("SELECT sample_id, embedding FROM samples").fetchall()
    vectors = np.empty((len(rows), 128), np.float32)
    for sample_id, blob in rows:
        vectors[int(sample_id[1:])] = np.frombuffer(blob, "<f4")
    return vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/facesift-gallery-bench"))
    parser.add_argument("--reuse", action="store_true", help="query the gallery a previous run left in --dir instead of building one")
    args = parser.parse_args()
    print(f"# facesift gallery benchmark, {datetime.date.today()}, {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    real, real_people = real_embeddings()
    if args.reuse and (args.dir / "gallery.db").is_file():
        vectors = stored_vectors(args.dir)
        print(f"reusing the {len(vectors):,}-vector gallery in {args.dir} (built by an earlier run)")
    else:
        shutil.rmtree(args.dir, ignore_errors=True)
        args.dir.mkdir(parents=True)
        vectors = build(args.dir, args.n, real, real_people)
    n = len(vectors)
    disk = {p.name: p.stat().st_size for p in args.dir.iterdir() if p.is_file()}
    print(f"disk: database {disk.get('gallery.db', 0) / 2**20:,.0f} MB, index {disk.get('gallery.db.usearch', 0) / 2**20:,.0f} MB")

    # --- queries ---------------------------------------------------------------------------------------
    rng = np.random.default_rng(2)
    half = args.queries // 2
    known = real[rng.choice(len(real), half, replace=False)] + rng.normal(0, 0.07, (half, real.shape[1])).astype(np.float32)
    queries = np.concatenate([known, synthetic(real, real_people, args.queries - half, seed=3, per_person=1)])
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    np.save(args.dir / "queries.npy", queries.astype(np.float32))

    times, exact_top, exact_sim = [], [], []
    for q in queries:
        started = time.perf_counter()
        sims = vectors @ q
        best = int(np.argmax(sims))
        times.append(time.perf_counter() - started)
        exact_top.append(best)
        exact_sim.append(float(sims[best]))
    brute = np.percentile(times, [50, 99]) * 1000
    print(f"baseline numpy brute force, 1 query: p50 {brute[0]:.2f} ms, p99 {brute[1]:.2f} ms")
    del vectors

    served = subprocess.run(
        [sys.executable, "-c", SERVE, f"sqlite:///{args.dir}/gallery.db", str(args.dir / "queries.npy"), str(REPO), "mean_top"],
        capture_output=True, text=True, check=True,
    )
    result = json.loads(served.stdout.strip().splitlines()[-1])
    print(f"serving process: open (load saved index) {result['open_s']:.1f} s, peak RSS {result['peak_rss_mb']:,.0f} MB")
    threshold = load_card("sface").threshold_for(None)
    exact_sim = np.array(exact_sim)
    for ef, row in result["sweep"].items():
        found = np.array([int(sample_id[1:]) for sample_id in row["top"]])
        hit = found == np.array(exact_top)
        agree = np.mean((np.array(row["sim"]) >= threshold) == (exact_sim >= threshold))
        shortfall = np.mean(exact_sim[half:] - np.array(row["sim"])[half:])
        print(
            f"HNSW expansion_search {ef:>3}: nearest sample p50 {row['sample_ms'][0]:.3f} ms, p99 {row['sample_ms'][1]:.3f} ms, "
            f"speed-up over brute force (p50) {brute[0] / row['sample_ms'][0]:.1f}x; recall@1 {hit.mean():.4f} "
            f"(enrolled people {hit[:half].mean():.4f}, strangers {hit[half:].mean():.4f}; strangers' nearest found "
            f"{shortfall:.4f} below the exact one on average; match/unknown decision as exact search: {100 * agree:.1f} %); "
            f"search_embeddings k=5 (people, mean_top) p50 {row['search_ms'][0]:.3f} ms, p99 {row['search_ms'][1]:.3f} ms"
        )
    hnsw = result["sweep"]["128"]["sample_ms"][0]
    print(f"exhaustive search of the same index: {result['exact_ms']:.2f} ms per query at {n:,}; "
          f"as fast as HNSW (ef 128) below about {n * hnsw / result['exact_ms']:,.0f} samples")
    print(f"this process peak RSS (holds the {n:,} vectors for the baseline): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()

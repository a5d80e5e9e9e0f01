"""The embedded gallery at a million people: HNSW beside exact search (float32 numpy and the quantised index).

    python benchmarks/gallery.py [--people 1000000] [--checkpoints 100000,300000] [--queries 1000]
        [--threshold T] [--fpir 0.01] [--ef 32,64,128] [--connectivity C] [--expansion-add E] [--dtype i8]
        [--dir /tmp/facesift-gallery-bench] [--reuse]

The people, one enrolment sample each (the profile-photo case): 2/3 of the celeba300 people (real, seeded
split), each from their first photo that passes the quality check, and **synthetic** people beyond them,
shaped like the real ones (a centre from the Gaussian fitted to the real people's means, plus a deviation
from the Gaussian fitted to the real within-person deviations, L2-normalised). Probes, four kinds of a
quarter each: other real photos of the enrolled real people; a second synthetic sample of enrolled synthetic
people; real photos of the celeba300 people never enrolled; new synthetic people (strangers).

Every sample goes in through ``Gallery.add_samples`` (SQLite + the usearch index, built as it goes). At each
checkpoint size (and at the end) the index is saved and a fresh process opens the gallery (so its peak RSS
is what a serving process needs) and times, one probe at a time: the people search (``search_embeddings``,
k=1: HNSW proposals, then exact float32 scores of the best people) at each ``--ef``, and the exact quantised
path (the same index scanned exhaustively with SIMD, then the same float32 re-rank). The reference is exact
float32 search (numpy, one matrix-vector product per probe; also the latency baseline). Reported: recall@1
(the person found is exact search's) per probe kind; for enrolled people's probes, how often the path finds the
enrolled person where exact search ranks them first (when exact search ranks somebody else first, the probe is
a near-tie among strangers that no approximate index reproduces and no decision depends on); and the decision
(match or unknown, and who) against exact search's at the decision threshold, for all probes. Latency is wall time and process CPU time per
probe: the machine is shared, and CPU time is what the search itself costs.

The decision threshold (``--threshold``; default: the gallery's own open-set operating point for ``--people``
people at ``--fpir``, from the SFace card's calibrated impostor table and its generalised Pareto tail, as
``Gallery.search`` uses it; used at the checkpoints too, where it is stricter than their own point).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from facesift.gallery import Sample, open_gallery, operating_point  # noqa: E402
from facesift.recognition.base import load_card  # noqa: E402

KINDS = ("enrolled, real", "enrolled, synthetic", "stranger, real", "stranger, synthetic")

SERVE = """
import json, sys, time
import numpy as np
sys.path.insert(0, sys.argv[3])
from facesift.gallery import open_gallery
started = time.perf_counter()
gallery = open_gallery(sys.argv[1], exact_below=0)
opened = time.perf_counter() - started
queries = np.load(sys.argv[2])
out = {"open_s": opened, "sweep": {}}

def timed(call, rows):
    walls, cpus, found = [], [], []
    for q in rows:
        w, c = time.perf_counter(), time.process_time()
        hit = call(q)
        cpus.append(time.process_time() - c); walls.append(time.perf_counter() - w)
        found.append(hit)
    return (1000 * np.percentile(walls, [50, 99])).tolist(), (1000 * np.percentile(cpus, [50, 99])).tolist(), found

def people(q):
    top = gallery.search_embeddings(q, k=1)[0][0]
    return top.person_id, top.similarity

index = gallery.store._index  # the usearch index alone: what its settings cost, without the SQLite re-rank
for ef in json.loads(sys.argv[4]):
    gallery.expansion_search = ef
    gallery.search_embeddings(queries[:50], k=1)  # warm up
    wall, cpu, found = timed(people, queries)
    index_wall, index_cpu, _ = timed(lambda q: index.search(q, 32), queries)
    out["sweep"][ef] = {"wall_ms": wall, "cpu_ms": cpu, "index_wall_ms": index_wall, "index_cpu_ms": index_cpu,
                        "person": [p for p, _ in found], "sim": [s for _, s in found]}
gallery.exact_below = 10**12  # the same index scanned exhaustively (quantised vectors, SIMD), then re-ranked
found = [[(top.person_id, top.similarity)] for top in (row[0] for row in gallery.search_embeddings(queries, k=1))]
probe_rows = queries[:: max(1, len(queries) // 40)]
wall, cpu, _ = timed(people, probe_rows)
index_wall, index_cpu, _ = timed(lambda q: index.search(q, 32, exact=True), probe_rows)
out["exact_index"] = {"wall_ms": wall, "cpu_ms": cpu, "index_wall_ms": index_wall, "index_cpu_ms": index_cpu,
                      "person": [f[0][0] for f in found], "sim": [f[0][1] for f in found]}
out["index"] = gallery.stats().index
gallery.close()
# VmHWM, not ru_maxrss: after fork + exec, ru_maxrss still carries the parent's peak
out["peak_rss_mb"] = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")) / 1024
print(json.dumps(out))
"""


def real_embeddings() -> dict[str, np.ndarray]:
    from gallery_identification import celeba_embeddings

    data = celeba_embeddings(Path(os.environ.get("FACESIFT_CELEBA_CACHE", "/tmp/celeba300-sface.npz")))
    ok = data["ok"]
    return {"emb": data["emb"][ok].astype(np.float32), "persons": data["persons"][ok], "acceptable": data["acceptable"][ok]}


def _gaussian_factor(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and Cholesky factor of the Gaussian fitted to ``vectors``."""
    cov = np.cov(vectors, rowvar=False)
    return vectors.mean(axis=0), np.linalg.cholesky(cov + 1e-6 * np.eye(vectors.shape[1]))


def synthetic(real: np.ndarray, real_people: np.ndarray, count: int, seed: int, per_person: int = 1) -> np.ndarray:
    """Synthetic people shaped like the real ones, normalised like real embeddings; ``per_person`` consecutive rows each.

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


def derived_threshold(people: int, fpir: float) -> tuple[float, str]:
    """The gallery's own open-set operating point for ``people`` people of one sample each at ``fpir``: the
    threshold every 1:N path of the library would use (the SFace card's calibrated table and tail model)."""
    point = operating_point(load_card("sface"), people, fpir)
    return point.threshold, f"the gallery's operating point: {point.describe()}"


def plan(real: dict[str, np.ndarray], people: int, queries: int, seed: int = 0) -> tuple[dict, np.ndarray, np.ndarray]:
    """Who is enrolled (rows in gallery order, first the probed ones) and the probes, with their kinds."""
    emb, persons, acceptable = real["emb"], real["persons"], real["acceptable"]
    rng = np.random.default_rng(seed)
    names = rng.permutation(np.unique(persons))
    enrolled_names = set(names[: 2 * len(names) // 3])
    enrol_rows, known_rows, stranger_rows = [], [], []
    for name in sorted(set(persons)):
        rows = np.flatnonzero(persons == name)
        if name not in enrolled_names:
            stranger_rows.extend(rows)
            continue
        first = next((r for r in rows if acceptable[r]), None)
        if first is None:
            continue
        enrol_rows.append(first)
        known_rows.extend(r for r in rows if r != first)
    quarter = queries // 4
    paired = synthetic(emb, persons, 2 * quarter, seed=4, per_person=2)  # one enrolled, one probe each
    filler = synthetic(emb, persons, people - len(enrol_rows) - quarter, seed=1)
    vectors = np.concatenate([emb[enrol_rows], paired[0::2], filler])
    ids = [f"celeba-{persons[r]}" for r in enrol_rows] + [f"synthetic-{i}" for i in range(len(vectors) - len(enrol_rows))]
    known_probes = rng.choice(known_rows, quarter, replace=False)
    probes = np.concatenate([
        emb[known_probes],
        paired[1::2],
        emb[rng.choice(stranger_rows, quarter, replace=False)],
        synthetic(emb, persons, queries - 3 * quarter, seed=3),
    ])
    kinds = np.repeat(np.arange(4), [quarter, quarter, quarter, queries - 3 * quarter])
    # each enrolled person's probe belongs to: the real person of the photo, or the synthetic person it was drawn for
    truth = [f"celeba-{persons[r]}" for r in known_probes] + [ids[len(enrol_rows) + i] for i in range(quarter)]
    info = {"truth": truth, "real_enrolled": len(enrol_rows), "real_known_photos": len(known_rows), "real_strangers": len(set(persons[stranger_rows]))}
    return {"vectors": vectors, "ids": ids, **info}, probes.astype(np.float32), kinds


def exact_reference(vectors: np.ndarray, probes: np.ndarray, block: int = 50_000) -> tuple[np.ndarray, np.ndarray]:
    """Row of the nearest enrolled vector and its float32 similarity, per probe (exact, blocked)."""
    best = np.full(len(probes), -np.inf, np.float32)
    where = np.zeros(len(probes), np.int64)
    for start in range(0, len(vectors), block):
        sims = vectors[start : start + block] @ probes.T
        top = np.argmax(sims, axis=0)
        value = sims[top, np.arange(len(probes))]
        better = value > best
        best[better], where[better] = value[better], top[better] + start
    return where, best


def report(n: int, data: dict, probes: np.ndarray, kinds: np.ndarray, threshold: float, served: dict, folder: Path) -> None:
    (folder / f"served-{n}.json").write_text(json.dumps(served))  # to re-read at another threshold
    vectors = data["vectors"][:n]
    ids = np.array(data["ids"][:n])
    where, best = exact_reference(vectors, probes)
    exact_person = ids[where]
    times = []
    for q in probes[:: max(1, len(probes) // 100)]:
        started = time.perf_counter()
        int(np.argmax(vectors @ q))
        times.append(time.perf_counter() - started)
    brute = 1000 * np.percentile(times, [50, 99])
    exact_match = best >= threshold
    fpir = exact_match[kinds >= 2].mean()
    enrolled = kinds < 2
    truth = np.array(data["truth"])
    exact_mate = exact_person[enrolled] == truth  # the enrolled person is exact search's rank 1
    disk = {p.name: p.stat().st_size for p in folder.iterdir() if p.is_file()}
    print(f"\n## {n:,} people ({data['real_enrolled']} real, {n - data['real_enrolled']:,} synthetic), "
          f"{datetime.datetime.now():%Y-%m-%d %H:%M}, load average {os.getloadavg()[0]:.1f}")
    print(f"disk: database {disk.get('gallery.db', 0) / 2**20:,.0f} MB, index {disk.get('gallery.db.usearch', 0) / 2**20:,.0f} MB; "
          f"serving process: open {served['open_s']:.1f} s, peak RSS {served['peak_rss_mb']:,.0f} MB")
    print(f"exact search (the reference) at threshold {threshold:.4f}: matches {100 * exact_match[kinds < 2].mean():.1f} % of enrolled "
          f"people's probes, FPIR {100 * fpir:.2f} % of strangers (real {100 * exact_match[kinds == 2].mean():.2f} %, "
          f"synthetic {100 * exact_match[kinds == 3].mean():.2f} %); ranks the enrolled person first for "
          f"{100 * exact_mate.mean():.1f} % of their probes (real {100 * exact_mate[kinds[enrolled] == 0].mean():.1f} %, "
          f"synthetic {100 * exact_mate[kinds[enrolled] == 1].mean():.1f} %)")
    print(f"baseline numpy float32 brute force, 1 probe: p50 {brute[0]:.2f} ms, p99 {brute[1]:.2f} ms (wall)")
    rows = [(f"HNSW ef {ef}", row) for ef, row in served["sweep"].items()] + [("exact, quantised index", served["exact_index"])]
    print("| path | enrolled person found where exact search ranks them first (real / synthetic) "
          "| recall@1 enrolled (real / synthetic) | recall@1 strangers (real / synthetic) | decision = exact's, all probes "
          "| people search p50 wall / CPU ms | p99 wall / CPU ms | index alone p50 wall / CPU ms |")
    print("|---|---|---|---|---|---|---|---|")
    for name, row in rows:
        person, sim = np.array(row["person"]), np.array(row["sim"])
        hit = person == exact_person
        match = sim >= threshold
        agree = (match == exact_match) & (~match | (person == exact_person))
        per = [hit[kinds == k].mean() for k in range(4)]
        mate = (person[enrolled] == truth)[exact_mate]
        mate_kind = kinds[enrolled][exact_mate]
        print(f"| {name} | {mate.mean():.4f} ({mate[mate_kind == 0].mean():.4f} / {mate[mate_kind == 1].mean():.4f}) "
              f"| {hit[kinds < 2].mean():.4f} ({per[0]:.4f} / {per[1]:.4f}) | {hit[kinds >= 2].mean():.4f} "
              f"({per[2]:.4f} / {per[3]:.4f}) | {100 * agree.mean():.2f} % ({int((~agree).sum())} differ) | "
              f"{row['wall_ms'][0]:.2f} / {row['cpu_ms'][0]:.2f} | {row['wall_ms'][1]:.2f} / {row['cpu_ms'][1]:.2f} | "
              f"{row['index_wall_ms'][0]:.2f} / {row['index_cpu_ms'][0]:.2f} |")
    print(f"index: {json.dumps({k: v for k, v in served['index'].items() if k not in ('file', 'log_position', 'exact_below', 'search')})}")
    sys.stdout.flush()


def serve(folder: Path, efs: list[int]) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", SERVE, f"sqlite:///{folder}/gallery.db", str(folder / "queries.npy"), str(REPO), json.dumps(efs)],
        capture_output=True, text=True, check=False,
    )
    if done.returncode:
        raise SystemExit(f"serving process failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--checkpoints", default="100000,300000", help="smaller sizes measured on the way (comma-separated)")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--threshold", type=float, default=None, help="decision threshold (default: derived, see --fpir)")
    parser.add_argument("--fpir", type=float, default=1e-2, help="target FPIR the default threshold is derived for")
    parser.add_argument("--ef", default="32,64,128", help="HNSW expansion_search values to sweep")
    parser.add_argument("--connectivity", type=int, default=None, help="HNSW connectivity (default: the gallery's)")
    parser.add_argument("--expansion-add", type=int, default=None, help="HNSW expansion_add (default: the gallery's)")
    parser.add_argument("--dtype", default=None, help="index vector type, f16 / i8 / f32 (default: the gallery's)")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/facesift-gallery-bench"))
    parser.add_argument("--reuse", action="store_true", help="query the gallery a previous run left in --dir (same --people)")
    args = parser.parse_args()
    efs = [int(e) for e in args.ef.split(",")]
    print(f"# facesift gallery benchmark, {datetime.date.today()}, {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; {' '.join(sys.argv[1:])}")
    real = real_embeddings()
    data, probes, kinds = plan(real, args.people, args.queries)
    print(f"people: {data['real_enrolled']} real celeba300 (one photo each) + {args.people - data['real_enrolled']:,} synthetic; "
          f"probes: " + ", ".join(f"{np.sum(kinds == k)} {name}" for k, name in enumerate(KINDS))
          + f" (real probes from {data['real_known_photos']:,} other photos and {data['real_strangers']} people never enrolled)")
    if args.threshold is None:
        threshold, how = derived_threshold(args.people, args.fpir)
        print(f"decision threshold {threshold:.4f} (derived: {how})")
    else:
        threshold = args.threshold
        print(f"decision threshold {threshold:.4f} (--threshold)")
    options = {
        k: v
        for k, v in (("connectivity", args.connectivity), ("expansion_add", args.expansion_add), ("dtype", args.dtype))
        if v is not None
    }
    sizes = sorted({int(c) for c in args.checkpoints.split(",") if c and int(c) < args.people} | {args.people})
    if args.reuse and (args.dir / "gallery.db").is_file():
        print(f"reusing the gallery in {args.dir} (built by an earlier run)")
        report(args.people, data, probes, kinds, threshold, serve(args.dir, efs), args.dir)
        return
    shutil.rmtree(args.dir, ignore_errors=True)
    args.dir.mkdir(parents=True)
    np.save(args.dir / "queries.npy", probes)
    vectors, ids = data["vectors"], data["ids"]
    inserted = 0.0
    with open_gallery(args.dir / "gallery.db", save_every=10**9, **options) as gallery:
        print(f"index: {json.dumps({k: v for k, v in gallery.stats().index.items() if k not in ('file', 'log_position')})}")
        done = 0
        for size in sizes:
            started = time.perf_counter()
            for start in range(done, size, 50_000):
                stop = min(start + 50_000, size)
                gallery.add_samples(Sample(f"s{i}", ids[i], vectors[i], "sface", 1.0, f"h{i}", 0.0) for i in range(start, stop))
            inserted += time.perf_counter() - started
            done = size
            saving = time.perf_counter()
            gallery.save_index()
            print(f"\ninsert: {size:,} samples in {inserted:.1f} s so far = {size / inserted:,.0f} samples/s on {os.cpu_count()} threads "
                  f"(nice, shared machine); save index {time.perf_counter() - saving:.1f} s")
            report(size, data, probes, kinds, threshold, serve(args.dir, efs), args.dir)


if __name__ == "__main__":
    main()

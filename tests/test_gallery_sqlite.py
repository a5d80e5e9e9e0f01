"""The embedded backend's durability: the index is a cache of SQLite, other processes see commits, kill -9 loses nothing."""

from __future__ import annotations

import base64
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import numpy as np

from facesift.gallery import Sample, open_gallery

REPO = Path(__file__).resolve().parents[1]


def random_samples(count: int, people: int, seed: int) -> list[Sample]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((count, 128)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [Sample(uuid.uuid4().hex, f"p{i % people}", v, "sface", 0.9, f"{seed}-{i}", time.time()) for i, v in enumerate(vectors)]


def assert_consistent(path: Path) -> dict:
    """Reopen: the index holds exactly SQLite's samples, and each sample finds itself first (exact search)."""
    with open_gallery(path) as gallery:
        stats = gallery.stats()
        assert stats.index["vectors"] == stats.samples
        export = path.with_suffix(".check.jsonl.gz")
        gallery.export(export)
        samples = [json.loads(line) for line in gzip.open(export, "rt")][1:]
        samples = [s for s in samples if s["type"] == "sample"]
        assert len(samples) == stats.samples
        if samples:
            vectors = np.stack([np.frombuffer(base64.b64decode(s["embedding"]), "<f4") for s in samples])
            found = gallery.nearest_samples(vectors, 1)
            hits = sum(row[0][0] == s["sample_id"] for row, s in zip(found, samples, strict=True) if row)
            assert hits == len(samples)
        return {"samples": stats.samples, "ids": {s["sample_id"] for s in samples}}


def test_the_approximate_index_forgets_removed_vectors(tmp_path):
    with open_gallery(tmp_path / "g.db", exact_below=0) as gallery:
        samples = random_samples(2000, 100, seed=1)
        gallery.add_samples(samples)
        probe = samples[7].embedding
        assert gallery.stats().index["search"] == "approximate"
        assert gallery.search_embeddings(probe, k=1)[0][0].sample_id == samples[7].sample_id
        gallery.remove_sample(samples[7].sample_id)
        assert all(c.sample_id != samples[7].sample_id for c in gallery.search_embeddings(probe, k=10)[0])
        gallery.remove("p8")
        assert all(c.person_id != "p8" for c in gallery.search_embeddings(samples[8].embedding, k=100)[0])
    assert_consistent(tmp_path / "g.db")


def test_index_file_is_rebuilt_when_missing_stale_or_corrupt(tmp_path):
    path = tmp_path / "g.db"
    index_file, sidecar = Path(f"{path}.usearch"), Path(f"{path}.usearch.json")
    with open_gallery(path) as gallery:
        gallery.add_samples(random_samples(500, 50, seed=2))
    assert index_file.is_file() and json.loads(sidecar.read_text())["samples"] == 500
    shutil.copy(index_file, tmp_path / "old.usearch")
    shutil.copy(sidecar, tmp_path / "old.json")
    with open_gallery(path) as gallery:
        more = random_samples(300, 30, seed=3)
        gallery.add_samples(more)
        gallery.remove("p1")
    expected = assert_consistent(path)["samples"]
    assert expected == 800 - 10 - 10  # p1 had 10 of the first batch and 10 of the second
    # stale: an older index file and its sidecar put back
    shutil.copy(tmp_path / "old.usearch", index_file)
    shutil.copy(tmp_path / "old.json", sidecar)
    assert assert_consistent(path)["samples"] == expected
    index_file.unlink()  # missing
    assert assert_consistent(path)["samples"] == expected
    index_file.write_bytes(os.urandom(4096))  # corrupt
    sidecar.write_text(json.dumps({"seq": 10**9, "dims": 128}))
    assert assert_consistent(path)["samples"] == expected


def test_a_second_connection_sees_commits_and_removals(tmp_path):
    path = tmp_path / "g.db"
    with open_gallery(path, exact_below=0) as writer, open_gallery(path, exact_below=0) as reader:
        first = random_samples(200, 20, seed=4)
        writer.add_samples(first)
        assert reader.search_embeddings(first[3].embedding, k=1)[0][0].sample_id == first[3].sample_id
        writer.remove("p3")
        assert all(c.person_id != "p3" for c in reader.search_embeddings(first[3].embedding, k=20)[0])
        assert reader.stats().samples == 190
        writer.save_index()  # prunes the change log: the reader must fall back on the saved file
        second = random_samples(50, 5, seed=5)
        writer.add_samples(second)
        assert reader.search_embeddings(second[0].embedding, k=1)[0][0].sample_id == second[0].sample_id
        assert reader.stats().index["vectors"] == 240


READER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from facesift.gallery import open_gallery
    gallery = open_gallery(sys.argv[1], exact_below=0)
    vectors = np.load(sys.argv[2])
    deadline = time.time() + 60

    def wait(done):
        while not done():
            if time.time() > deadline:
                print("TIMEOUT", flush=True)
                sys.exit(1)
            time.sleep(0.01)

    for step, vector in enumerate(vectors):  # each vector is written by the parent after the last was seen
        wait(lambda: [hit[0] for hit in gallery.nearest_samples(vector, 1)[0]] == [f"v{step}"])
        print("SEEN", step, flush=True)
    wait(lambda: gallery.stats().samples == 0)  # then the parent removes everyone
    print("GONE", gallery.nearest_samples(vectors[0], 1)[0], flush=True)
    """
)


def test_another_process_sees_each_commit_and_removal(tmp_path):
    path = tmp_path / "g.db"
    samples = random_samples(600, 6, seed=7)
    vectors = np.stack([s.embedding for s in samples[:5]])
    np.save(tmp_path / "probes.npy", vectors)
    with open_gallery(path) as writer:
        writer.add_samples(samples[5:])  # the reader starts on a gallery that already holds samples
        env = dict(os.environ, PYTHONPATH=str(REPO))
        reader = subprocess.Popen(
            [sys.executable, "-c", READER, str(path), str(tmp_path / "probes.npy")], stdout=subprocess.PIPE, text=True, env=env
        )
        try:
            for step in range(5):
                writer.add_samples([Sample(f"v{step}", "probe", vectors[step], "sface", 1.0, f"v{step}", 0.0)])
                assert reader.stdout.readline().split() == ["SEEN", str(step)]
            for person in [p.person_id for p in writer.list_persons()]:
                writer.remove(person)
            assert reader.stdout.readline().strip() == "GONE []"
        finally:
            reader.kill()
            reader.wait(timeout=30)


WRITER = textwrap.dedent(
    """
    import sys, uuid, time
    import numpy as np
    from pathlib import Path
    from facesift.gallery import open_gallery, Sample, EnrollOutcome
    gallery_path, mode = sys.argv[1], sys.argv[2]
    gallery = open_gallery(gallery_path, save_every=700)
    if mode == "images":
        for folder in sorted(Path(sys.argv[3]).iterdir())[:40]:
            def ack(result):
                if result.outcome is EnrollOutcome.ADDED:
                    print("ACK", result.sample_id, flush=True)
            gallery.enroll(folder.name, sorted(folder.iterdir()), on_result=ack)
    else:
        rng = np.random.default_rng(0)
        while True:
            vectors = rng.standard_normal((500, 128)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            batch = [Sample(uuid.uuid4().hex, f"p{i % 97}", v, "sface", 1.0, uuid.uuid4().hex, time.time()) for i, v in enumerate(vectors)]
            gallery.add_samples(batch)
            print("ACK", " ".join(s.sample_id for s in batch), flush=True)
    print("DONE", flush=True)
    """
)


def run_and_kill(path: Path, mode: str, acks_before_kill: int, *extra: str) -> set[str]:
    """Start a writer, SIGKILL it once it has acknowledged enough, return every acknowledged sample id."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), mode, *extra], stdout=subprocess.PIPE, text=True, env=env, cwd=REPO
    )
    acknowledged: set[str] = set()
    lines = 0
    try:
        for line in process.stdout:
            assert not line.startswith("DONE"), "the writer finished before it could be killed: give it more work"
            if line.startswith("ACK"):
                acknowledged.update(line.split()[1:])
                lines += 1
                if lines >= acks_before_kill:
                    os.kill(process.pid, signal.SIGKILL)
                    break
    finally:
        process.kill()
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    return acknowledged


def test_a_writer_killed_mid_enrolment_loses_nothing_acknowledged(tmp_path, faces):
    path = tmp_path / "g.db"
    acknowledged = run_and_kill(path, "images", 30, str(faces / "celeba300"))
    state = assert_consistent(path)
    assert len(acknowledged) == 30 and acknowledged <= state["ids"]
    assert state["samples"] - len(acknowledged) <= 1  # at most the sample being committed when killed


def test_a_writer_killed_mid_bulk_load_leaves_whole_batches(tmp_path):
    path = tmp_path / "g.db"
    acknowledged = run_and_kill(path, "bulk", 4)
    state = assert_consistent(path)
    assert acknowledged <= state["ids"]
    assert state["samples"] % 500 == 0 and state["samples"] - len(acknowledged) <= 500
    with open_gallery(path) as gallery:  # and the gallery takes writes again
        gallery.add_samples(random_samples(10, 2, seed=6))
        assert gallery.stats().samples == state["samples"] + 10


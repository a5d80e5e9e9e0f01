"""HNSW settings on the gallery benchmark's people, without the gallery: raw usearch indexes side by side.

    python benchmarks/hnsw_settings.py PEOPLE DTYPE:CONNECTIVITY:EXPANSION_ADD [...]
    e.g. python benchmarks/hnsw_settings.py 200000 i8:32:128 f16:32:128 f32:32:128

Same people and probes as ``benchmarks/gallery.py`` (its ``plan``); for each index and expansion_search: how often
the index (16 proposals, re-ranked exactly) finds the enrolled person where exact search ranks them first, how often
it finds exact search's top-1, and the index's CPU time per probe (p50).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gallery import exact_reference, plan, real_embeddings  # noqa: E402  (benchmarks/gallery.py; loads onnxruntime)
from usearch.index import Index  # noqa: E402  (after onnxruntime: usearch 2.26 imported first makes onnxruntime's import crash)


def main() -> None:
    people, configs = int(sys.argv[1]), sys.argv[2:]
    data, probes, kinds = plan(real_embeddings(), people, 1000)
    vectors, ids, truth = data["vectors"][:people], np.array(data["ids"][:people]), np.array(data["truth"])
    where, _ = exact_reference(vectors, probes)
    enrolled = kinds < 2
    exact_first = ids[where][enrolled] == truth
    print(f"{people:,} people: exact search ranks the enrolled person first for {exact_first.mean():.3f} of their probes")
    for config in configs:
        dtype, connectivity, expansion_add = config.split(":")
        index = Index(ndim=vectors.shape[1], metric="ip", dtype=dtype, connectivity=int(connectivity), expansion_add=int(expansion_add))
        started = time.perf_counter()
        index.add(np.arange(people), vectors, threads=2)
        build = time.perf_counter() - started
        for ef in (32, 64, 128):
            index.expansion_search = ef
            cpu, found = [], []
            for probe in probes:
                clock = time.process_time()
                keys = index.search(probe, 16).keys
                cpu.append(time.process_time() - clock)
                found.append(keys[np.argmax(vectors[keys] @ probe)])
            found = np.array(found)
            mate = (ids[found][enrolled] == truth)[exact_first].mean()
            print(f"{config} (build {build:.0f} s) ef {ef}: enrolled person found {mate:.4f}, exact top-1 found "
                  f"{(found == where).mean():.4f}, index p50 CPU {1000 * np.median(cpu):.2f} ms")


if __name__ == "__main__":
    main()

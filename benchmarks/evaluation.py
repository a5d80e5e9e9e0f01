"""How long a full celeba300 pairs evaluation takes from a cold embedding cache, and from a warm one, in one run.

    python benchmarks/evaluation.py

The cold run embeds every image the pairs file touches (5,151 of celeba300's 6,263) into an empty cache in a
temporary folder; the warm run repeats the same command, which must only hash the files. The target is under
5 minutes cold on 2 cores; the ratio says what the cache saves.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from facesift.evaluation import evaluate_pairs
from facesift.pipeline import get_pipeline

REPO = Path(__file__).resolve().parents[1]
FACES = Path(os.environ.get("FACESIFT_FACES_DIR", REPO.parent / "shared" / "faces"))


def main() -> None:
    data, pairs = FACES / "celeba300", FACES / "celeba300-pairs.txt"
    get_pipeline()  # model loading is not part of either run
    with tempfile.TemporaryDirectory() as cache:
        times = []
        for label in ("cold", "warm"):
            started = time.perf_counter()
            report = evaluate_pairs(data, pairs, cache_dir=Path(cache))
            times.append(time.perf_counter() - started)
            print(f"{label}: {times[-1]:.1f} s, {report.images:,} images ({report.cached_images:,} from the cache), "
                  f"10-fold accuracy {100 * report.accuracy:.2f} ± {100 * report.accuracy_std:.2f} %")
    cpu = os.cpu_count()
    print(f"cold: {report.images / times[0]:.1f} images/s on {cpu} cores; warm run {times[0] / times[1]:.0f}x faster")


if __name__ == "__main__":
    main()

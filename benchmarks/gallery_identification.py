"""Open-set identification on celeba300 through the gallery: rank-1, DIR at FPIR, and the two aggregations.

    python benchmarks/gallery_identification.py [--enrol 5] [--cache /tmp/celeba300-sface.npz]

Half the people (seeded split) are enrolled from their first ``--enrol`` photos whose face passes the
quality check; their other photos are "known" probes. The other half never enrolled: all their photos
are "unknown" probes. Reported per aggregation (best sample vs mean of the top 3 samples):
rank-1 (closed set, known probes), DIR (found, ranked first, and above the threshold) at the false
positive identification rate FPIR (unknown probes whose best candidate reaches the threshold) at
thresholds chosen on the unknown probes, and at the model card's calibrated per-comparison thresholds,
which shows how a per-comparison false-match rate grows into a per-search false-alarm rate.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from facesift.gallery import (
    Sample,  # noqa: E402
    open_gallery,  # noqa: E402
)
from facesift.recognition import load_card  # noqa: E402

FACES = Path(os.environ.get("FACESIFT_FACES_DIR", REPO.parent / "shared" / "faces"))


def celeba_embeddings(cache: Path | None) -> dict[str, np.ndarray]:
    """Every celeba300 photo's largest-face embedding, quality flag and person (cached to ``cache``)."""
    if cache is not None and cache.is_file():
        return dict(np.load(cache))
    import facesift

    root = FACES / "celeba300"
    paths = [root / p / f for p in sorted(os.listdir(root)) for f in sorted(os.listdir(root / p))]
    results = facesift.get_pipeline().represent_batch(paths, policy="largest")
    data = {
        "emb": np.stack([r.faces[0].embedding if r.faces else np.zeros(128, np.float32) for r in results]),
        "ok": np.array([bool(r.faces) for r in results]),
        "acceptable": np.array([bool(r.faces) and r.faces[0].quality.acceptable for r in results]),
        "persons": np.array([p.parent.name for p in paths]),
        "paths": np.array([str(p) for p in paths]),
    }
    if cache is not None:
        np.savez(cache, **data)
    return data


def split(data: dict[str, np.ndarray], enrol: int, seed: int = 0):
    persons = sorted(set(data["persons"]))
    rng = np.random.default_rng(seed)
    known = set(rng.permutation(persons)[: len(persons) // 2])
    gallery, known_probes, unknown_probes = [], [], []
    for person in persons:
        rows = np.flatnonzero((data["persons"] == person) & data["ok"])
        if person not in known:
            unknown_probes.extend(rows)
            continue
        chosen = [r for r in rows if data["acceptable"][r]][:enrol]
        gallery.extend(chosen)
        known_probes.extend(r for r in rows if r not in set(chosen))
    return np.array(gallery), np.array(known_probes), np.array(unknown_probes)


def evaluate(data, gallery_rows, known_rows, unknown_rows, aggregation: str, folder: Path) -> list[str]:
    uri = f"sqlite:///{folder}/{aggregation}.db"
    with open_gallery(uri, aggregation=aggregation) as gallery:
        gallery.add_samples(
            Sample(f"s{row}", str(data["persons"][row]), data["emb"][row], "sface", 1.0, f"row{row}", 0.0) for row in gallery_rows
        )
        known = gallery.search_embeddings(data["emb"][known_rows], k=1)
        unknown = gallery.search_embeddings(data["emb"][unknown_rows], k=1)
    truth = data["persons"][known_rows]
    top_person = np.array([c[0].person_id for c in known])
    top_known = np.array([c[0].similarity for c in known])
    top_unknown = np.sort(np.array([c[0].similarity for c in unknown]))[::-1]
    correct = top_person == truth
    lines = [f"{aggregation:9s} rank-1 {100 * correct.mean():.2f} % ({correct.sum()}/{len(correct)})"]
    for fpir in (0.01, 0.1):
        threshold = top_unknown[max(int(fpir * len(top_unknown)) - 1, 0)] + 1e-6
        dir_ = (correct & (top_known >= threshold)).mean()
        lines.append(f"{aggregation:9s} DIR at FPIR {fpir:g}: {100 * dir_:.2f} % (threshold {threshold:.3f})")
    card = load_card("sface")
    for fmr in sorted((float(k) for k in card.thresholds), reverse=True):
        threshold = card.threshold_for(fmr)
        fpir = (top_unknown >= threshold).mean()
        dir_ = (correct & (top_known >= threshold)).mean()
        lines.append(
            f"{aggregation:9s} card threshold {threshold:.4f} (per-comparison FMR {fmr:g}): DIR {100 * dir_:.2f} %, FPIR {100 * fpir:.2f} %"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--enrol", type=int, default=5, help="photos enrolled per known person")
    parser.add_argument("--cache", type=Path, default=None, help="an .npz to keep the embeddings in between runs")
    args = parser.parse_args()
    data = celeba_embeddings(args.cache)
    gallery_rows, known_rows, unknown_rows = split(data, args.enrol)
    known_people = len(set(data["persons"][gallery_rows]))
    print(
        f"# celeba300 open-set identification: {known_people} people enrolled with up to {args.enrol} photos "
        f"({len(gallery_rows)} samples); {len(known_rows)} known probes, {len(unknown_rows)} unknown probes "
        f"from {len(set(data['persons'][unknown_rows]))} people never enrolled"
    )
    with tempfile.TemporaryDirectory() as folder:
        for aggregation in ("best", "mean_top"):
            for line in evaluate(data, gallery_rows, known_rows, unknown_rows, aggregation, Path(folder)):
                print(line)


if __name__ == "__main__":
    main()

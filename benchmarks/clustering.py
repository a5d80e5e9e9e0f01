"""Clustering faces by person with identities hidden: our method against HDBSCAN and a fixed-distance DBSCAN, one run.

    python benchmarks/clustering.py [--sets celeba300,pins90,fiw-dev]

The method is chosen on the people of celeba300's folds 1-5 (the pairs file's identity-disjoint folds), among
agglomerative linkages cut at the model card's calibrated thresholds and HDBSCAN; it is then reported, beside
HDBSCAN and DBSCAN at a fixed cosine distance of 0.5 with at least 3 faces (Immich's defaults, what photo
apps ship), on folds 6-10, on all of celeba300, on pins90 and on fiw-dev. Every image's largest face
(embeddings from the evaluation cache, ``facesift evaluate`` fills the same one); images without a face are
left out. Measures: pairwise precision/recall, BCubed precision/recall/F, clusters against true people.
On fiw-dev it also counts how often relatives are merged: of the related pairs of people in the kinship
file, the share whose faces share a cluster, against the same share for unrelated pairs.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FACES = Path(os.environ.get("FACESIFT_FACES_DIR", REPO.parent / "shared" / "faces"))


def identity_folders(root: Path, depth: int = 1, per_person: int | None = None) -> tuple[list[Path], list[str]]:
    from facesift.image import IMAGE_SUFFIXES

    people = sorted(p for p in root.glob("/".join(["*"] * depth)) if p.is_dir() and not p.name.startswith(("_", ".")))
    images, labels = [], []
    for person in people:
        for image in [f for f in sorted(person.iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES][:per_person]:
            images.append(image)
            labels.append(str(person.relative_to(root)))
    return images, labels


def celeba_fold_people() -> tuple[set[str], set[str]]:
    """People of folds 1-5 and of folds 6-10 of celeba300-pairs.txt (10 folds x 600 lines)."""
    lines = (FACES / "celeba300-pairs.txt").read_text().splitlines()[1:]
    first, second = set(), set()
    for number, line in enumerate(lines):
        parts = line.split("\t")
        names = {parts[0]} if len(parts) == 3 else {parts[0], parts[2]}
        (first if number < 3000 else second).update(names)
    return first, second - first


def embed(images: list[Path], labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    from facesift.evaluation.embeddings import embed_images

    found = embed_images(images)
    keep = [i for i, image in enumerate(images) if found.vectors.get(image) is not None]
    vectors = np.stack([found.vectors[images[i]] for i in keep])
    return vectors, np.array([labels[i] for i in keep])


def candidates(card) -> dict[str, dict]:
    from facesift.cluster.core import cut_similarity

    out = {}
    for linkage in ("average", "complete", "single"):
        for fmr in (1e-2, 1e-3, 1e-4):
            out[f"agglomerative {linkage}, cut at FMR {fmr:g}"] = dict(
                method="agglomerative", linkage=linkage, similarity=cut_similarity(card, fmr)
            )
    out["hdbscan (min 2)"] = dict(method="hdbscan", similarity=0.0, min_cluster_size=2)
    return out


def report(name: str, label: str, vectors: np.ndarray, truth: np.ndarray, options: dict) -> tuple:
    from facesift.cluster.core import cluster_vectors, score_clusters

    started = time.perf_counter()
    predicted = cluster_vectors(vectors, **options)
    s = score_clusters(predicted, truth)
    print(f"{name:10s} {label:42s} pairwise P {s.pairwise_precision:.3f} R {s.pairwise_recall:.3f}  "
          f"BCubed P {s.bcubed_precision:.3f} R {s.bcubed_recall:.3f} F {s.bcubed_f:.3f}  "
          f"clusters {s.clusters} / {s.true_people} people ({s.noise} noise)  {time.perf_counter() - started:.1f} s", flush=True)
    return s, predicted


def relatives(predicted: np.ndarray, truth: np.ndarray) -> None:
    """Of related / unrelated pairs of people (same family, different families), the share that share a cluster."""
    pairs = set()
    with open(FACES / "fiw-dev-relationships.csv") as handle:
        for row in csv.DictReader(handle):
            pairs.add(tuple(sorted((row["p1"], row["p2"]))))
    clusters: dict[str, set] = {}
    for label, person in zip(predicted, truth, strict=True):
        if label >= 0:  # noise is nobody's cluster
            clusters.setdefault(person, set()).add(int(label))
        else:
            clusters.setdefault(person, set())
    people = sorted(clusters)
    related = [(a, b) for a, b in pairs if a in clusters and b in clusters]
    merged_related = sum(bool(clusters[a] & clusters[b]) for a, b in related)
    same_family = [(a, b) for a, b in itertools.combinations(people, 2) if a.split("/")[0] == b.split("/")[0] and (a, b) not in pairs]
    other = [(a, b) for a, b in itertools.combinations(people, 2) if a.split("/")[0] != b.split("/")[0]]
    merged_other = sum(bool(clusters[a] & clusters[b]) for a, b in other)
    print(f"           relatives merged: {merged_related} of {len(related)} related pairs of people "
          f"({100 * merged_related / max(1, len(related)):.1f} %); unrelated people from different families: "
          f"{merged_other} of {len(other)} ({100 * merged_other / max(1, len(other)):.2f} %); "
          f"same family, not listed as related: {len(same_family)} pairs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="celeba300,pins90,fiw-dev")
    parser.add_argument("--max-per-person", type=int, default=None, help="Cap the photos per person of the sets after celeba300")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from facesift.cluster.core import DBSCAN_DISTANCE, DBSCAN_MIN_FACES, DEFAULT_FALSE_MATCH_RATE, cut_similarity
    from facesift.recognition import load_card

    card = load_card("sface")
    print(f"# facesift clustering benchmark, {time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    images, labels = identity_folders(FACES / "celeba300")
    vectors, truth = embed(images, labels)
    tune, held_out = celeba_fold_people()
    in_tune = np.isin(truth, sorted(tune))
    in_held = np.isin(truth, sorted(held_out))
    print(f"choosing on celeba300 folds 1-5: {int(in_tune.sum())} faces of {len(tune)} people")
    scores = {label: report("folds 1-5", label, vectors[in_tune], truth[in_tune], options)[0].bcubed_f
              for label, options in candidates(card).items()}
    chosen = max(scores, key=scores.get)
    print(f"chosen: {chosen} (library default: agglomerative average, FMR {DEFAULT_FALSE_MATCH_RATE:g})")
    methods = {
        "ours: " + chosen: candidates(card)[chosen],
        "hdbscan (min 2)": candidates(card)["hdbscan (min 2)"],
        f"dbscan, fixed distance {DBSCAN_DISTANCE}, min {DBSCAN_MIN_FACES}": dict(
            method="dbscan", similarity=1 - DBSCAN_DISTANCE, min_cluster_size=DBSCAN_MIN_FACES),
    }
    data = {"folds 6-10": (vectors[in_held], truth[in_held]), "celeba300": (vectors, truth)}
    for name in args.sets.split(","):
        if name == "celeba300":
            continue
        found = identity_folders(FACES / name, depth=2 if name == "fiw-dev" else 1, per_person=args.max_per_person)
        data[name] = embed(*found)
    for name, (v, t) in data.items():
        for label, options in methods.items():
            _, predicted = report(name, label, v, t, options)
            if name == "fiw-dev":
                relatives(predicted, t)
    print(f"cut similarity at FMR {DEFAULT_FALSE_MATCH_RATE:g}: {cut_similarity(card):.4f}")


if __name__ == "__main__":
    main()

"""Does a model accept more owners' young photos, or only more young photos? Every young photo of an age-gap set
against every *other* person's adult photos, beside the owners' pairs, for each model at its card's threshold
and at equal false-match rates among those strangers.

    python benchmarks/age_gap_strangers.py [--data ../shared/faces/lag-dev] [--people report] [--model sface --model sface-agegap]

`facesift evaluate age-gap` gives each owner pair one stranger pair, too few to measure a false-match rate near
the card's 1e-3; this counts them all (docs/hard-cases.md). The equal-rate thresholds are set on these very pairs:
a comparison of the two models, not an operating point.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from facesift.evaluation.agegap import read_layout, split_people
from facesift.evaluation.embeddings import embed_images
from facesift.recognition import load_card


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/faces/lag-dev"))
    parser.add_argument("--people", choices=("fit", "report", "all"), default="report")
    parser.add_argument("--model", action="append", default=None)
    parser.add_argument("--rates", type=float, nargs="+", default=(5e-4, 1e-3))
    args = parser.parse_args()
    layout = read_layout(args.data)
    people = sorted(layout) if args.people == "all" else split_people(sorted(layout))[args.people == "report"]
    young = [(path, name) for name in people for path, _ in layout[name][0]]
    adult = [(path, name) for name in people for path, _ in layout[name][1]]
    print(f"{args.data} ({args.people} people: {len(people)}), {len(young)} young and {len(adult)} adult photos")
    for model in args.model or ["sface"]:
        embeddings = embed_images([path for path, _ in young + adult], model=model)

        def matrix(items):
            found = [(embeddings.vectors[path], name) for path, name in items if embeddings.vectors.get(path) is not None]
            return np.stack([v for v, _ in found]), np.array([n for _, n in found])

        young_vectors, young_people = matrix(young)
        adult_vectors, adult_people = matrix(adult)
        scores = young_vectors @ adult_vectors.T
        stranger = young_people[:, None] != adult_people[None, :]
        strangers, owners = scores[stranger], scores[~stranger]
        threshold = load_card(model).thresholds["0.001"]
        passed = int((strangers >= threshold).sum())
        print(f"{model}: at its FMR 1e-3 threshold {threshold}: owners accepted {np.mean(owners >= threshold):.2%} of "
              f"{owners.size:,}; strangers' young photos accepted {passed / strangers.size:.3%} ({passed} of {strangers.size:,})")
        for rate in args.rates:
            at = np.quantile(strangers, 1 - rate)
            print(f"  where strangers' young photos are accepted at {rate:g} (threshold {at:.4f}): "
                  f"owners accepted {np.mean(owners >= at):.2%}")


if __name__ == "__main__":
    main()

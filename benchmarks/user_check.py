"""The user check of tests/test_gallery_openset.py (-m slow) on cached embeddings, in seconds instead of an hour:
every person but 500 enrolled from their first photo, 500 strangers one photo each, up to 2 other photos per enrolled
person, at the gallery's default operating point. The vectors are the largest-face ones search() uses; enrolment
refusals (pick_face, quality) are not modelled.

    python benchmarks/user_check.py [--model sface] [--sets celeba300,lag-dev,orl,yale,johns]

``--model accurate`` runs the same check with the SFace + dlib fusion (its card must carry an open-set calibration:
``facesift evaluate calibrate --model accurate ...``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from facesift.evaluation import embed_images, load_identity_roots  # noqa: E402
from facesift.gallery import Sample, open_gallery  # noqa: E402

SETS = ("celeba300", "lag-dev", "orl", "yale", "johns")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="sface")
    parser.add_argument("--sets", default=",".join(SETS), help="development sets under ../shared/faces (comma-separated)")
    args = parser.parse_args()
    data = load_identity_roots([Path("../shared/faces") / name for name in args.sets.split(",")])
    vectors = embed_images(data.images, model=args.model).vectors
    labels = np.array(data.labels)
    order = np.random.default_rng(12).permutation(len(data.people))
    strangers, enrolled = order[:500], order[500:]
    photos = {p: [data.images[i] for i in np.flatnonzero(labels == p)] for p in range(len(data.people))}
    with tempfile.TemporaryDirectory() as folder, open_gallery(Path(folder) / "users.db", model=args.model) as gallery:
        samples = [Sample(str(p), data.people[p], vectors[photos[p][0]], args.model, 1.0, str(p), 0.0)
                   for p in enrolled if vectors[photos[p][0]] is not None]
        gallery.add_samples(samples)
        present = {s.person_id for s in samples}
        point = gallery.operating_point()
        probes = np.stack([vectors[photos[p][0]] for p in strangers if vectors[photos[p][0]] is not None])
        best = np.array([row[0].similarity for row in gallery.search_embeddings(probes, k=1)])
        mated = [
            (data.people[p], vectors[x]) for p in enrolled if data.people[p] in present for x in photos[p][1:3] if vectors[x] is not None
        ]
        rows = gallery.search_embeddings(np.stack([v for _, v in mated]), k=1)
    right = np.mean([row[0].person_id == who and row[0].similarity >= point.threshold for (who, _), row in zip(mated, rows, strict=True)])
    rank1 = np.mean([row[0].person_id == who for (who, _), row in zip(mated, rows, strict=True)])
    print(
        f"{args.model}, {args.sets}: {len(data.people)} people; {len(present)} enrolled; {len(probes)} strangers: {(best < point.threshold).mean():.2%} rejected; "
        f"{len(mated)} other photos of enrolled people: {right:.2%} accepted as the right person (rank-1 {rank1:.2%}); {point.describe()}"
    )


if __name__ == "__main__":
    main()
